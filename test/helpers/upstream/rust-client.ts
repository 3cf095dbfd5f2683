// The upstream Rust client (crate dragonfly-client, `cargo install`ed): its dfdaemon as a process with a
// dfdaemon.yaml written the way the Rust client documents it (its key names, every path in a temp dir, every port
// a free loopback port: it has no "port 0"), and its dfget. The same YAML is what our dfdaemon must accept
// unchanged, so the writer is shared (`rustStyleConfig`).

import type { ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  freePort,
  httpStatus,
  spawnLogged,
  startOnFreePort,
  stopByPid,
  waitUntil,
} from '../child-process.js';
import { tempDir, type RunResult } from '../daemon.js';
import { runCommand } from '../exec.js';
import { listening, tail } from './databases.js';
import { upstreamPath } from './programs.js';

export interface ClientPorts {
  upload: number;
  proxy: number;
  metrics: number;
  health: number;
  stats: number;
  vortex: number;
  quic: number;
}

export async function freeClientPorts(): Promise<ClientPorts> {
  const taken = new Set<number>();
  const next = async () => {
    for (;;) {
      const p = await freePort();
      if (!taken.has(p)) {
        taken.add(p);
        return p;
      }
    }
  };
  return {
    upload: await next(),
    proxy: await next(),
    metrics: await next(),
    health: await next(),
    stats: await next(),
    vortex: await next(),
    quic: await next(),
  };
}

export interface ClientConfigOptions {
  hostname: string;
  /** A seed peer of type super. */
  seed?: boolean;
  /** `manager.addr`; without it the scheduler comes from the dynconfig file. */
  managerAddr?: string;
}

/**
 * dfdaemon.yaml as written for dragonfly-client 1.5 (dragonfly-client-config/src/dfdaemon.rs): the socket at
 * `<dir>/dfdaemon.sock`, storage in `<dir>/storage`, everything on 127.0.0.1.
 */
export function rustStyleConfig(dir: string, ports: ClientPorts, o: ClientConfigOptions): string {
  return `host:
  hostname: ${o.hostname}
  ip: 127.0.0.1
  idc: ''
  location: ''
server:
  pluginDir: ${join(dir, 'plugins')}
  cacheDir: ${join(dir, 'cache')}
download:
  server:
    socketPath: ${join(dir, 'dfdaemon.sock')}
    requestRateLimit: 4000
  protocol: tcp
  bandwidthLimit: 50GB
  pieceTimeout: 40s
  concurrentPieceCount: 10
upload:
  server:
    ip: 127.0.0.1
    port: ${ports.upload}
  disableShared: false
  bandwidthLimit: 50GB
${o.managerAddr ? `manager:\n  addr: ${o.managerAddr}\n` : ''}scheduler:
  announceInterval: 10s
  scheduleTimeout: 30s
  maxScheduleCount: 5
  enableBackToSource: true
seedPeer:
  enable: ${o.seed ? 'true' : 'false'}
  type: ${o.seed ? 'super' : 'normal'}
dynconfig:
  refreshInterval: 1m
storage:
  server:
    ip: 127.0.0.1
    tcpPort: ${ports.vortex}
    quicPort: ${ports.quic}
  dir: ${join(dir, 'storage')}
  keep: false
  writeBufferSize: 131072
  readBufferSize: 131072
gc:
  interval: 900s
  policy:
    taskTTL: 21600s
    distHighThresholdPercent: 80
    distLowThresholdPercent: 60
proxy:
  server:
    ip: 127.0.0.1
    port: ${ports.proxy}
  rules:
    - regex: 'blobs/sha256.*'
  disableBackToSource: false
  prefetch: false
  readBufferSize: 32768
health:
  server:
    ip: 127.0.0.1
    port: ${ports.health}
metrics:
  server:
    ip: 127.0.0.1
    port: ${ports.metrics}
stats:
  server:
    ip: 127.0.0.1
    port: ${ports.stats}
security:
  enable: false
network:
  enableIPv6: false
`;
}

export interface RustDaemonOptions {
  hostname?: string;
  seed?: boolean;
  /** The scheduler, through a dynconfig file. */
  schedulerAddr?: string;
  managerAddr?: string;
}

export class RustDaemon {
  readonly dir = tempDir('dft-rust-');
  readonly configPath = join(this.dir, 'dfdaemon.yaml');
  readonly dynconfigPath = join(this.dir, 'dynconfig.yaml');
  readonly log = join(this.dir, 'dfdaemon.log');
  readonly socket = join(this.dir, 'dfdaemon.sock');
  readonly storageDir = join(this.dir, 'storage');
  readonly hostname: string;
  ports!: ClientPorts;
  private proc?: ChildProcess;

  constructor(private readonly o: RustDaemonOptions = {}) {
    this.hostname = o.hostname ?? `rust-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  }

  /** The host id the Rust client announces (dragonfly-client-util id_generator: `ip-hostname[-seed]`). */
  get hostId(): string {
    return `127.0.0.1-${this.hostname}${this.o.seed ? '-seed' : ''}`;
  }

  async start(): Promise<void> {
    const bin = upstreamPath('dfdaemon');
    if (this.o.schedulerAddr) {
      writeFileSync(this.dynconfigPath, `scheduler:\n  addrs:\n    - ${this.o.schedulerAddr}\n`);
    }
    mkdirSync(join(this.dir, 'logs'), { recursive: true });
    await startOnFreePort(
      async () => {
        this.ports = await freeClientPorts();
        writeFileSync(
          this.configPath,
          rustStyleConfig(this.dir, this.ports, {
            hostname: this.hostname,
            seed: this.o.seed,
            managerAddr: this.o.managerAddr,
          }),
        );
        this.proc = spawnLogged(
          bin,
          [
            '-c',
            this.configPath,
            '--dynconfig',
            this.dynconfigPath,
            '--log-dir',
            join(this.dir, 'logs'),
            '--console',
            '-l',
            'info',
          ],
          this.log,
        );
        const proc = this.proc;
        await waitUntil(
          async () =>
            (await httpStatus(`http://127.0.0.1:${this.ports.health}/healthy`)) === 200 &&
            (await listening(this.ports.upload)) &&
            (await listening(this.ports.vortex)),
          {
            proc,
            what: 'Rust dfdaemon',
            until: 'answer /healthy and listen on its upload and Vortex ports',
            timeoutMs: 60_000,
            detail: () => tail(this.log),
          },
        );
      },
      {
        attempts: 3,
        undo: () => stopByPid(this.proc, 10_000),
        retry: () => /address already in use/i.test(tail(this.log)),
      },
    );
  }

  /** The dfdaemon's PID (for /proc), while it runs. */
  pid(): number | undefined {
    return this.proc?.pid;
  }

  async metricsText(): Promise<string> {
    const res = await fetch(`http://127.0.0.1:${this.ports.metrics}/metrics`);
    return res.text();
  }

  logTail(n = 4000): string {
    return tail(this.log, n);
  }

  async stop(opts: { keepDir?: boolean } = {}): Promise<void> {
    await stopByPid(this.proc, 10_000);
    if (!opts.keepDir) rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The Rust dfget against the dfdaemon whose socket is `socket`. */
export function rustDfget(
  socket: string,
  url: string,
  output: string,
  extra: string[] = [],
): Promise<RunResult> {
  return runCommand(upstreamPath('dfget'), [url, '-O', output, '-e', socket, '--no-progress', ...extra], {
    timeoutMs: 180_000,
  });
}

/** The Rust dfcache with `args`; the endpoint is among them (each subcommand takes `-e`). */
export function rustDfcache(args: string[]): Promise<RunResult> {
  return runCommand(upstreamPath('dfcache'), args, { timeoutMs: 120_000 });
}

export function rustDfstore(args: string[]): Promise<RunResult> {
  return runCommand(upstreamPath('dfstore'), args, { timeoutMs: 120_000 });
}

/**
 * The task id the Rust `dfcache import` prints. It prints it only in its progress spinner ("Done: <id>"), which it
 * draws on a terminal alone: without one (and with --no-progress) a successful import prints nothing. So the import
 * runs under `script`, which gives it a pseudo-terminal.
 */
export async function rustDfcacheImport(args: string[]): Promise<RunResult & { taskId?: string }> {
  const line = [upstreamPath('dfcache'), 'import', ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`);
  const r = await runCommand('script', ['-qec', line.join(' '), '/dev/null'], { timeoutMs: 120_000 });
  const plain = withoutAnsi(r.stdout);
  return { ...r, stdout: plain, taskId: /Done: ([0-9a-f]{64})/.exec(plain)?.[1] };
}

/** The Rust CLIs colour their messages; tests compare the words. */
export function withoutAnsi(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\x1b\[[0-9;]*[A-Za-z]/g, '');
}
