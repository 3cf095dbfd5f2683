// The servers inside the namespaces: the origin and dfscheduler (origin namespace) and one dfdaemon per host,
// ours or the upstream Rust one (modes.ts). Each runs as `ip netns exec NS PROGRAM ARGS` (ip execs the program,
// so the PID is the program's), its stdout and stderr to a log file, and counts as started once a line containing
// each of its ready messages has shown up.

import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, readFileSync, writeFileSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { DFDAEMON, dfdaemonEnv, dfdaemonNodeFlags } from '../../test/helpers/daemon.js';
import { DFSCHEDULER } from '../../test/helpers/scheduler-process.js';
import { upstreamPath } from '../../test/helpers/upstream/programs.js';
import { MIB } from './content.js';
import type { DaemonKind } from './modes.js';
import { ORIGIN_PORT } from './origin.js';
import { killProc, track } from './procs.js';
import type { Host, Topology } from './topology.js';

export const SCHEDULER_PORT = 8002;
/** Every dfdaemon's metrics port: the Rust one does not name its ports in a log line, so the config fixes it. */
export const METRICS_PORT = 4002;
/** The first run's storage.server.tcpPort; run n of a scenario uses VORTEX_PORT_BASE + n (daemonConfig). */
export const VORTEX_PORT_BASE = 4100;

export interface Server {
  name: string;
  proc: ChildProcess;
  pid: number;
  logPath: string;
  /** The ready line, parsed (dfdaemon's "dfdaemon started" names its ports). */
  started: Record<string, unknown>;
}

function tail(path: string, lines = 20): string {
  try {
    return readFileSync(path, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

export function startInNs(o: {
  name: string;
  ns: string;
  /** Default: this Node.js. */
  program?: string;
  args: string[];
  /** Lines containing each of these must have shown up (in any order); the last one is parsed as JSON. */
  ready: string | string[];
  logPath: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
}): Promise<Server> {
  const pending = new Set(typeof o.ready === 'string' ? [o.ready] : o.ready);
  const proc = track(
    spawn('ip', ['netns', 'exec', o.ns, o.program ?? process.execPath, ...o.args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...o.env },
    }),
  );
  const out: WriteStream = createWriteStream(o.logPath);
  let buf = '';
  let isReady = false;
  const timeoutMs = o.timeoutMs ?? 60_000;
  return new Promise<Server>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${o.name} did not start in ${timeoutMs / 1000} s; see ${o.logPath}`)),
      timeoutMs,
    );
    const onData = (d: string) => {
      out.write(d);
      if (isReady) return;
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        for (const r of pending) if (line.includes(r)) pending.delete(r);
        if (pending.size === 0) {
          isReady = true;
          clearTimeout(timer);
          let started: Record<string, unknown> = {};
          try {
            started = JSON.parse(line) as Record<string, unknown>;
          } catch {
            // not JSON
          }
          buf = '';
          resolve({ name: o.name, proc, pid: proc.pid!, logPath: o.logPath, started });
          return;
        }
      }
      if (buf.length > MIB) buf = '';
    };
    proc.stdout!.setEncoding('utf8').on('data', onData);
    proc.stderr!.setEncoding('utf8').on('data', onData);
    proc.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    proc.once('exit', (code, sig) => {
      clearTimeout(timer);
      out.end();
      if (!isReady)
        reject(new Error(`${o.name} exited (${code ?? sig}) before it was ready; log:\n${tail(o.logPath)}`));
    });
  });
}

/** The origin server: this benchmark's entry file run with `--origin`. */
export function startOrigin(topo: Topology, entryFile: string, logDir: string): Promise<Server> {
  return startInNs({
    name: 'origin',
    ns: topo.origin.ns,
    args: [entryFile, '--origin', topo.origin.ip, String(ORIGIN_PORT)],
    ready: '"origin started"',
    logPath: join(logDir, 'origin.log'),
  });
}

export function startScheduler(topo: Topology, logDir: string, logLevel: string): Promise<Server> {
  const conf = join(topo.origin.dir, 'scheduler.yaml');
  // Its state (server.dataDir) beside its config: each bench run starts from none.
  writeFileSync(
    conf,
    `server:\n  listenIP: ${topo.origin.ip}\n  port: ${SCHEDULER_PORT}\n  dataDir: ${topo.origin.dir}\n`,
  );
  return startInNs({
    name: 'dfscheduler',
    ns: topo.origin.ns,
    args: [DFSCHEDULER, '-c', conf, '--console', '-l', logLevel],
    ready: '"scheduler started"',
    logPath: join(logDir, 'scheduler.log'),
  });
}

/**
 * dfdaemon.yaml of a bench host, the same file for ours and the Rust dfdaemon (each ignores the other's keys:
 * embeddedScheduler, queueLimit, cutThrough and security.allowedPrivateSources are ours). The seed fetches from the origin on
 * the scheduler's behalf, and the origin is on a private address (10.x): ours needs
 * security.allowedPrivateSources to name it (docs/security.md). The plugin and cache dirs are the host's own
 * (the Rust client's defaults are shared system paths). The Vortex port changes from run to run (vortexPort):
 * the Rust dfdaemon binds it without SO_REUSEADDR, so it cannot start on a port whose earlier listener's
 * connections are still in TIME_WAIT (60 s), which is every port that served pieces in the run before.
 */
export function daemonConfig(
  h: Host,
  o: {
    seed: boolean;
    vortexPort: number;
    uploadLimit?: string;
    originIp?: string;
    queueLimit?: number;
    cutThrough?: boolean;
  },
): string {
  const { seed, uploadLimit, originIp, queueLimit, cutThrough } = o;
  return `host:
  ip: ${h.ip}
  hostname: ${h.ns}
server:
  pluginDir: ${join(h.dir, 'plugins')}
  cacheDir: ${join(h.dir, 'cache')}
download:
  server:
    socketPath: ${join(h.dir, 'dfdaemon.sock')}
health:
  server:
    ip: 127.0.0.1
metrics:
  server:
    ip: 127.0.0.1
    port: ${METRICS_PORT}
upload:
  server:
    ip: ${h.ip}
${uploadLimit ? `  bandwidthLimit: ${uploadLimit}\n` : ''}storage:
  dir: ${join(h.dir, 'storage')}
  server:
    ip: ${h.ip}
    tcpPort: ${o.vortexPort}
${queueLimit !== undefined ? `    queueLimit: ${queueLimit}\n` : ''}${
    cutThrough !== undefined ? `    cutThrough: ${cutThrough}\n` : ''
  }embeddedScheduler:
  enable: false
${seed ? 'seedPeer:\n  enable: true\n  type: super\n' : ''}${
    seed && originIp ? `security:\n  allowedPrivateSources: [${originIp}]\n` : ''
  }`;
}

/** The metadata database a daemon on `h` keeps its piece records in (src/storage/storage.ts). */
export function metadataDb(h: Host): string {
  return join(h.dir, 'storage', 'metadata', 'dfdaemon.db');
}

/** The lines the Rust dfdaemon (1.5) logs once its servers listen; it logs no line with its ports. */
const RUST_READY = [
  'dfdaemon started at pid',
  'upload server listening on',
  'storage tcp server listening on',
  'download server listening on',
];
/**
 * The Rust dfdaemon logs each piece it starts and finishes (parent, source) at debug level only, in its task
 * module: that module at debug gives the piece timelines (rust-log.ts) without the rest of its debug output.
 */
const RUST_LOG_FILTER = 'dragonfly_client::resource::task=debug';

/** How to start one dfdaemon of `kind` with config `conf`. */
function daemonCommand(
  kind: DaemonKind,
  h: Host,
  conf: string,
  dyn: string,
  logLevel: string,
): { program?: string; args: string[]; ready: string | string[]; env: NodeJS.ProcessEnv } {
  const common = ['-c', conf, '--dynconfig', dyn, '--console', '-l', logLevel];
  if (kind === 'ours')
    // As the installed binary runs: its shebang's node flags and environment.
    return {
      args: [...dfdaemonNodeFlags(), DFDAEMON, ...common],
      ready: '"dfdaemon started"',
      env: { ...dfdaemonEnv(), HOME: h.dir },
    };
  return {
    program: upstreamPath('dfdaemon'),
    args: [...common, '--log-dir', join(h.dir, 'logs')],
    ready: RUST_READY,
    env: { HOME: h.dir, RUST_LOG: RUST_LOG_FILTER },
  };
}

/**
 * Starts one dfdaemon per host, `kinds[i]` on hosts[i]: the seed first (so it is announced before any peer
 * registers a task), then the peers in parallel. hosts[i] ↔ result[i].
 */
export async function startDaemons(
  topo: Topology,
  o: {
    kinds: DaemonKind[];
    /** storage.server.tcpPort: a new one for every run (daemonConfig says why). */
    vortexPort: number;
    logDir: string;
    logLevel: string;
    uploadLimit?: string;
    queueLimit?: number;
    cutThrough?: boolean;
    startConcurrency: number;
  },
): Promise<Server[]> {
  const schedulerAddr = `${topo.origin.ip}:${SCHEDULER_PORT}`;
  const timeoutMs = 60_000;
  const start = (h: Host, i: number) => {
    const conf = join(h.dir, 'dfdaemon.yaml');
    const dyn = join(h.dir, 'dynconfig.yaml');
    writeFileSync(
      conf,
      daemonConfig(h, {
        seed: i === 0,
        vortexPort: o.vortexPort,
        uploadLimit: o.uploadLimit,
        originIp: topo.origin.ip,
        queueLimit: o.queueLimit,
        cutThrough: o.cutThrough,
      }),
    );
    writeFileSync(dyn, `scheduler:\n  addrs:\n    - ${schedulerAddr}\n`);
    mkdirSync(join(h.dir, 'out'), { recursive: true });
    return startInNs({
      name: h.name,
      ns: h.ns,
      ...daemonCommand(o.kinds[i]!, h, conf, dyn, o.logLevel),
      logPath: join(o.logDir, `${h.name}.log`),
      timeoutMs,
    });
  };
  const seed = await start(topo.hosts[0]!, 0);
  // A few at a time: 32 Node processes starting at once on 2 cores starve each other long enough for the
  // daemons' scheduler health check (a few seconds' deadline) to fail, and a daemon without a scheduler exits.
  const peers = topo.hosts.slice(1);
  const started: Server[] = new Array<Server>(peers.length);
  let next = 0;
  const worker = async () => {
    while (next < peers.length) {
      const i = next++;
      started[i] = await start(peers[i]!, i + 1);
    }
  };
  await Promise.all(Array.from({ length: Math.min(o.startConcurrency, peers.length) }, worker));
  return [seed, ...started];
}

export async function stopServers(servers: Server[]): Promise<void> {
  await Promise.all(servers.map((s) => killProc(s.proc)));
}
