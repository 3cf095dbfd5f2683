// The distribution registry (Debian's `docker-registry` 2.8) for e2e tests and benchmarks: its own config.yml in
// a temp dir (filesystem storage inside it, delete enabled, no auth, `http.addr` on a free loopback port), started
// with `docker-registry serve CONF` and stopped by its PID. The registry cannot listen on port 0, so a free port is
// found by binding port 0 and closing, and the start is retried when another process took the port meanwhile.
// Its access log (one combined-format line per request, on stdout) goes to a file that tests parse to count what
// clients — or the proxy — fetched from it.

import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { httpStatus, spawnLogged, startOnFreePort, stopByPid, waitUntil } from './child-process.js';
import { tempDir } from './daemon.js';
import { which } from './exec.js';

/** The registry binary, or undefined when docker-registry is not installed. */
export function findRegistry(): string | undefined {
  return which('docker-registry');
}

/** One line of the registry's access log. */
export interface RegistryRequest {
  method: string;
  /** The path without the query. */
  path: string;
  /** The raw query without '?', or ''. */
  query: string;
  status: number;
  /** Body bytes written. */
  bytes: number;
  userAgent: string;
}

const ACCESS_LINE = /^\S+ \S+ \S+ \[[^\]]*\] "(\S+) (\S+) [^"]*" (\d{3}) (\d+|-) "[^"]*" "([^"]*)"/;

export class Registry {
  readonly dir: string;
  readonly dataDir: string;
  readonly conf: string;
  /** The access log (the registry's stdout). */
  readonly accessLog: string;
  /** Everything else the registry logs (stderr). */
  readonly errorLog: string;
  port = 0;
  private proc?: ChildProcess;

  constructor(
    readonly binary: string,
    opts: { dir?: string } = {},
  ) {
    this.dir = opts.dir ?? tempDir('dft-registry-');
    mkdirSync(this.dir, { recursive: true });
    this.dataDir = join(this.dir, 'data');
    this.conf = join(this.dir, 'config.yml');
    this.accessLog = join(this.dir, 'access.log');
    this.errorLog = join(this.dir, 'registry.log');
  }

  /** host:port, as image references and containerd's `ns` name the registry. */
  get host(): string {
    return `127.0.0.1:${this.port}`;
  }

  get url(): string {
    return `http://${this.host}`;
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  private config(): string {
    // No upload purging: it runs on a timer and would log and touch storage in the middle of a test.
    return `version: 0.1
log:
  level: info
  formatter: text
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: ${this.dataDir}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: ${this.host}
  secret: ${randomBytes(16).toString('hex')}
`;
  }

  /** Starts the registry on a free port and waits until `GET /v2/` answers 200 (up to 10 s per attempt). */
  async start(): Promise<void> {
    await startOnFreePort((port) => this.spawnAndWait(port), {
      attempts: 4,
      undo: () => this.stop({ keepDir: true }),
      retry: (e) => /address already in use/.test(String(e)),
    });
  }

  private async spawnAndWait(port: number): Promise<void> {
    this.port = port;
    writeFileSync(this.conf, this.config());
    const proc = spawnLogged(this.binary, ['serve', this.conf], this.accessLog, this.errorLog);
    this.proc = proc;
    await waitUntil(async () => (await httpStatus(`${this.url}/v2/`)) === 200, {
      proc,
      what: 'docker-registry',
      until: `answer on ${this.port}`,
      timeoutMs: 10_000,
      detail: () => this.errors(),
    });
  }

  /** The last lines of the registry's own log. */
  errors(): string {
    return existsSync(this.errorLog) ? readFileSync(this.errorLog, 'utf8').slice(-4000) : '';
  }

  /** The access log, parsed: one entry per request served so far. */
  requests(): RegistryRequest[] {
    if (!existsSync(this.accessLog)) return [];
    const out: RegistryRequest[] = [];
    for (const line of readFileSync(this.accessLog, 'utf8').split('\n')) {
      const m = ACCESS_LINE.exec(line);
      if (!m) continue;
      const target = m[2]!;
      const q = target.indexOf('?');
      out.push({
        method: m[1]!,
        path: q < 0 ? target : target.slice(0, q),
        query: q < 0 ? '' : target.slice(q + 1),
        status: Number(m[3]),
        bytes: m[4] === '-' ? 0 : Number(m[4]),
        userAgent: m[5]!,
      });
    }
    return out;
  }

  /** The GET requests for blob `digest` ("sha256:…") served so far, in any repository. */
  blobGets(digest: string): RegistryRequest[] {
    return this.requests().filter((r) => r.method === 'GET' && r.path.endsWith(`/blobs/${digest}`));
  }

  /** Stops the registry by the PID of the process we spawned (SIGTERM, SIGKILL after 5 s); removes the dir. */
  async stop(opts: { keepDir?: boolean } = {}): Promise<void> {
    await stopByPid(this.proc, 5000);
    this.proc = undefined;
    if (!opts.keepDir) rmSync(this.dir, { recursive: true, force: true });
  }
}
