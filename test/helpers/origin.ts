// A Node origin for tests: serves generated files with Range support and counts what it served, so tests can
// assert "each piece fetched from the origin once" or "a cache hit makes no request".

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { createHash } from 'node:crypto';

export interface OriginRequest {
  method: string;
  path: string;
  range?: string;
  headers: IncomingMessage['headers'];
}

/** Deterministic pseudo-random content: byte i of file `seed` is cheap to compute, so 100 MiB needs no RAM. */
export function contentByte(seed: number, i: number): number {
  let x = (i + 1) * 2654435761 + seed * 40503;
  x ^= x >>> 13;
  x = Math.imul(x, 0x5bd1e995);
  x ^= x >>> 15;
  return x & 0xff;
}

export function contentSlice(seed: number, start: number, end: number): Buffer {
  const b = Buffer.allocUnsafe(end - start);
  for (let i = start; i < end; i++) b[i - start] = contentByte(seed, i);
  return b;
}

export function contentSha256(seed: number, size: number): string {
  const h = createHash('sha256');
  const step = 1 << 20;
  for (let off = 0; off < size; off += step) h.update(contentSlice(seed, off, Math.min(size, off + step)));
  return h.digest('hex');
}

export interface OriginFile {
  size: number;
  seed: number;
  headers?: Record<string, string>;
  /** Answer with this status instead of the content. */
  status?: number;
  /** Answer piece requests (any Range but the 0-0 probe) with this status; the stat still succeeds. */
  pieceStatus?: number;
  /** Delay before answering, ms. */
  delayMs?: number;
  /** Answer 401 with a registry-style WWW-Authenticate unless `Authorization: Bearer <token>` is sent. */
  bearerToken?: string;
  /**
   * Called for each request just before it is answered (after `delayMs`): a test changes the file here (`seed`,
   * `headers`) to make the origin switch versions at a chosen request, or returns a promise to hold the answer.
   */
  beforeAnswer?: (req: OriginRequest, file: OriginFile) => void | Promise<void>;
  /**
   * Ignore If-Match / If-Unmodified-Since (as some origins do). Otherwise they are evaluated against the file's
   * `etag` / `last-modified` headers as RFC 9110 §13.1 says, with 412 when they fail.
   */
  ignorePreconditions?: boolean;
}

/** Whether a request's If-Match / If-Unmodified-Since fail for the file (RFC 9110 §13.2.2 order). */
function preconditionFailed(req: IncomingMessage, f: OriginFile): boolean {
  const etag = f.headers?.['etag'];
  const lastModified = f.headers?.['last-modified'];
  const ifMatch = req.headers['if-match'];
  if (ifMatch !== undefined) {
    if (ifMatch.trim() === '*') return false;
    // Strong comparison: a weak tag never matches.
    const tags = ifMatch.split(',').map((t) => t.trim());
    return etag === undefined || etag.startsWith('W/') || !tags.includes(etag);
  }
  const since = req.headers['if-unmodified-since'];
  if (since !== undefined && lastModified !== undefined) {
    const a = Date.parse(since);
    return !Number.isNaN(a) && Date.parse(lastModified) > a;
  }
  return false;
}

export class Origin {
  readonly files = new Map<string, OriginFile>();
  readonly requests: OriginRequest[] = [];
  private server?: Server;
  /** Pending `delayMs` timers, cleared by stop() so a slow file does not keep the test process alive. */
  private readonly delays = new Set<NodeJS.Timeout>();
  port = 0;
  private scheme = 'http';
  /** The host name in `url` (a TLS origin's certificate names it). */
  host = '127.0.0.1';

  get url(): string {
    return `${this.scheme}://${this.host}:${this.port}`;
  }

  add(path: string, file: OriginFile): string {
    this.files.set(path, file);
    return `${this.url}${path}`;
  }

  /** Requests with a Range that is not the 0-0 probe: the piece fetches. */
  pieceRequests(path?: string): OriginRequest[] {
    return this.requests.filter(
      (r) => r.method === 'GET' && r.range && r.range !== 'bytes=0-0' && (!path || r.path === path),
    );
  }

  /** Listens on 127.0.0.1; with `tls` (PEM key and certificate) it is an HTTPS origin. */
  async start(tls?: { key: string | Buffer; cert: string | Buffer; host?: string }): Promise<void> {
    const handler = (req: IncomingMessage, res: ServerResponse) => void this.handle(req, res);
    if (tls) {
      this.scheme = 'https';
      this.host = tls.host ?? this.host;
    }
    this.server = tls ? createTlsServer({ key: tls.key, cert: tls.cert }, handler) : createServer(handler);
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server!.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    for (const t of this.delays) clearTimeout(t);
    this.delays.clear();
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0]!;
    const record: OriginRequest = {
      method: req.method ?? 'GET',
      path,
      range: req.headers.range,
      headers: req.headers,
    };
    this.requests.push(record);
    const f = this.files.get(path);
    if (!f) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    if (f.delayMs) {
      await new Promise<void>((r) => {
        const t = setTimeout(() => {
          this.delays.delete(t);
          r();
        }, f.delayMs);
        this.delays.add(t);
      });
    }
    await f.beforeAnswer?.(record, f);
    if (!f.ignorePreconditions && preconditionFailed(req, f)) {
      res.writeHead(412, { 'content-type': 'text/plain' }).end('precondition failed');
      return;
    }
    if (f.bearerToken !== undefined && req.headers.authorization !== `Bearer ${f.bearerToken}`) {
      res
        .writeHead(401, {
          'www-authenticate': `Bearer realm="${this.url}/token",service="test-registry",scope="repository:t/x:pull"`,
          'content-type': 'application/json',
        })
        .end('{"errors":[{"code":"UNAUTHORIZED"}]}');
      return;
    }
    const failWith =
      f.status ?? (req.headers.range && req.headers.range !== 'bytes=0-0' ? f.pieceStatus : undefined);
    if (failWith) {
      res.writeHead(failWith, { 'x-origin': 'test' }).end(`status ${failWith}`);
      return;
    }
    let start = 0;
    let end = f.size - 1;
    let status = 200;
    const m = req.headers.range ? /^bytes=(\d+)-(\d*)$/.exec(req.headers.range) : null;
    if (m) {
      start = Number(m[1]);
      end = m[2] ? Math.min(Number(m[2]), f.size - 1) : f.size - 1;
      if (start >= f.size) {
        res.writeHead(416, { 'content-range': `bytes */${f.size}` }).end();
        return;
      }
      status = 206;
    }
    const headers: Record<string, string | number> = {
      'content-type': 'application/octet-stream',
      'accept-ranges': 'bytes',
      'content-length': end - start + 1,
      ...(f.headers ?? {}),
    };
    if (status === 206) headers['content-range'] = `bytes ${start}-${end}/${f.size}`;
    res.writeHead(status, headers);
    if (req.method === 'HEAD' || f.size === 0) {
      res.end();
      return;
    }
    const step = 256 * 1024;
    for (let off = start; off <= end; off += step) {
      const chunk = contentSlice(f.seed, off, Math.min(end + 1, off + step));
      if (!res.write(chunk)) await new Promise((r) => res.once('drain', r));
      if (res.destroyed) return;
    }
    res.end();
  }
}
