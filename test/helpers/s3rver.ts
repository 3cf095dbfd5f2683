// A real S3-compatible server for tests: s3rver (npm) on 127.0.0.1, port 0, its own temp dir. Every request is
// recorded (method, path, Range) so a test can count what the store served, and a test may hold a request back
// (beforeRequest) to change the store between two pieces. s3rver checks the access key id, not the signature:
// wrong credentials are a wrong key id here.

import type { IncomingMessage, ServerResponse, Server } from 'node:http';
import { rmSync } from 'node:fs';
import S3rver from 's3rver';
import { Operator } from 'opendal';
import { tempDir } from './daemon.js';

export const S3RVER_KEY = 'S3RVER';

export interface StoreRequest {
  method: string;
  /** The decoded path, `/bucket/key`. */
  path: string;
  range?: string;
}

export class S3rverStore {
  readonly dir = tempDir('dft-s3rver-');
  readonly requests: StoreRequest[] = [];
  /** Runs before s3rver sees a request; the request waits for it. */
  beforeRequest?: (r: StoreRequest) => Promise<void> | void;
  private server?: S3rver;
  private httpServer?: Server;
  port = 0;

  constructor(private readonly buckets: string[]) {}

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.server = new S3rver({
      port: 0,
      address: '127.0.0.1',
      directory: this.dir,
      silent: true,
      configureBuckets: this.buckets.map((name) => ({ name })),
    });
    const address = (await this.server.run()) as { port: number };
    this.port = address.port;
    this.httpServer = (this.server as unknown as { httpServer: Server }).httpServer;
    const handlers = this.httpServer.listeners('request') as Array<
      (q: IncomingMessage, s: ServerResponse) => void
    >;
    this.httpServer.removeAllListeners('request');
    this.httpServer.on('request', (req: IncomingMessage, res: ServerResponse) => {
      const url = new URL(req.url ?? '/', 'http://x');
      const r: StoreRequest = {
        method: req.method ?? '',
        path: decodeURIComponent(url.pathname),
        range: req.headers.range,
      };
      this.requests.push(r);
      void Promise.resolve(this.beforeRequest?.(r)).then(() => {
        for (const h of handlers) h(req, res);
      });
    });
  }

  /** An opendal operator for a bucket with the right credentials: the test's own S3 client. */
  operator(bucket: string): Operator {
    return new Operator('s3', {
      bucket,
      region: 'us-east-1',
      endpoint: this.endpoint,
      access_key_id: S3RVER_KEY,
      secret_access_key: S3RVER_KEY,
    });
  }

  async put(bucket: string, key: string, data: Buffer): Promise<void> {
    await this.operator(bucket).write(key, data);
  }

  /** Ranged GETs of one object: the piece reads. */
  pieceReads(bucket: string, key: string): StoreRequest[] {
    return this.requests.filter((r) => r.method === 'GET' && r.path === `/${bucket}/${key}` && r.range);
  }

  /** The dfget flags that reach this store. */
  flags(key = S3RVER_KEY): string[] {
    return [
      '--storage-endpoint',
      this.endpoint,
      '--storage-region',
      'us-east-1',
      '--storage-access-key-id',
      key,
      '--storage-access-key-secret',
      key,
    ];
  }

  async stop(): Promise<void> {
    await this.server?.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
