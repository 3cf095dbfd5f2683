// A small origin for backend tests: a real node:http(s) server on port 0 with routes by path, counting the
// requests each path received and keeping the headers of the last one.

import { createServer as createHttpServer } from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { selfSignedLocalhost } from '../../helpers/tls.js';

export type Handler = (req: IncomingMessage, res: ServerResponse) => void;

export class Origin {
  readonly hits = new Map<string, number>();
  readonly lastHeaders = new Map<string, IncomingHttpHeaders>();
  readonly methods = new Map<string, string[]>();
  private readonly routes = new Map<string, Handler>();
  private readonly server: Server;
  private port = 0;

  constructor(private readonly tls?: { cert: string; key: string }) {
    const handle = (req: IncomingMessage, res: ServerResponse) => this.handle(req, res);
    this.server = tls
      ? createHttpsServer({ cert: tls.cert, key: tls.key }, handle)
      : createHttpServer(handle);
  }

  async listen(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  get url(): string {
    return `${this.tls ? 'https' : 'http'}://127.0.0.1:${this.port}`;
  }

  route(path: string, handler: Handler): string {
    this.routes.set(path, handler);
    return `${this.url}${path}`;
  }

  count(path: string): number {
    return this.hits.get(path) ?? 0;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    this.hits.set(path, this.count(path) + 1);
    this.lastHeaders.set(path, req.headers);
    this.methods.set(path, [...(this.methods.get(path) ?? []), req.method ?? '']);
    const handler = this.routes.get(path);
    if (handler === undefined) {
      res.writeHead(404, { 'x-origin': 'test' });
      res.end('not found');
      return;
    }
    handler(req, res);
  }
}

/** Serves `data` honouring `Range: bytes=a-b` as a well-behaved origin does. */
export function serveRanges(data: Buffer): Handler {
  return (req, res) => {
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
    if (m === null) {
      res.writeHead(200, { 'content-length': data.length });
      res.end(req.method === 'HEAD' ? undefined : data);
      return;
    }
    const start = Number(m[1]);
    const end = Math.min(Number(m[2]), data.length - 1);
    if (start >= data.length) {
      res.writeHead(416, { 'content-range': `bytes */${data.length}` });
      res.end();
      return;
    }
    res.writeHead(206, {
      'content-range': `bytes ${start}-${end}/${data.length}`,
      'content-length': end - start + 1,
    });
    res.end(req.method === 'HEAD' ? undefined : data.subarray(start, end + 1));
  };
}

/** A body's bytes; each chunk is copied, as a chunk is valid only until the next one is asked for. */
export async function readAll(body: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

/**
 * A self-signed certificate for 127.0.0.1 / localhost, as PEM only: selfSignedLocalhost's, made by the `openssl` CLI
 * in a temp dir that is removed. (`@peculiar/x509` needs a reflect-metadata polyfill that is not installed, so it
 * cannot be imported here.)
 */
export function selfSignedCertificate(): { cert: string; key: string } {
  const dir = mkdtempSync(join(tmpdir(), 'backend-tls-'));
  try {
    const { cert, key } = selfSignedLocalhost(dir);
    return { cert, key };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
