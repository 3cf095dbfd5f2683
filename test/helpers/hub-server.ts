// A model hub as the hubs document it and upstream's backends call it, on 127.0.0.1: Hugging Face
// (`/{[datasets|spaces]/}owner/repo/resolve/{rev}/{path}`, `/api/{type}/owner/repo?revision=`), ModelScope
// (`/{type}/owner/repo/resolve/{rev}/{path}`, `/api/v1/{type}/owner/repo/repo/files?Revision=&Recursive=true`) and
// OpenCSG (the same under `/csg/`, listing `/csg/api/{type}/owner/repo/revision/{rev}[?blobs=true]`). Every path
// is matched exactly: a request the hub would not understand is a 400 and fails the test. Files of at least
// LFS_THRESHOLD bytes are answered, as Hugging Face does for LFS files, with a 302 to a CDN on another origin
// (another port), which must not see the token. Every request is recorded.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { sha256 } from './files.js';

export type HubKind = 'hf' | 'modelscope' | 'opencsg';

export interface HubRequest {
  /** `hub` or `cdn`. */
  origin: string;
  method: string;
  /** Path and query, as sent. */
  url: string;
  authorization?: string;
  range?: string;
}

/** A repository: its type (`models`, `datasets`, ...), `owner/repo`, and its files at each revision. */
export interface HubRepository {
  type: string;
  id: string;
  revisions: Record<string, Record<string, Buffer>>;
}

export const LFS_THRESHOLD = 1024 * 1024;

export class HubServer {
  readonly requests: HubRequest[] = [];
  private readonly hub: Server;
  private readonly cdn: Server;
  private readonly blobs = new Map<string, Buffer>();
  private hubPort = 0;
  private cdnPort = 0;

  constructor(
    readonly kind: HubKind,
    private readonly repositories: HubRepository[],
    /** The only token the hub accepts; a request with another (or none) is 401. */
    readonly token: string,
  ) {
    this.hub = createServer((req, res) => this.record('hub', req, res, () => this.serveHub(req, res)));
    this.cdn = createServer((req, res) => this.record('cdn', req, res, () => this.serveCdn(req, res)));
  }

  async start(): Promise<void> {
    this.hubPort = await listen(this.hub);
    this.cdnPort = await listen(this.cdn);
  }

  async stop(): Promise<void> {
    for (const s of [this.hub, this.cdn]) {
      s.closeAllConnections();
      await new Promise<void>((ok) => s.close(() => ok()));
    }
  }

  /** What dfget's --{hf,ms,csg}-base-url is set to. */
  get baseUrl(): string {
    return `http://127.0.0.1:${this.hubPort}${this.kind === 'opencsg' ? '/csg/' : ''}`;
  }

  private record(origin: string, req: IncomingMessage, res: ServerResponse, serve: () => void): void {
    this.requests.push({
      origin,
      method: req.method ?? '',
      url: req.url ?? '',
      authorization: req.headers.authorization,
      range: req.headers.range,
    });
    req.resume();
    serve();
  }

  private serveHub(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://hub');
    let path = url.pathname;
    if (this.kind === 'opencsg') {
      if (!path.startsWith('/csg/')) return answer(res, 400, `not under /csg/: ${path}`);
      path = path.slice('/csg'.length);
    }
    const listing = this.matchListing(path, url.searchParams);
    if (listing !== undefined) {
      if (!this.authorized(req)) return unauthorized(res);
      if (listing.repository === undefined) return answer(res, 404, 'Repository not found');
      const files = listing.repository.revisions[listing.revision];
      if (files === undefined) return answer(res, 404, 'Revision not found');
      const body = JSON.stringify(this.listingBody(listing.repository, files));
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      return void res.end(body);
    }
    const resolve = this.matchResolve(path);
    if (resolve === undefined) return answer(res, 400, `not a path this hub serves: ${req.url}`);
    if (!this.authorized(req)) return unauthorized(res);
    const data = resolve.repository?.revisions[resolve.revision]?.[resolve.file];
    if (data === undefined) {
      res.setHeader('x-error-code', 'EntryNotFound');
      return answer(res, 404, 'Entry not found');
    }
    if (data.length >= LFS_THRESHOLD) {
      // As Hugging Face: an LFS file is a redirect to a signed URL on the CDN.
      const sha = sha256(data);
      this.blobs.set(sha, data);
      res.writeHead(302, { location: `http://127.0.0.1:${this.cdnPort}/blobs/${sha}?signature=x` });
      return void res.end();
    }
    serveBytes(req, res, data);
  }

  private serveCdn(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://cdn');
    const data = this.blobs.get(url.pathname.replace(/^\/blobs\//, ''));
    if (data === undefined || url.searchParams.get('signature') !== 'x')
      return answer(res, 403, 'bad signature');
    serveBytes(req, res, data);
  }

  private authorized(req: IncomingMessage): boolean {
    return req.headers.authorization === `Bearer ${this.token}`;
  }

  private findRepository(type: string, id: string): HubRepository | undefined {
    return this.repositories.find((r) => r.type === type && r.id === id);
  }

  /** `{type}/owner/repo/resolve/{rev}/{file}`; models have no prefix on Hugging Face and OpenCSG. */
  private matchResolve(
    path: string,
  ): { repository?: HubRepository; revision: string; file: string } | undefined {
    const m = /^\/(?:([a-z]+)\/)?([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(path);
    if (!m) return undefined;
    const type = m[1] ?? 'models';
    if (this.kind === 'modelscope' ? m[1] === undefined : m[1] === 'models') return undefined;
    return {
      repository: this.findRepository(type, m[2]!),
      revision: m[3]!,
      file: m[4]!.split('/').map(decodeURIComponent).join('/'),
    };
  }

  private matchListing(
    path: string,
    query: URLSearchParams,
  ): { repository?: HubRepository; revision: string } | undefined {
    let m: RegExpExecArray | null;
    if (this.kind === 'hf') {
      m = /^\/api\/([a-z]+)\/([^/]+\/[^/]+)$/.exec(path);
      if (!m || !query.has('revision')) return undefined;
      return { repository: this.findRepository(m[1]!, m[2]!), revision: query.get('revision')! };
    }
    if (this.kind === 'modelscope') {
      m = /^\/api\/v1\/([a-z]+)\/([^/]+\/[^/]+)\/repo\/files$/.exec(path);
      if (!m || !query.has('Revision') || query.get('Recursive') !== 'true') return undefined;
      return { repository: this.findRepository(m[1]!, m[2]!), revision: query.get('Revision')! };
    }
    m = /^\/api\/([a-z]+)\/([^/]+\/[^/]+)\/revision\/([^/]+)$/.exec(path);
    if (!m || (m[1] === 'models') !== (query.get('blobs') === 'true')) return undefined;
    return { repository: this.findRepository(m[1]!, m[2]!), revision: m[3]! };
  }

  private listingBody(repository: HubRepository, files: Record<string, Buffer>): unknown {
    const entries = Object.entries(files);
    if (this.kind === 'modelscope') {
      const dirs = new Set(
        entries.flatMap(([p]) =>
          p
            .split('/')
            .slice(0, -1)
            .map((_, i, a) => a.slice(0, i + 1).join('/')),
        ),
      );
      return {
        Code: 200,
        Data: {
          Files: [
            ...[...dirs].map((d) => ({ Path: d, Name: d.split('/').pop(), Type: 'tree', Size: 0 })),
            ...entries.map(([p, b]) => ({ Path: p, Name: p.split('/').pop(), Type: 'blob', Size: b.length })),
          ],
        },
        Message: 'success',
      };
    }
    // Hugging Face / OpenCSG: an LFS file's `size` is its pointer's; its real size is `lfs.size`.
    const siblings = entries.map(([p, b]) =>
      b.length >= LFS_THRESHOLD
        ? { rfilename: p, size: 134, lfs: { size: b.length, sha256: sha256(b), pointerSize: 134 } }
        : { rfilename: p, size: b.length },
    );
    return { _id: repository.id, id: repository.id, modelId: repository.id, private: true, siblings };
  }
}

function listen(server: Server): Promise<number> {
  return new Promise((ok) => server.listen(0, '127.0.0.1', () => ok((server.address() as AddressInfo).port)));
}

function answer(res: ServerResponse, status: number, message: string): void {
  const body = JSON.stringify({ error: message });
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function unauthorized(res: ServerResponse): void {
  answer(res, 401, 'Invalid credentials in Authorization header');
}

/** The bytes, or the one range asked for (206), with an ETag as the hubs send. */
function serveBytes(req: IncomingMessage, res: ServerResponse, data: Buffer): void {
  const etag = `"${sha256(data).slice(0, 16)}"`;
  const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
  const head = req.method === 'HEAD';
  if (!m) {
    res.writeHead(200, { 'content-length': data.length, etag, 'accept-ranges': 'bytes' });
    return void res.end(head ? undefined : data);
  }
  const start = Number(m[1]);
  const end = Math.min(Number(m[2]), data.length - 1);
  if (start > end) {
    res.writeHead(416, { 'content-range': `bytes */${data.length}` });
    return void res.end();
  }
  const part = data.subarray(start, end + 1);
  res.writeHead(206, {
    'content-length': part.length,
    'content-range': `bytes ${start}-${end}/${data.length}`,
    etag,
    'accept-ranges': 'bytes',
  });
  res.end(head ? undefined : part);
}
