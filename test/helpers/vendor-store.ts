// A documented-protocol test server for the object stores that have no server to run here (OSS, OBS, COS): it
// answers as the vendor documents, and checks what each request must carry — the virtual-host name
// (`BUCKET.ENDPOINT`), the object path, and an Authorization header whose signature is the one the vendor's
// documentation defines for the known secret. opendal reaches it as an HTTP forward proxy (HTTP_PROXY), since the
// vendors' names (`bucket.oss.test`) resolve nowhere. Signatures, from the vendors' documentation:
// - OSS (Alibaba, "Add signatures to headers", V1): `OSS <id>:base64(HMAC-SHA1(secret, VERB\nContent-MD5\n
//   Content-Type\nDate\n<x-oss- headers><resource>))`, resource `/bucket/key`; presigned: `OSSAccessKeyId`,
//   `Expires`, `Signature` over `GET\n\n\n<Expires>\n/bucket/key`.
// - OBS (Huawei, "Authentication of Signature in a Header"): the same construction with `OBS <id>:` and x-obs-
//   headers, the resource naming the user-defined domain in the bucket's place when the bucket is reached at one
//   (the endpoint here); presigned: `AccessKeyId`, `Expires`, `Signature`.
// - COS (Tencent, "Request Signature"): `q-sign-algorithm=sha1&q-ak&q-sign-time&q-key-time&q-header-list&
//   q-url-param-list&q-signature`, SignKey = HMAC-SHA1(secret, KeyTime) hex, StringToSign =
//   `sha1\n<KeyTime>\nSHA1(<method>\n<path>\n<params>\n<headers>\n)\n`, signature = HMAC-SHA1(SignKey, it) hex.

import { createHash, createHmac } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type Vendor = 'oss' | 'obs' | 'cos';

export interface VendorRequest {
  method: string;
  host: string;
  path: string;
  query: URLSearchParams;
  /** Why the signature was refused; undefined when it verified. */
  signatureProblem?: string;
}

const hmacSha1 = (key: string | Buffer, text: string) => createHmac('sha1', key).update(text, 'utf8');

/** The header signature of OSS or OBS for a request (the documented string-to-sign). */
export function ossLikeSignature(
  vendor: 'oss' | 'obs',
  secret: string,
  req: IncomingMessage,
  resource: string,
): string {
  const prefix = `x-${vendor}-`;
  const own = Object.keys(req.headers)
    .filter((k) => k.startsWith(prefix))
    .sort()
    .map((k) => `${k}:${String(req.headers[k]).trim()}\n`)
    .join('');
  const h = (n: string) => String(req.headers[n] ?? '');
  const toSign = `${req.method}\n${h('content-md5')}\n${h('content-type')}\n${h('date')}\n${own}${resource}`;
  return hmacSha1(secret, toSign).digest('base64');
}

/** The COS signature of a request's q-* parameters (the documented algorithm). */
export function cosSignature(
  secret: string,
  method: string,
  path: string,
  query: URLSearchParams,
  headers: Record<string, string>,
  q: URLSearchParams,
): string {
  const keyTime = q.get('q-key-time') ?? '';
  const list = (names: string | null, values: (n: string) => string) =>
    (names ? names.split(';').filter(Boolean) : [])
      .sort()
      .map((n) => `${n}=${encodeURIComponent(values(n))}`)
      .join('&');
  const params = list(q.get('q-url-param-list'), (n) => query.get(n) ?? '');
  const hdrs = list(q.get('q-header-list'), (n) => headers[n] ?? '');
  const httpString = `${method.toLowerCase()}\n${path}\n${params}\n${hdrs}\n`;
  const toSign = `sha1\n${keyTime}\n${createHash('sha1').update(httpString).digest('hex')}\n`;
  const signKey = hmacSha1(secret, keyTime).digest('hex');
  return hmacSha1(signKey, toSign).digest('hex');
}

export class VendorStore {
  readonly requests: VendorRequest[] = [];
  readonly objects = new Map<string, { data: Buffer; etag: string; lastModified: string }>();

  constructor(
    readonly vendor: Vendor,
    readonly bucket: string,
    /** The endpoint host dfget is given, e.g. `oss.test` (OBS: the bucket's own domain). */
    readonly endpointHost: string,
    readonly accessKeyId: string,
    readonly secret: string,
  ) {}

  /** The Host a request must name: `bucket.endpoint` (OBS: the endpoint, which is the bucket's domain). */
  get virtualHost(): string {
    return this.vendor === 'obs' ? this.endpointHost : `${this.bucket}.${this.endpointHost}`;
  }

  put(key: string, data: Buffer): void {
    const etag = `"${createHash('md5').update(data).digest('hex')}"`;
    this.objects.set(key, { data, etag, lastModified: new Date().toUTCString() });
  }

  /** Checks the request's signature as the vendor documents it; a problem, or undefined when it verifies. */
  private checkSignature(req: IncomingMessage, path: string, query: URLSearchParams): string | undefined {
    const auth = String(req.headers.authorization ?? '');
    if (this.vendor === 'cos') {
      const q = new URLSearchParams(auth);
      if (q.get('q-sign-algorithm') !== 'sha1')
        return `no COS signature in Authorization: ${auth ? 'malformed' : 'absent'}`;
      if (q.get('q-ak') !== this.accessKeyId) return 'unknown q-ak';
      const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)]));
      const want = cosSignature(this.secret, req.method ?? '', path, query, headers, q);
      return q.get('q-signature') === want
        ? undefined
        : 'q-signature does not match the documented algorithm';
    }
    const scheme = this.vendor.toUpperCase();
    const m = new RegExp(`^${scheme} ([^:]+):(.+)$`).exec(auth);
    if (!m) return `no "${scheme} <id>:<signature>" Authorization`;
    if (m[1] !== this.accessKeyId) return 'unknown access key id';
    // The documented resource: /bucket/key (the bucket's root for a listing); OBS reached at a user-defined
    // domain name (this server's case) names that domain in the bucket's place.
    const owner = this.vendor === 'obs' ? this.virtualHost : this.bucket;
    const want = ossLikeSignature(this.vendor, this.secret, req, `/${owner}${path}`);
    return m[2] === want ? undefined : 'signature does not match the documented string-to-sign';
  }

  handle(req: IncomingMessage, res: ServerResponse): void {
    // As a forward proxy, the request line carries the absolute URL.
    const url = new URL(req.url ?? '/', `http://${req.headers.host}`);
    const path = decodeURIComponent(url.pathname);
    const r: VendorRequest = { method: req.method ?? '', host: url.host, path, query: url.searchParams };
    r.signatureProblem = this.checkSignature(req, url.pathname, url.searchParams);
    this.requests.push(r);
    const xml = (status: number, body: string) => {
      res.writeHead(status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (url.host !== this.virtualHost) return xml(400, `<Error><Code>InvalidBucketName</Code></Error>`);
    if (r.signatureProblem) return xml(403, `<Error><Code>SignatureDoesNotMatch</Code></Error>`);
    if (path === '/' && req.method === 'GET')
      return xml(200, this.listing(url.searchParams.get('prefix') ?? ''));
    const object = this.objects.get(path.slice(1));
    if (!object) return xml(404, `<Error><Code>NoSuchKey</Code></Error>`);
    res.writeHead(200, {
      'content-length': object.data.length,
      etag: object.etag,
      'last-modified': object.lastModified,
      'content-type': 'application/octet-stream',
    });
    res.end(req.method === 'HEAD' ? undefined : object.data);
  }

  /** ListObjects(V2) as each vendor documents it (the fields opendal reads). */
  private listing(prefix: string): string {
    const keys = [...this.objects.keys()].filter((k) => k.startsWith(prefix)).sort();
    const contents = keys
      .map(
        (k) =>
          `<Contents><Key>${k}</Key><Size>${this.objects.get(k)!.data.length}</Size><ETag>${this.objects.get(k)!.etag}</ETag><LastModified>2026-12-06T08:00:00.000Z</LastModified></Contents>`,
      )
      .join('');
    return `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>${this.bucket}</Name><Prefix>${prefix}</Prefix><KeyCount>${keys.length}</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>${contents}</ListBucketResult>`;
  }
}

/**
 * The forward proxy opendal is pointed at (HTTP_PROXY): each request goes to the store whose virtual host it
 * names. One for the whole test process: opendal's HTTP client reads HTTP_PROXY once.
 */
export class VendorProxy {
  private readonly stores = new Map<string, VendorStore>();
  private server?: Server;
  port = 0;

  add(store: VendorStore): void {
    this.stores.set(store.virtualHost, store);
  }

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const host = new URL(req.url ?? '/', `http://${req.headers.host}`).host;
      const store = this.stores.get(host);
      if (store) return store.handle(req, res);
      res.writeHead(502).end(`no store at ${host}`);
    });
    await new Promise<void>((ok) => this.server!.listen(0, '127.0.0.1', ok));
    this.port = (this.server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((ok) => (this.server ? this.server.close(() => ok()) : ok()));
  }
}
