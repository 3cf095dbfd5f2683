// The upstream Go control plane as real processes: the manager (MariaDB + Redis behind it) and the scheduler,
// each with its own config file in a temp dir, on free loopback ports, `console: true` so their logs land in one
// file we can quote, ended by PID. Keys and defaults are those of d7y.io/dragonfly/v2 v2.5.1
// (manager/config/config.go, scheduler/config/config.go).

import type { ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { credentials, Metadata } from '@grpc/grpc-js';
import { freePort, spawnLogged, startOnFreePort, stopByPid, waitUntil } from '../child-process.js';
import { tempDir } from '../daemon.js';
import { ManagerClient, SourceType } from '../../../src/gen/manager.js';
import { MariaDb, Redis, listening, tail, type MariaDbAccount } from './databases.js';
import { upstreamPath } from './programs.js';

/** Whether the log of a Go program says its port was taken (worth another try on another port). */
const portTaken = (log: string) => /address already in use/i.test(log);

/** A manager job as the REST API shows it; `result.job_states[].results` hold each scheduler's JSON answer. */
export interface ManagerJob {
  id: number;
  type: string;
  state: string;
  result?: { job_states?: Array<{ state: string; results?: unknown[]; error?: string }> };
}

/** Every scheduler's answer in a job's result, parsed (each is a JSON string). */
export function jobResults(job: ManagerJob): unknown[] {
  return (job.result?.job_states ?? []).flatMap((s) =>
    (s.results ?? []).map((r) => (typeof r === 'string' ? (JSON.parse(r) as unknown) : r)),
  );
}

export class GoManager {
  readonly dir = tempDir('dft-manager-');
  readonly conf = join(this.dir, 'manager.yaml');
  readonly log = join(this.dir, 'manager.log');
  grpcPort = 0;
  restPort = 0;
  private proc?: ChildProcess;
  private token?: string;

  /** `manager.addr` for peers and the scheduler. */
  get addr(): string {
    return `127.0.0.1:${this.grpcPort}`;
  }

  get restUrl(): string {
    return `http://127.0.0.1:${this.restPort}`;
  }

  constructor(
    private readonly db: MariaDbAccount,
    private readonly redisAddr: string,
  ) {}

  private config(): string {
    const d = this.dir;
    return `server:
  name: interop-manager
  logDir: ${join(d, 'logs')}
  pluginDir: ${join(d, 'plugins')}
  grpc:
    advertiseIP: 127.0.0.1
    listenIP: 127.0.0.1
    port:
      start: ${this.grpcPort}
      end: ${this.grpcPort}
  rest:
    addr: 127.0.0.1:${this.restPort}
auth:
  jwt:
    key: interop-test-${process.pid}
database:
  type: mysql
  mysql:
    user: ${this.db.user}
    password: ${this.db.password}
    host: ${this.db.host}
    port: ${this.db.port}
    dbname: ${this.db.database}
    migrate: true
  redis:
    addrs: [${this.redisAddr}]
metrics:
  enable: false
console: true
`;
  }

  async start(): Promise<void> {
    const bin = upstreamPath('manager');
    await startOnFreePort(
      async (port) => {
        this.grpcPort = port;
        this.restPort = await freePort();
        writeFileSync(this.conf, this.config());
        this.proc = spawnLogged(bin, ['--config', this.conf], this.log);
        // The manager migrates its database, then opens gRPC and REST; /healthy answers once REST is up.
        await waitUntil(
          async () => (await listening(this.grpcPort)) && (await this.rest('GET', '/healthy')).status === 200,
          {
            proc: this.proc,
            what: 'manager',
            until: `serve gRPC on ${this.grpcPort} and REST on ${this.restPort}`,
            timeoutMs: 90_000,
            detail: () => tail(this.log),
          },
        );
      },
      { attempts: 3, undo: () => stopByPid(this.proc, 10_000), retry: () => portTaken(tail(this.log)) },
    );
  }

  /** A REST call; `status` 0 when nothing answered. */
  async rest(method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
    try {
      const res = await fetch(`${this.restUrl}${path}`, {
        method,
        headers: {
          'content-type': 'application/json',
          ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(10_000),
      });
      const text = await res.text();
      let json: unknown = text;
      try {
        json = JSON.parse(text);
      } catch {
        // not JSON: keep the text
      }
      return { status: res.status, json };
    } catch {
      return { status: 0, json: undefined };
    }
  }

  /** Signs in as the root user the manager creates on its first start (root / dragonfly). */
  async signIn(): Promise<void> {
    this.token = undefined;
    const r = await this.rest('POST', '/api/v1/users/signin', { name: 'root', password: 'dragonfly' });
    const token = (r.json as { token?: string } | undefined)?.token;
    if (r.status !== 200 || !token) throw new Error(`manager sign-in: ${r.status} ${JSON.stringify(r.json)}`);
    this.token = token;
  }

  /**
   * Creates a job through the REST API (signed in) and waits until the manager records it SUCCESS or FAILURE.
   * The manager polls a job's state 30 s after creating it, then with back-off, so this takes 30 s at least.
   * Resolves with the job as GET /api/v1/jobs/:id answers it; rejects when it is not done in `timeoutMs`.
   */
  async runJob(body: unknown, timeoutMs = 180_000): Promise<ManagerJob> {
    if (!this.token) await this.signIn();
    const created = await this.rest('POST', '/api/v1/jobs', body);
    if (created.status !== 200)
      throw new Error(`create job: ${created.status} ${JSON.stringify(created.json)}`);
    const id = (created.json as { id: number }).id;
    const deadline = Date.now() + timeoutMs;
    let job: ManagerJob | undefined;
    while (Date.now() < deadline) {
      job = (await this.rest('GET', `/api/v1/jobs/${id}`)).json as ManagerJob;
      if (job?.state === 'SUCCESS' || job?.state === 'FAILURE') return job;
      await new Promise((r) => setTimeout(r, 2000));
    }
    throw new Error(`job ${id} not done in ${timeoutMs} ms: ${JSON.stringify(job)}`);
  }

  /**
   * The schedulers the manager hands a peer, as ListSchedulers answers it. `hostname` should be new each time:
   * the manager caches an answer per hostname and ip for minutes, an empty one too.
   */
  async listSchedulers(hostname: string): Promise<Array<{ ip: string; port: number }>> {
    const client = new ManagerClient(this.addr, credentials.createInsecure());
    try {
      return await new Promise((resolve, reject) =>
        client.listSchedulers(
          {
            sourceType: SourceType.PEER_SOURCE,
            hostname,
            ip: '127.0.0.1',
            version: '0.0.0',
            commit: '',
            schedulerClusterId: 0,
          },
          new Metadata(),
          { deadline: Date.now() + 5000 },
          (err, res) => (err ? reject(err) : resolve(res.schedulers)),
        ),
      );
    } finally {
      client.close();
    }
  }

  async stop(opts: { keepDir?: boolean } = {}): Promise<void> {
    await stopByPid(this.proc, 10_000);
    if (!opts.keepDir) rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface GoSchedulerOptions {
  /** The manager to announce to (cluster 1, the manager's default); without it the scheduler stands alone. */
  manager?: GoManager;
  /** Redis for the job queue (preheat); with a manager only. */
  redisAddr?: string;
  /** `scheduler.retryInterval` (upstream default 1s). */
  retryInterval?: string;
}

export class GoScheduler {
  readonly dir = tempDir('dft-scheduler-');
  readonly conf = join(this.dir, 'scheduler.yaml');
  readonly log = join(this.dir, 'scheduler.log');
  readonly hostname = `interop-scheduler-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  port = 0;
  /** When it started listening: the seed peers it knows are refreshed every 30 s from then. */
  startedAt = 0;
  private proc?: ChildProcess;

  constructor(private readonly o: GoSchedulerOptions = {}) {}

  get addr(): string {
    return `127.0.0.1:${this.port}`;
  }

  private config(): string {
    const d = this.dir;
    const jobs = this.o.manager && this.o.redisAddr;
    // advertisePort: upstream defaults it to 8002, not to `port`: the manager would hand peers the wrong port.
    return `server:
  advertiseIP: 127.0.0.1
  advertisePort: ${this.port}
  listenIP: 127.0.0.1
  port: ${this.port}
  host: ${this.hostname}
  logDir: ${join(d, 'logs')}
  pluginDir: ${join(d, 'plugins')}
  dataDir: ${join(d, 'data')}
scheduler:
  retryInterval: ${this.o.retryInterval ?? '1s'}
${
  jobs
    ? `database:
  redis:
    addrs: [${this.o.redisAddr}]
job:
  enable: true
  globalWorkerNum: 2
  schedulerWorkerNum: 2
  localWorkerNum: 4
`
    : `job:
  enable: false
`
}${
      this.o.manager
        ? `manager:
  addr: ${this.o.manager.addr}
  schedulerClusterID: 1
  keepAlive:
    interval: 2s
`
        : ''
    }metrics:
  enable: false
console: true
`;
  }

  async start(): Promise<void> {
    const bin = upstreamPath('scheduler');
    mkdirSync(join(this.dir, 'data'), { recursive: true });
    await startOnFreePort(
      async (port) => {
        this.port = port;
        writeFileSync(this.conf, this.config());
        // --dynconfig: without a manager the scheduler writes a default dynconfig there, by default into
        // /etc/dragonfly/dynconfig.yaml — where our dfdaemon (like upstream's) looks for its schedulers.
        const dynconfig = join(this.dir, 'dynconfig.yaml');
        this.proc = spawnLogged(bin, ['--config', this.conf, '--dynconfig', dynconfig], this.log);
        const proc = this.proc;
        await waitUntil(() => listening(port), {
          proc,
          what: 'scheduler',
          until: `listen on ${port}`,
          timeoutMs: 60_000,
          detail: () => tail(this.log),
        });
        this.startedAt = Date.now();
        const manager = this.o.manager;
        if (!manager) return;
        // The manager lists a scheduler once a keepalive marked it active.
        let probe = 0;
        await waitUntil(
          async () =>
            (
              await manager.listSchedulers(`interop-probe-${process.pid}-${port}-${probe++}`).catch(() => [])
            ).some((s) => s.port === port),
          {
            proc,
            what: 'scheduler',
            until: `become active in the manager's ListSchedulers`,
            timeoutMs: 60_000,
            detail: () => tail(this.log),
          },
        );
      },
      { attempts: 3, undo: () => stopByPid(this.proc, 10_000), retry: () => portTaken(tail(this.log)) },
    );
  }

  /**
   * Waits until the scheduler's 30-second seed-peer refresh (scheduler/resource/standard/seed_peer.go) ran after
   * `since` (when the seed announced itself): only then can it trigger or preheat on that seed.
   */
  async waitForSeedRefresh(since: number): Promise<void> {
    const period = 30_000;
    const sinceStart = Math.max(0, since - this.startedAt);
    const nextTick = this.startedAt + (Math.floor(sinceStart / period) + 1) * period;
    // A little past the tick: the refresh health-checks each seed before it adds it.
    const wait = nextTick + 2000 - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }

  /** The log so far (for assertion messages). */
  logTail(n = 4000): string {
    return tail(this.log, n);
  }

  async stop(opts: { keepDir?: boolean } = {}): Promise<void> {
    await stopByPid(this.proc, 10_000);
    if (!opts.keepDir) rmSync(this.dir, { recursive: true, force: true });
  }
}

/** MariaDB, Redis, the manager and a scheduler in it, started in that order and stopped in the reverse. */
export class GoControlPlane {
  readonly mariadb = new MariaDb();
  readonly redis = new Redis();
  manager?: GoManager;
  scheduler?: GoScheduler;

  async start(o: { retryInterval?: string } = {}): Promise<void> {
    const [db] = await Promise.all([this.mariadb.start(), this.redis.start()]);
    this.manager = new GoManager(db, this.redis.addr);
    await this.manager.start();
    this.scheduler = new GoScheduler({
      manager: this.manager,
      redisAddr: this.redis.addr,
      retryInterval: o.retryInterval,
    });
    await this.scheduler.start();
  }

  async stop(opts: { keepDirs?: boolean } = {}): Promise<void> {
    await this.scheduler?.stop({ keepDir: opts.keepDirs });
    await this.manager?.stop({ keepDir: opts.keepDirs });
    await Promise.all([this.redis.stop(), this.mariadb.stop()]);
  }
}
