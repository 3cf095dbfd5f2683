// A real S3-compatible server for tests: s3rver (npm) on 127.0.0.1, port 0, its own temp dir, one bucket. Every
// request is recorded and may be held back (object-store.ts). s3rver checks the access key id, not the
// signature: wrong credentials are a wrong key id here.

import type { IncomingMessage, ServerResponse, Server } from 'node:http';
import { rmSync } from 'node:fs';
import S3rver from 's3rver';
import { Operator } from 'opendal';
import { tempDir } from './daemon.js';
import type { ObjectStoreUnderTest, StoreRequest } from './object-store.js';

export const S3RVER_KEY = 'S3RVER';

export class S3rverStore implements ObjectStoreUnderTest {
  readonly scheme = 's3';
  readonly server = 's3rver';
  /** s3rver ignores the secret; a distinctive one shows whether any log line carries it. */
  readonly secret = 'secret-7f3a9c-never-logged';
  readonly dir = tempDir('dft-s3rver-');
  readonly requests: StoreRequest[] = [];
  beforeRequest?: (r: StoreRequest) => Promise<void> | void;
  private s3rver?: S3rver;
  port = 0;

  constructor(readonly bucket: string) {}

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.s3rver = new S3rver({
      port: 0,
      address: '127.0.0.1',
      directory: this.dir,
      silent: true,
      configureBuckets: [{ name: this.bucket }],
    });
    this.port = (await this.s3rver.run()).port;
    const httpServer = (this.s3rver as unknown as { httpServer: Server }).httpServer;
    const handlers = httpServer.listeners('request') as Array<
      (q: IncomingMessage, s: ServerResponse) => void
    >;
    httpServer.removeAllListeners('request');
    httpServer.on('request', (req: IncomingMessage, res: ServerResponse) => {
      const url = new URL(req.url ?? '/', 'http://x');
      const r: StoreRequest = {
        method: req.method ?? '',
        path: decodeURIComponent(url.pathname),
        query: url.search,
        range: req.headers.range,
      };
      this.requests.push(r);
      void Promise.resolve(this.beforeRequest?.(r)).then(() => {
        for (const h of handlers) h(req, res);
      });
    });
  }

  /** An opendal operator with the right credentials: the test's own S3 client. */
  operator(): Operator {
    return new Operator('s3', {
      bucket: this.bucket,
      region: 'us-east-1',
      endpoint: this.endpoint,
      access_key_id: S3RVER_KEY,
      secret_access_key: S3RVER_KEY,
    });
  }

  async put(key: string, data: Buffer): Promise<void> {
    await this.operator().write(key, data);
  }

  isPieceRead(r: StoreRequest, key: string): boolean {
    return r.method === 'GET' && r.path === `/${this.bucket}/${key}` && r.range !== undefined;
  }

  flags(): string[] {
    return [
      '--storage-endpoint',
      this.endpoint,
      '--storage-region',
      'us-east-1',
      '--storage-access-key-id',
      S3RVER_KEY,
      '--storage-access-key-secret',
      this.secret,
    ];
  }

  wrongCredentials() {
    const id = 'WRONGKEYID4242';
    const secret = 'wrong-secret-4242';
    return {
      flags: [
        '--storage-endpoint',
        this.endpoint,
        '--storage-access-key-id',
        id,
        '--storage-access-key-secret',
        secret,
      ],
      secrets: [id, secret],
      message: /permission denied by the s3 store \(HTTP 403\): check --storage-access-key-id/,
    };
  }

  async stop(): Promise<void> {
    await this.s3rver?.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
