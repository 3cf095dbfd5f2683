// The servers inside the namespaces: the origin and dfscheduler (origin namespace) and one dfdaemon per host.
// Each runs as `ip netns exec NS node ARGS` (ip execs node, so the PID is node's), its stdout and stderr to a
// log file, and counts as started once a line containing its ready message shows up.

import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, readFileSync, writeFileSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { DFDAEMON } from '../../test/helpers/daemon.js';
import { DFSCHEDULER } from '../../test/helpers/scheduler-process.js';
import { MIB } from './content.js';
import { ORIGIN_PORT } from './origin.js';
import { killProc, track } from './procs.js';
import type { Host, Topology } from './topology.js';

export const SCHEDULER_PORT = 8002;

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
  args: string[];
  ready: string;
  logPath: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
}): Promise<Server> {
  const proc = track(
    spawn('ip', ['netns', 'exec', o.ns, process.execPath, ...o.args], {
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
        if (line.includes(o.ready)) {
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
  writeFileSync(conf, `server:\n  listenIP: ${topo.origin.ip}\n  port: ${SCHEDULER_PORT}\n`);
  return startInNs({
    name: 'dfscheduler',
    ns: topo.origin.ns,
    args: [DFSCHEDULER, '-c', conf, '--console', '-l', logLevel],
    ready: '"scheduler started"',
    logPath: join(logDir, 'scheduler.log'),
  });
}

/**
 * dfdaemon.yaml of a bench host. The seed fetches from the origin on the scheduler's behalf, and the origin is on
 * a private address (10.x): security.allowedPrivateSources must name it (docs/security.md).
 */
export function daemonConfig(
  h: Host,
  seed: boolean,
  uploadLimit?: string,
  originIp?: string,
  queueLimit?: number,
): string {
  return `host:
  ip: ${h.ip}
  hostname: ${h.ns}
download:
  server:
    socketPath: ${join(h.dir, 'dfdaemon.sock')}
health:
  server:
    ip: 127.0.0.1
metrics:
  server:
    ip: 127.0.0.1
upload:
  server:
    ip: ${h.ip}
${uploadLimit ? `  bandwidthLimit: ${uploadLimit}\n` : ''}storage:
  dir: ${join(h.dir, 'storage')}
  server:
    ip: ${h.ip}
${queueLimit !== undefined ? `    queueLimit: ${queueLimit}\n` : ''}embeddedScheduler:
  enable: false
${seed ? 'seedPeer:\n  enable: true\n  type: super\n' : ''}${
    seed && originIp ? `security:\n  allowedPrivateSources: [${originIp}]\n` : ''
  }`;
}

/** The metadata database a daemon on `h` keeps its piece records in (src/storage/storage.ts). */
export function metadataDb(h: Host): string {
  return join(h.dir, 'storage', 'metadata', 'dfdaemon.db');
}

/**
 * Starts one dfdaemon per host: the seed first (so it is announced before any peer registers a task), then the
 * peers in parallel. hosts[i] ↔ result[i].
 */
export async function startDaemons(
  topo: Topology,
  o: {
    logDir: string;
    logLevel: string;
    uploadLimit?: string;
    queueLimit?: number;
    startConcurrency: number;
  },
): Promise<Server[]> {
  const schedulerAddr = `${topo.origin.ip}:${SCHEDULER_PORT}`;
  const timeoutMs = 60_000;
  const start = (h: Host, seed: boolean) => {
    const conf = join(h.dir, 'dfdaemon.yaml');
    const dyn = join(h.dir, 'dynconfig.yaml');
    writeFileSync(conf, daemonConfig(h, seed, o.uploadLimit, topo.origin.ip, o.queueLimit));
    writeFileSync(dyn, `scheduler:\n  addrs:\n    - ${schedulerAddr}\n`);
    mkdirSync(join(h.dir, 'out'), { recursive: true });
    return startInNs({
      name: h.name,
      ns: h.ns,
      args: [DFDAEMON, '-c', conf, '--dynconfig', dyn, '--console', '-l', o.logLevel],
      ready: '"dfdaemon started"',
      logPath: join(o.logDir, `${h.name}.log`),
      env: { HOME: h.dir },
      timeoutMs,
    });
  };
  const seed = await start(topo.hosts[0]!, true);
  // A few at a time: 32 Node processes starting at once on 2 cores starve each other long enough for the
  // daemons' scheduler health check (a few seconds' deadline) to fail, and a daemon without a scheduler exits.
  const peers = topo.hosts.slice(1);
  const started: Server[] = new Array<Server>(peers.length);
  let next = 0;
  const worker = async () => {
    while (next < peers.length) {
      const i = next++;
      started[i] = await start(peers[i]!, false);
    }
  };
  await Promise.all(Array.from({ length: Math.min(o.startConcurrency, peers.length) }, worker));
  return [seed, ...started];
}

export async function stopServers(servers: Server[]): Promise<void> {
  await Promise.all(servers.map((s) => killProc(s.proc)));
}
