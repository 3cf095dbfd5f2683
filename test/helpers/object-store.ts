// What the object storage tests need of a store under test, whichever server it is (s3rver in-process,
// fake-gcs-server and Azurite as child processes): its requests recorded, a hook to hold one back, objects put
// with the vendor protocol, and the dfget flags that reach it with good or wrong credentials.

import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { request as httpRequest, createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { freePort, httpStatus, spawnLogged, stopByPid, waitUntil } from './child-process.js';
import { tempDir } from './daemon.js';

export interface StoreRequest {
  method: string;
  /** The decoded path. */
  path: string;
  /** The query as sent (`?op=OPEN&offset=...` for WebHDFS); '' when there is none. */
  query: string;
  range?: string;
}

export interface ObjectStoreUnderTest {
  readonly scheme: string;
  readonly bucket: string;
  /** The server's name, for test titles. */
  readonly server: string;
  readonly requests: StoreRequest[];
  /** Runs before the store sees a request; the request waits for it. */
  beforeRequest?: (r: StoreRequest) => Promise<void> | void;
  start(): Promise<void>;
  stop(): Promise<void>;
  put(key: string, data: Buffer): Promise<void>;
  /** Whether a recorded request read bytes of `key` (a ranged GET of the object). */
  isPieceRead(r: StoreRequest, key: string): boolean;
  /** dfget flags with good credentials; `secret` is a value no log line may carry. */
  flags(): string[];
  readonly secret: string;
  /** dfget flags with wrong credentials, the values that must not be logged, and the one line dfget must print. */
  wrongCredentials(): { flags: string[]; secrets: string[]; message: RegExp };
}

/** Where scripts/install-object-stores.sh put the stores that are not npm devDependencies. */
export function toolsDir(): string {
  return process.env.DFTEST_TOOLS ?? join(homedir(), '.cache/dragonfly-peer-tools');
}

/**
 * A reverse proxy in front of a store that runs as its own process: records each request and lets a test hold
 * one back. The request goes on unchanged (path, query, headers), so signatures stay valid.
 */
export class RecordingProxy {
  readonly requests: StoreRequest[] = [];
  beforeRequest?: (r: StoreRequest) => Promise<void> | void;
  private server?: Server;
  port = 0;

  constructor(private readonly targetPort: number) {}

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      const r: StoreRequest = {
        method: req.method ?? '',
        path: decodeURIComponent(url.pathname),
        query: url.search,
        range: req.headers.range,
      };
      this.requests.push(r);
      // A hook that fails answers this request 502 naming why, rather than leave a rejection nobody handles.
      const held = Promise.resolve()
        .then(() => this.beforeRequest?.(r))
        .then(
          () => true,
          (err: unknown) => {
            res.writeHead(502, { 'content-type': 'text/plain' }).end(`test hook failed: ${String(err)}`);
            return false;
          },
        );
      void held.then((go) => {
        if (!go) return;
        const upstream = httpRequest(
          {
            host: '127.0.0.1',
            port: this.targetPort,
            method: req.method,
            path: req.url,
            headers: req.headers,
          },
          (answer) => {
            res.writeHead(answer.statusCode ?? 502, answer.headers);
            answer.pipe(res);
          },
        );
        upstream.on('error', () => res.destroy());
        req.pipe(upstream);
      });
    });
    await new Promise<void>((ok) => this.server!.listen(0, '127.0.0.1', ok));
    this.port = (this.server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((ok) => (this.server ? this.server.close(() => ok()) : ok()));
  }
}

/**
 * A store that runs as its own process on a free port, behind a RecordingProxy: subclasses name the command,
 * how to tell it is ready, and the vendor's calls.
 */
export abstract class ProcessStore {
  protected proc?: ChildProcess;
  protected port = 0;
  protected proxy?: RecordingProxy;
  readonly dir = tempDir('dft-store-');
  private readonly recorded: StoreRequest[] = [];
  private hook?: (r: StoreRequest) => Promise<void> | void;

  protected abstract command(port: number): { cmd: string; args: string[] };
  /** A URL on the store's own port that answers once it is ready. */
  protected abstract readyUrl(port: number): string;
  /** Creates the bucket. */
  protected abstract prepare(): Promise<void>;
  abstract readonly server: string;

  get requests(): StoreRequest[] {
    return this.proxy?.requests ?? this.recorded;
  }

  get beforeRequest(): ((r: StoreRequest) => Promise<void> | void) | undefined {
    return this.hook;
  }

  set beforeRequest(hook: ((r: StoreRequest) => Promise<void> | void) | undefined) {
    this.hook = hook;
    if (this.proxy) this.proxy.beforeRequest = hook;
  }

  /** The endpoint dfdaemon is given: the proxy's. */
  protected get proxied(): string {
    return `http://127.0.0.1:${this.proxy!.port}`;
  }

  /** The store's own endpoint, for the test's own client (not recorded). */
  protected get direct(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.port = await freePort();
    const { cmd, args } = this.command(this.port);
    if (!existsSync(cmd)) throw new Error(`${cmd} is missing: run scripts/install-object-stores.sh`);
    const log = join(this.dir, 'store.log');
    this.proc = spawnLogged(cmd, args, log);
    await waitUntil(async () => (await httpStatus(this.readyUrl(this.port))) !== undefined, {
      proc: this.proc,
      what: this.server,
      until: `answer on port ${this.port}`,
      timeoutMs: 30_000,
      detail: () => readFileSync(log, 'utf8').slice(-2000),
    });
    this.proxy = new RecordingProxy(this.port);
    this.proxy.beforeRequest = this.hook;
    await this.proxy.start();
    await this.prepare();
  }

  async stop(): Promise<void> {
    await this.proxy?.stop();
    await stopByPid(this.proc, 5000);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
