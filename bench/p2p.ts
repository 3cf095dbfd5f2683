// `npm run bench:p2p`: P2P distribution over shaped links between network namespaces on one machine.
//
// Topology (all names carry a random suffix, all addresses live only inside the namespaces made here):
//   dfp2p-SFX-br  a bridge `br0`; every other namespace has a veth `eth0` whose peer is a port of br0
//   dfp2p-SFX-o   the origin (this file run with `--origin`: generated content, Range, streamed) and dfscheduler
//   dfp2p-SFX-h0  the seed peer (seedPeer enable, type super)
//   dfp2p-SFX-hI  peers 1..N-1
// Every eth0 (egress) and every bridge port (the host's ingress) has `tbf rate R burst B latency 400ms`.
//
// Measures
//   link: curl of S bytes from the origin to one peer namespace (one shaped link, no dfdaemon)
//   (a)   one dfget on peer 1 alone (cold task)
//   (b)   peers 1..N-1 dfget another (cold) task concurrently
// and reports (b) against the P2P floor S·8/R (every peer must take S bytes through its own link) and against the
// origin-only baseline (N-1)·S·8/R, the origin's bytes served against S, and per peer the download_traffic
// counters by type (from each daemon's /metrics), bytes through eth0, and the daemon's log lines about the task.
//
// Env: P2P_PEERS (N, default 8), P2P_RATE (tc rate, default 200mbit), P2P_SIZE (bytes or 256MiB/1GiB, default
// 256 MiB), P2P_BURST (tc burst, default rate/200 s, at least 16 KiB), P2P_KEEP_LOGS (a dir to copy the logs to),
// P2P_UPLOAD_LIMIT (the daemons' `upload.bandwidthLimit`, e.g. 25MB; default: the daemon's default).
// Writes bench/results/p2p-latest.{json,md} and bench/results/p2p-YYYY-MM-DD.md; never fails on a number.
// Every process started here is ended by PID (processes in a namespace survive `ip netns del`), the namespaces
// (and with them the veths and the bridge) are deleted and the temp dir removed, also on error, SIGINT/SIGTERM
// and the 10-minute watchdog.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes, randomInt } from 'node:crypto';
import {
  createReadStream,
  createWriteStream,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
} from 'node:fs';
import { writeFileSync, type WriteStream } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_FILTERED_QUERY_PARAMS, taskIdFromUrl } from '../src/core/task-id.js';
import { DFDAEMON, DFGET, metricValue } from '../test/helpers/daemon.js';
import { DFSCHEDULER } from '../test/helpers/scheduler-process.js';
import { machineInfo, machineLine, type Machine } from './machine.js';
import { median, procCpuMs } from './proc.js';
import { fmt } from './report.js';

const MIB = 2 ** 20;
const CHUNK = MIB;
const THIS_FILE = fileURLToPath(import.meta.url);
const RESULTS_DIR = fileURLToPath(new URL('../../bench/results/', import.meta.url));
const WATCHDOG_MS = 10 * 60_000;
/** Leave this much of the watchdog's budget for reporting and cleanup. */
const RESERVE_MS = 45_000;
const ORIGIN_PORT = 8080;
const SCHEDULER_PORT = 8002;
const FILES = {
  a: { path: '/a.bin', seed: 1 },
  b: { path: '/b.bin', seed: 2 },
  c: { path: '/c.bin', seed: 3 },
};

const log = (msg: string) => process.stderr.write(`[p2p] ${msg}\n`);

// --- generated content (shared by the origin and the verifier) ---------------------------------------------------

/** 1 MiB of pseudo-random bytes for file `seed`: SHA-256 in counter mode. */
function baseBlock(seed: number): Buffer {
  const b = Buffer.allocUnsafe(CHUNK);
  for (let off = 0, i = 0; off < CHUNK; off += 32, i++) {
    createHash('sha256').update(`dfp2p:${seed}:${i}`).digest().copy(b, off);
  }
  return b;
}

/** Chunk k of a file: the base block stamped with k, so no two chunks (and no two pieces) are equal. */
function chunkOf(base: Buffer, seed: number, k: number): Buffer {
  const c = Buffer.from(base);
  c.writeBigUInt64LE(BigInt(k), 0);
  c.writeUInt32LE(seed, 8);
  c.writeBigUInt64LE((BigInt(k) * 0x9e3779b97f4a7c15n) & 0xffffffffffffffffn, CHUNK / 2);
  return c;
}

function expectedSha256(seed: number, size: number): string {
  const base = baseBlock(seed);
  const h = createHash('sha256');
  for (let k = 0; k * CHUNK < size; k++) {
    const c = chunkOf(base, seed, k);
    h.update(c.subarray(0, Math.min(CHUNK, size - k * CHUNK)));
  }
  return h.digest('hex');
}

// --- the origin (`node p2p.js --origin IP PORT SIZE`, run inside the origin namespace) -----------------------------

interface PathStats {
  requests: number;
  rangeRequests: number;
  bytes: number;
}

async function runOrigin(ip: string, port: number, size: number): Promise<void> {
  const bases = new Map<number, Buffer>();
  const stats: Record<string, PathStats> = {};
  const files = new Map(Object.values(FILES).map((f) => [f.path, f.seed]));
  const server = createServer((req, res) => void handle(req, res));
  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0]!;
    if (path === '/__stats') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(stats));
      return;
    }
    const seed = files.get(path);
    if (seed === undefined) {
      res.writeHead(404).end('not found');
      return;
    }
    const st = (stats[path] ??= { requests: 0, rangeRequests: 0, bytes: 0 });
    st.requests++;
    let start = 0;
    let end = size - 1;
    let status = 200;
    const range = req.headers.range;
    if (range) {
      const m = /^bytes=(\d*)-(\d*)$/.exec(range.trim());
      if (!m || (m[1] === '' && m[2] === '')) {
        res.writeHead(416, { 'content-range': `bytes */${size}` }).end();
        return;
      }
      if (m[1] === '') {
        start = Math.max(0, size - Number(m[2]));
      } else {
        start = Number(m[1]);
        if (m[2] !== '') end = Math.min(Number(m[2]), size - 1);
      }
      if (start >= size || start > end) {
        res.writeHead(416, { 'content-range': `bytes */${size}` }).end();
        return;
      }
      status = 206;
      st.rangeRequests++;
    }
    const headers: Record<string, string | number> = {
      'content-type': 'application/octet-stream',
      'accept-ranges': 'bytes',
      'content-length': end - start + 1,
      'last-modified': 'Mon, 01 Jan 2024 00:00:00 GMT',
      etag: `"dfp2p-${seed}-${size}"`,
    };
    if (status === 206) headers['content-range'] = `bytes ${start}-${end}/${size}`;
    res.writeHead(status, headers);
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    let base = bases.get(seed);
    if (!base) bases.set(seed, (base = baseBlock(seed)));
    // One 1 MiB chunk at a time, waiting for 'drain': memory stays flat whatever the size.
    for (let off = start; off <= end;) {
      const k = Math.floor(off / CHUNK);
      const from = off - k * CHUNK;
      const to = Math.min(CHUNK, end + 1 - k * CHUNK);
      const part = chunkOf(base, seed, k).subarray(from, to);
      if (res.destroyed) return;
      st.bytes += part.length;
      off += part.length;
      if (!res.write(part)) {
        await new Promise<void>((r) => {
          const done = () => {
            res.off('drain', done);
            res.off('close', done);
            r();
          };
          res.on('drain', done);
          res.on('close', done);
        });
      }
    }
    res.end();
  }
  await new Promise<void>((r) => server.listen(port, ip, r));
  process.stdout.write(`${JSON.stringify({ msg: 'origin started', ip, port, size })}\n`);
  const stop = () => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

// --- process, namespace and temp-dir bookkeeping -----------------------------------------------------------------

const children = new Set<ChildProcess>();
const namespaces: string[] = [];
let bridgeNs: string | undefined;
let tmp: string | undefined;
let keepLogsDir: string | undefined;
let cleaning: Promise<void> | undefined;

function track(p: ChildProcess): ChildProcess {
  children.add(p);
  p.once('exit', () => children.delete(p));
  return p;
}

function alive(p: ChildProcess): boolean {
  return p.exitCode === null && p.signalCode === null;
}

async function killProc(p: ChildProcess, graceMs = 5000): Promise<void> {
  if (!alive(p) || p.pid === undefined) return;
  const exited = new Promise<void>((r) => p.once('exit', () => r()));
  try {
    process.kill(p.pid, 'SIGTERM');
  } catch {
    return;
  }
  const t = setTimeout(() => {
    try {
      if (p.pid !== undefined && alive(p)) process.kill(p.pid, 'SIGKILL');
    } catch {
      // gone
    }
  }, graceMs);
  await exited;
  clearTimeout(t);
}

/** Runs a command to completion (bounded); never rejects. */
function exec(
  cmd: string,
  args: string[],
  timeoutMs = 30_000,
): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  return new Promise((resolve) => {
    const start = performance.now();
    const p = track(spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
    let stdout = '';
    let stderr = '';
    p.stdout!.setEncoding('utf8').on('data', (d: string) => {
      if (stdout.length < 4 * MIB) stdout += d;
    });
    p.stderr!.setEncoding('utf8').on('data', (d: string) => {
      if (stderr.length < 64 * 1024) stderr += d;
    });
    const t = setTimeout(() => {
      if (p.pid !== undefined && alive(p)) process.kill(p.pid, 'SIGKILL');
    }, timeoutMs);
    p.once('error', (e) => {
      clearTimeout(t);
      resolve({ code: -1, stdout, stderr: `${stderr}${e.message}`, ms: performance.now() - start });
    });
    p.once('close', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr, ms: performance.now() - start });
    });
  });
}

/** Like exec, but throws on a non-zero exit: for the namespace set-up, where a failure must stop the run. */
async function must(cmd: string, args: string[]): Promise<string> {
  const r = await exec(cmd, args);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

/** Processes still inside one of our namespaces (started here, the names are unique to this run). */
function nsPids(ns: string): number[] {
  const r = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8', timeout: 5000 });
  return (r.stdout ?? '')
    .split('\n')
    .map((s) => Number(s.trim()))
    .filter((n) => Number.isInteger(n) && n > 0);
}

function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    // Servers first (daemons, scheduler, origin, running dfget/curl), by PID.
    await Promise.all([...children].map((p) => killProc(p).catch(() => undefined)));
    for (const ns of [...namespaces].reverse()) {
      for (const pid of nsPids(ns)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
    }
    if (bridgeNs) spawnSync('ip', ['-n', bridgeNs, 'link', 'del', 'br0'], { timeout: 5000 });
    for (const ns of [...namespaces].reverse()) spawnSync('ip', ['netns', 'del', ns], { timeout: 10_000 });
    namespaces.length = 0;
    if (tmp) {
      if (keepLogsDir) {
        try {
          mkdirSync(keepLogsDir, { recursive: true });
          cpSync(join(tmp, 'logs'), keepLogsDir, { recursive: true });
          log(`logs copied to ${keepLogsDir}`);
        } catch (e) {
          log(`could not keep the logs: ${(e as Error).message}`);
        }
      }
      rmSync(tmp, { recursive: true, force: true });
      tmp = undefined;
    }
  })();
  return cleaning;
}

/** Last resort on exit: synchronous, by PID and by name of the namespaces made here. */
function cleanupSync(): void {
  for (const p of children) {
    try {
      if (p.pid !== undefined && alive(p)) process.kill(p.pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  for (const ns of [...namespaces].reverse()) {
    for (const pid of nsPids(ns)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    spawnSync('ip', ['netns', 'del', ns], { timeout: 10_000 });
  }
  if (tmp) rmSync(tmp, { recursive: true, force: true });
}

// --- parameters --------------------------------------------------------------------------------------------------

function parseSize(s: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*$/i.exec(s);
  if (!m) throw new Error(`P2P_SIZE: cannot parse "${s}" (bytes, or e.g. 256MiB)`);
  const unit = (m[2] ?? '').toLowerCase().replace(/i?b$/, '');
  const mult = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 }[unit];
  if (mult === undefined) throw new Error(`P2P_SIZE: unknown unit in "${s}"`);
  return Math.round(Number(m[1]) * mult);
}

/** A tc rate ("200mbit"): SI multiples as tc reads them. Returns bits per second. */
function parseRate(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(bit|kbit|mbit|gbit)$/i.exec(s.trim());
  if (!m) throw new Error(`P2P_RATE: cannot parse "${s}" (e.g. 200mbit)`);
  const mult = { bit: 1, kbit: 1e3, mbit: 1e6, gbit: 1e9 }[m[2]!.toLowerCase() as 'bit']!;
  return Number(m[1]) * mult;
}

// --- namespaces --------------------------------------------------------------------------------------------------

interface Host {
  name: string;
  ns: string;
  ip: string;
  dir: string;
  port: string;
}

async function makeBridge(ns: string): Promise<void> {
  await must('ip', ['netns', 'add', ns]);
  namespaces.push(ns);
  bridgeNs = ns;
  await must('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  await must('ip', ['-n', ns, 'link', 'add', 'br0', 'type', 'bridge']);
  await must('ip', ['-n', ns, 'link', 'set', 'br0', 'up']);
}

async function shape(ns: string, dev: string, rate: string, burst: string): Promise<void> {
  await must('ip', [
    'netns',
    'exec',
    ns,
    'tc',
    'qdisc',
    'add',
    'dev',
    dev,
    'root',
    'tbf',
    'rate',
    rate,
    'burst',
    burst,
    'latency',
    '400ms',
  ]);
}

async function makeHost(h: Host, rate: string, burst: string): Promise<void> {
  await must('ip', ['netns', 'add', h.ns]);
  namespaces.push(h.ns);
  await must('ip', ['-n', h.ns, 'link', 'set', 'lo', 'up']);
  await must('ip', [
    '-n',
    h.ns,
    'link',
    'add',
    'eth0',
    'type',
    'veth',
    'peer',
    'name',
    h.port,
    'netns',
    bridgeNs!,
  ]);
  await must('ip', ['-n', h.ns, 'addr', 'add', `${h.ip}/24`, 'dev', 'eth0']);
  await must('ip', ['-n', h.ns, 'link', 'set', 'eth0', 'up']);
  await must('ip', ['-n', bridgeNs!, 'link', 'set', h.port, 'master', 'br0']);
  await must('ip', ['-n', bridgeNs!, 'link', 'set', h.port, 'up']);
  await shape(h.ns, 'eth0', rate, burst);
  await shape(bridgeNs!, h.port, rate, burst);
}

async function ifaceBytes(ns: string): Promise<{ rx: number; tx: number }> {
  const r = await exec('ip', ['-n', ns, '-s', '-j', 'link', 'show', 'eth0'], 5000);
  try {
    const j = JSON.parse(r.stdout) as { stats64?: { rx: { bytes: number }; tx: { bytes: number } } }[];
    return { rx: j[0]?.stats64?.rx.bytes ?? NaN, tx: j[0]?.stats64?.tx.bytes ?? NaN };
  } catch {
    return { rx: NaN, tx: NaN };
  }
}

// --- servers inside namespaces -----------------------------------------------------------------------------------

interface Server {
  name: string;
  proc: ChildProcess;
  logPath: string;
  started: Record<string, unknown>;
}

/** `ip netns exec NS node ARGS` (ip execs node, so the PID is node's), stdout+stderr to a log file, until a line
 * containing `ready` shows up. */
function startInNs(
  name: string,
  ns: string,
  args: string[],
  ready: string,
  logPath: string,
  env: NodeJS.ProcessEnv = {},
): Promise<Server> {
  const proc = track(
    spawn('ip', ['netns', 'exec', ns, process.execPath, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    }),
  );
  const out: WriteStream = createWriteStream(logPath);
  let buf = '';
  let isReady = false;
  return new Promise<Server>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${name} did not start in 60 s; see ${logPath}`)),
      60_000,
    );
    const onData = (d: string) => {
      out.write(d);
      if (isReady) return;
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.includes(ready)) {
          isReady = true;
          clearTimeout(timer);
          let started: Record<string, unknown> = {};
          try {
            started = JSON.parse(line) as Record<string, unknown>;
          } catch {
            // not JSON
          }
          buf = '';
          resolve({ name, proc, logPath, started });
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
      reject(new Error(`${name} exited (${code ?? sig}) before it was ready; log:\n${tail(logPath)}`));
    });
  });
}

function tail(path: string, lines = 20): string {
  try {
    return readFileSync(path, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

function daemonConfig(h: Host, seed: boolean, uploadLimit?: string): string {
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
embeddedScheduler:
  enable: false
${seed ? 'seedPeer:\n  enable: true\n  type: super\n' : ''}`;
}

// --- measuring ---------------------------------------------------------------------------------------------------

interface Traffic {
  BACK_TO_SOURCE: number;
  REMOTE_PEER: number;
  LOCAL_PEER: number;
}

async function traffic(h: Host, metricsPort: number): Promise<Traffic> {
  const r = await exec(
    'ip',
    ['netns', 'exec', h.ns, 'curl', '-s', '-f', '-m', '10', `http://127.0.0.1:${metricsPort}/metrics`],
    15_000,
  );
  const v = (t: string) =>
    r.code === 0 ? metricValue(r.stdout, 'dragonfly_client_download_traffic', `type="${t}"`) : NaN;
  return { BACK_TO_SOURCE: v('BACK_TO_SOURCE'), REMOTE_PEER: v('REMOTE_PEER'), LOCAL_PEER: v('LOCAL_PEER') };
}

function diffTraffic(a: Traffic, b: Traffic): Traffic {
  return {
    BACK_TO_SOURCE: b.BACK_TO_SOURCE - a.BACK_TO_SOURCE,
    REMOTE_PEER: b.REMOTE_PEER - a.REMOTE_PEER,
    LOCAL_PEER: b.LOCAL_PEER - a.LOCAL_PEER,
  };
}

async function originStats(origin: Host): Promise<Record<string, PathStats>> {
  const r = await exec(
    'ip',
    [
      'netns',
      'exec',
      origin.ns,
      'curl',
      '-s',
      '-f',
      '-m',
      '10',
      `http://${origin.ip}:${ORIGIN_PORT}/__stats`,
    ],
    15_000,
  );
  try {
    return JSON.parse(r.stdout) as Record<string, PathStats>;
  } catch {
    return {};
  }
}

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  try {
    for await (const c of createReadStream(path, { highWaterMark: MIB })) h.update(c as Buffer);
    return h.digest('hex');
  } catch {
    return 'missing';
  }
}

/** Counts of a daemon's log messages about one task (by taskId), and of every warn/error line. */
function logSummary(path: string, taskId: string): Record<string, number> {
  const counts: Record<string, number> = {};
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return counts;
  }
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    let j: { level?: number; msg?: string; taskId?: string };
    try {
      j = JSON.parse(line) as typeof j;
    } catch {
      continue;
    }
    const msg = j.msg ?? '';
    if (j.taskId === taskId || (j.level ?? 0) >= 40) {
      const key = (j.level ?? 0) >= 40 ? `${j.level === 40 ? 'warn' : 'error'}: ${msg}` : msg;
      counts[key] = (counts[key] ?? 0) + 1;
    }
  }
  return counts;
}

/** The hosts (by name) the scheduler offered as candidate parents for one task, from a daemon's log. */
function parentsOffered(path: string, taskId: string, nameOfIp: Map<string, string>): string[] {
  const seen = new Set<string>();
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return [];
  }
  for (const line of text.split('\n')) {
    if (!line.includes('scheduler gave candidate parents')) continue;
    try {
      const j = JSON.parse(line) as { taskId?: string; parents?: string[] };
      if (j.taskId !== taskId) continue;
      // Peer ids are "IP-hostname-uuid[-seed]".
      for (const id of j.parents ?? []) {
        const ip = id.slice(0, id.indexOf('-'));
        seen.add(nameOfIp.get(ip) ?? ip);
      }
    } catch {
      // not JSON
    }
  }
  return [...seen];
}

// --- the benchmark -----------------------------------------------------------------------------------------------

interface PeerRow {
  peer: string;
  role: string;
  ip: string;
  seconds: number;
  exit: string;
  sha256ok: boolean | undefined;
  backToSourceMiB: number;
  remotePeerMiB: number;
  localPeerMiB: number;
  ethRxMiB: number;
  ethTxMiB: number;
  cpuS: number;
  parents: string[];
  log: Record<string, number>;
}

interface Figure {
  name: string;
  value: number;
  unit: string;
  note?: string;
}

async function bench(): Promise<void> {
  const began = performance.now();
  const deadline = Date.now() + WATCHDOG_MS - RESERVE_MS;
  const left = (capMs: number) => Math.max(5000, Math.min(capMs, deadline - Date.now()));

  const n = Number(process.env.P2P_PEERS ?? 8);
  if (!Number.isInteger(n) || n < 3 || n > 60)
    throw new Error(`P2P_PEERS must be an integer 3..60, got ${n}`);
  const rateText = process.env.P2P_RATE ?? '200mbit';
  const rateBits = parseRate(rateText);
  const size = parseSize(process.env.P2P_SIZE ?? '256MiB');
  const burstText = process.env.P2P_BURST ?? `${Math.max(16 * 1024, Math.round(rateBits / 8 / 200))}b`;
  keepLogsDir = process.env.P2P_KEEP_LOGS || undefined;
  const uploadLimit = process.env.P2P_UPLOAD_LIMIT || undefined;
  const sfx = randomBytes(3).toString('hex');
  const net = `10.77.${randomInt(1, 255)}`;
  const machine: Machine = machineInfo('nginx');
  log(`machine: ${machineLine(machine)}`);
  log(
    `N=${n} (1 seed + ${n - 1} peers), rate ${rateText} burst ${burstText}, size ${size} B, net ${net}.0/24`,
  );

  tmp = mkdtempSync(join(tmpdir(), `dfp2p-${sfx}-`));
  mkdirSync(join(tmp, 'logs'));
  const floorS = (size * 8) / rateBits;
  const originOnlyS = (n - 1) * floorS;

  // Network.
  const t0 = performance.now();
  await makeBridge(`dfp2p-${sfx}-br`);
  const origin: Host = {
    name: 'origin',
    ns: `dfp2p-${sfx}-o`,
    ip: `${net}.2`,
    dir: join(tmp, 'origin'),
    port: 'vo',
  };
  const hosts: Host[] = Array.from({ length: n }, (_, i) => ({
    name: i === 0 ? 'seed' : `peer${i}`,
    ns: `dfp2p-${sfx}-h${i}`,
    ip: `${net}.${10 + i}`,
    dir: join(tmp!, `h${i}`),
    port: `v${i}`,
  }));
  for (const h of [origin, ...hosts]) {
    mkdirSync(h.dir, { recursive: true });
    await makeHost(h, rateText, burstText);
  }
  log(`network: ${namespaces.length} namespaces in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  // Origin and scheduler (both in the origin's namespace).
  const originSrv = await startInNs(
    'origin',
    origin.ns,
    [THIS_FILE, '--origin', origin.ip, String(ORIGIN_PORT), String(size)],
    '"origin started"',
    join(tmp, 'logs', 'origin.log'),
  );
  const schedConf = join(origin.dir, 'scheduler.yaml');
  writeFileSync(schedConf, `server:\n  listenIP: ${origin.ip}\n  port: ${SCHEDULER_PORT}\n`);
  const scheduler = await startInNs(
    'dfscheduler',
    origin.ns,
    [DFSCHEDULER, '-c', schedConf, '--console'],
    '"scheduler started"',
    join(tmp, 'logs', 'scheduler.log'),
  );
  const schedulerAddr = `${origin.ip}:${SCHEDULER_PORT}`;

  // Daemons: the seed first (so it is announced before any peer registers a task), then the peers in parallel.
  const startDaemonIn = (h: Host, seed: boolean) => {
    const conf = join(h.dir, 'dfdaemon.yaml');
    const dyn = join(h.dir, 'dynconfig.yaml');
    writeFileSync(conf, daemonConfig(h, seed, uploadLimit));
    writeFileSync(dyn, `scheduler:\n  addrs:\n    - ${schedulerAddr}\n`);
    mkdirSync(join(h.dir, 'out'), { recursive: true });
    return startInNs(
      h.name,
      h.ns,
      [DFDAEMON, '-c', conf, '--dynconfig', dyn, '--console', '-l', 'info'],
      '"dfdaemon started"',
      join(tmp!, 'logs', `${h.name}.log`),
      { HOME: h.dir },
    );
  };
  const t1 = performance.now();
  const daemons: Server[] = [await startDaemonIn(hosts[0]!, true)];
  daemons.push(...(await Promise.all(hosts.slice(1).map((h) => startDaemonIn(h, false)))));
  const metricsPorts = daemons.map((d) => Number(d.started.metrics));
  log(
    `origin pid ${originSrv.proc.pid}, dfscheduler pid ${scheduler.proc.pid} on ${schedulerAddr}; ` +
      `${daemons.length} dfdaemons up in ${((performance.now() - t1) / 1000).toFixed(1)} s ` +
      `(pids ${daemons.map((d) => d.proc.pid).join(' ')})`,
  );

  const url = (f: { path: string }) => `http://${origin.ip}:${ORIGIN_PORT}${f.path}`;
  const dfget = (h: Host, u: string, out: string, timeoutMs: number) =>
    exec(
      'ip',
      [
        'netns',
        'exec',
        h.ns,
        process.execPath,
        DFGET,
        u,
        '-O',
        out,
        '-e',
        join(h.dir, 'dfdaemon.sock'),
        '--no-progress',
        '--timeout',
        `${Math.ceil(timeoutMs / 1000)}s`,
      ],
      timeoutMs + 5000,
    );
  const notes: string[] = [];
  const figures: Figure[] = [];
  const add = (name: string, value: number, unit: string, note?: string) =>
    figures.push({ name, value, unit, note });
  const mibps = (bytes: number, s: number) => `${(bytes / MIB / s).toFixed(1)} MiB/s`;

  // Link baseline: curl over one shaped link (origin -> peer 2; no dfdaemon in the path).
  const linkHost = hosts[Math.min(2, n - 1)]!;
  const curl = await exec(
    'ip',
    [
      'netns',
      'exec',
      linkHost.ns,
      'curl',
      '-s',
      '-f',
      '-o',
      '/dev/null',
      '-w',
      '%{size_download}',
      url(FILES.c),
    ],
    left(Math.max(60_000, floorS * 5000)),
  );
  const curlS = curl.ms / 1000;
  if (curl.code !== 0 || Number(curl.stdout) !== size) {
    notes.push(`link baseline curl failed (exit ${curl.code}, ${curl.stdout} bytes): ${curl.stderr.trim()}`);
  }
  log(`link: curl ${size} B over one shaped link in ${curlS.toFixed(2)} s (${mibps(size, curlS)})`);

  // (a) one peer alone, cold.
  const stA0 = await originStats(origin);
  const one = hosts[1]!;
  const aOut = join(one.dir, 'out', 'a.bin');
  const a = await dfget(one, url(FILES.a), aOut, left(Math.max(120_000, floorS * 8000)));
  const aS = a.ms / 1000;
  if (a.code !== 0) notes.push(`(a) dfget on ${one.name} exited ${a.code}: ${a.stderr.trim().slice(0, 500)}`);
  await sleep(1000);
  const stA1 = await originStats(origin);
  const originA = (stA1[FILES.a.path]?.bytes ?? 0) - (stA0[FILES.a.path]?.bytes ?? 0);
  log(`(a) ${one.name} alone: ${aS.toFixed(2)} s, origin served ${(originA / MIB).toFixed(0)} MiB`);

  // (b) every peer at once, on a fresh task.
  const peers = hosts.slice(1);
  const trafficB0 = await Promise.all(hosts.map((h, i) => traffic(h, metricsPorts[i]!)));
  const ifB0 = await Promise.all(hosts.map((h) => ifaceBytes(h.ns)));
  const ifO0 = await ifaceBytes(origin.ns);
  const stB0 = await originStats(origin);
  const cpuPids = [...daemons, scheduler, originSrv].map((s) => s.proc.pid!);
  const cpu0 = cpuPids.map((p) => procCpuMs(p));
  const bTimeout = left(Math.max(180_000, originOnlyS * 3000));
  const bStart = performance.now();
  const bRuns = await Promise.all(
    peers.map(async (h) => {
      const r = await dfget(h, url(FILES.b), join(h.dir, 'out', 'b.bin'), bTimeout);
      log(`(b) ${h.name} done in ${(r.ms / 1000).toFixed(2)} s (exit ${r.code})`);
      return r;
    }),
  );
  const bWallS = (performance.now() - bStart) / 1000;
  const cpu1 = cpuPids.map((p) => procCpuMs(p));
  await sleep(1000);
  const stB1 = await originStats(origin);
  const trafficB1 = await Promise.all(hosts.map((h, i) => traffic(h, metricsPorts[i]!)));
  const ifB1 = await Promise.all(hosts.map((h) => ifaceBytes(h.ns)));
  const ifO1 = await ifaceBytes(origin.ns);
  const originB = (stB1[FILES.b.path]?.bytes ?? 0) - (stB0[FILES.b.path]?.bytes ?? 0);
  const originBReq = (stB1[FILES.b.path]?.requests ?? 0) - (stB0[FILES.b.path]?.requests ?? 0);
  for (const [i, r] of bRuns.entries()) {
    if (r.code !== 0)
      notes.push(`(b) dfget on ${peers[i]!.name} exited ${r.code}: ${r.stderr.trim().slice(0, 500)}`);
  }
  log(
    `(b) ${peers.length} peers at once: ${bWallS.toFixed(2)} s; origin served ${(originB / MIB).toFixed(0)} MiB`,
  );

  // Verify the outputs.
  log('verifying outputs (sha256)');
  const wantA = expectedSha256(FILES.a.seed, size);
  const wantB = expectedSha256(FILES.b.seed, size);
  const aOk = a.code === 0 ? (await sha256File(aOut)) === wantA : undefined;
  if (aOk === false) notes.push(`(a) output on ${one.name} differs from the origin's content!`);
  const bOk: (boolean | undefined)[] = [];
  for (const [i, h] of peers.entries()) {
    const ok = bRuns[i]!.code === 0 ? (await sha256File(join(h.dir, 'out', 'b.bin'))) === wantB : undefined;
    if (ok === false) notes.push(`(b) output on ${h.name} differs from the origin's content!`);
    bOk.push(ok);
  }

  // Figures.
  const bTimes = bRuns.map((r) => r.ms / 1000);
  const bAllOk = bRuns.every((r) => r.code === 0);
  const served = originB / ((n - 1) * size);
  add('shaped link rate (tbf, each host, both directions)', rateBits / 1e6, 'Mbit/s', `burst ${burstText}`);
  add('file size S', size / MIB, 'MiB');
  add('hosts: seed + peers', n, 'count', `1 seed (super) + ${n - 1} peers`);
  add('one-link floor S·8/rate', floorS, 's', mibps(size, floorS));
  add(
    'curl over one shaped link (measured link)',
    curlS,
    's',
    `${mibps(size, curlS)}; ×${(curlS / floorS).toFixed(2)} floor`,
  );
  add('(a) dfget, one peer alone, cold', aS, 's', `${mibps(size, aS)}; ×${(aS / floorS).toFixed(2)} floor`);
  add('(a) origin bytes served', originA / MIB, 'MiB', `${(originA / size).toFixed(2)} × S`);
  add(
    `(b) ${n - 1} peers concurrently, wall (slowest)`,
    bWallS,
    's',
    `${bAllOk ? 'all exited 0' : 'SOME FAILED'}; fastest ${Math.min(...bTimes).toFixed(1)} s, median ${median(bTimes).toFixed(1)} s`,
  );
  add('(b) P2P minimum (= one-link floor)', floorS, 's');
  add('(b) wall / P2P minimum', bWallS / floorS, 'ratio', 'ideal 1.0');
  add('(b) wall / measured link (curl)', bWallS / curlS, 'ratio');
  add(
    `origin-only baseline (N−1)·S·8/rate`,
    originOnlyS,
    's',
    `${n - 1} sequential downloads over the origin link`,
  );
  add('(b) speed-up vs origin-only baseline', originOnlyS / bWallS, 'ratio', `ideal ${n - 1}`);
  add(
    '(b) origin bytes served',
    originB / MIB,
    'MiB',
    `${(originB / size).toFixed(2)} × S in ${originBReq} requests`,
  );
  add(
    '(b) origin traffic saved 1 − served/((N−1)·S)',
    1 - served,
    'ratio',
    `ideal ${(1 - 1 / (n - 1)).toFixed(3)}`,
  );
  add(
    '(b) origin eth0 tx',
    (ifO1.tx - ifO0.tx) / MIB,
    'MiB',
    'origin + scheduler namespace, incl. TCP/IP overhead',
  );
  const cpuMsB = cpu1.reduce((s, v, i) => s + (v - cpu0[i]!), 0);
  const cores = cpus().length;
  add(
    '(b) CPU of daemons+scheduler+origin',
    cpuMsB / 1000,
    's',
    `${((cpuMsB / 1000 / bWallS / cores) * 100).toFixed(0)}% of ${cores} cores over the wall time (dfget clients not counted)`,
  );

  const taskB = taskIdFromUrl({ url: url(FILES.b), filteredQueryParams: DEFAULT_FILTERED_QUERY_PARAMS });
  const nameOfIp = new Map(hosts.map((h) => [h.ip, h.name]));
  const rows: PeerRow[] = hosts.map((h, i) => {
    const t = diffTraffic(trafficB0[i]!, trafficB1[i]!);
    const r = i === 0 ? undefined : bRuns[i - 1];
    return {
      peer: h.name,
      role: i === 0 ? 'seed' : 'peer',
      ip: h.ip,
      seconds: r ? r.ms / 1000 : NaN,
      exit: r ? String(r.code) : '—',
      sha256ok: i === 0 ? undefined : bOk[i - 1],
      backToSourceMiB: t.BACK_TO_SOURCE / MIB,
      remotePeerMiB: t.REMOTE_PEER / MIB,
      localPeerMiB: t.LOCAL_PEER / MIB,
      ethRxMiB: (ifB1[i]!.rx - ifB0[i]!.rx) / MIB,
      ethTxMiB: (ifB1[i]!.tx - ifB0[i]!.tx) / MIB,
      cpuS: (cpu1[i]! - cpu0[i]!) / 1000,
      parents: parentsOffered(daemons[i]!.logPath, taskB, nameOfIp),
      log: logSummary(daemons[i]!.logPath, taskB),
    };
  });
  const schedLog = logSummary(scheduler.logPath, taskB);

  // Findings from the numbers and the logs.
  const b2sPeers = rows.filter((r) => r.role === 'peer' && r.backToSourceMiB > 0);
  if (b2sPeers.length > 0) {
    notes.push(
      `(b) peers that fetched from the origin themselves: ${b2sPeers
        .map((r) => `${r.peer} ${r.backToSourceMiB.toFixed(0)} MiB`)
        .join(', ')}`,
    );
  }
  const seedRow = rows[0]!;
  notes.push(
    `(b) seed: ${seedRow.backToSourceMiB.toFixed(0)} MiB back-to-source, ${seedRow.ethTxMiB.toFixed(0)} MiB sent on eth0 ` +
      `(${(seedRow.ethTxMiB / (size / MIB)).toFixed(2)} × S); peers sent ${rows
        .slice(1)
        .reduce((s, r) => s + r.ethTxMiB, 0)
        .toFixed(0)} MiB to each other in total`,
  );
  const withSeed = rows.filter((r) => r.role === 'peer' && r.parents.includes('seed')).length;
  notes.push(
    `(b) candidate parents offered by the scheduler: ${rows
      .slice(1)
      .map((r) => `${r.peer} ← ${r.parents.join('/') || 'none'}`)
      .join(', ')}; ${withSeed} of ${n - 1} peers were offered the seed`,
  );
  const topTx = [...rows].sort((x, y) => y.ethTxMiB - x.ethTxMiB).slice(0, 3);
  notes.push(
    `(b) biggest uploaders: ${topTx.map((r) => `${r.peer} ${r.ethTxMiB.toFixed(0)} MiB`).join(', ')}`,
  );
  const sumLog = (k: string) =>
    rows.reduce(
      (s, r) =>
        s +
        Object.entries(r.log)
          .filter(([m]) => m.includes(k))
          .reduce((x, [, c]) => x + c, 0),
      0,
    );
  notes.push(
    `(b) daemon log lines for the task: "scheduler says back to source" ${sumLog('scheduler says back to source')}, ` +
      `"scheduler failed; back to source" ${sumLog('scheduler failed; back to source')}, ` +
      `"piece from parent failed" ${sumLog('piece from parent failed')}, ` +
      `"scheduler gave candidate parents" ${sumLog('scheduler gave candidate parents')}, warn/error lines ${sumLog('warn:') + sumLog('error:')}`,
  );
  if (Object.keys(schedLog).length > 0) {
    notes.push(
      `dfscheduler log (task b, and all warn/error): ${Object.entries(schedLog)
        .map(([m, c]) => `"${m}" ×${c}`)
        .join('; ')}`,
    );
  }
  if (bWallS / floorS > 1.5) {
    notes.push(
      `(b) took ${(bWallS / floorS).toFixed(2)} × the P2P minimum; see the per-peer table (back-to-source, upload spread) and the CPU figure`,
    );
  }

  const now = new Date();
  const report = {
    date: now.toISOString(),
    machine,
    params: {
      peers: n,
      rate: rateText,
      rateBits,
      burst: burstText,
      size,
      subnet: `${net}.0/24`,
      suffix: sfx,
    },
    figures,
    peers: rows,
    originStats: { beforeB: stB0, afterB: stB1 },
    notes,
    durationS: (performance.now() - began) / 1000,
  };
  const table = renderConsole(figures, rows, machine);
  process.stdout.write(`\n${table}\n`);
  for (const nt of notes) process.stdout.write(`note: ${nt}\n`);
  mkdirSync(RESULTS_DIR, { recursive: true });
  writeFileSync(join(RESULTS_DIR, 'p2p-latest.json'), `${JSON.stringify(report, null, 2)}\n`);
  const md = renderMarkdown(report.date, figures, rows, machine, notes, report.params, report.durationS);
  writeFileSync(join(RESULTS_DIR, 'p2p-latest.md'), md);
  writeFileSync(join(RESULTS_DIR, `p2p-${now.toISOString().slice(0, 10)}.md`), md);
  log(`wrote ${RESULTS_DIR}p2p-latest.json, p2p-latest.md`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

// --- rendering ---------------------------------------------------------------------------------------------------

const F_HEADER = ['figure', 'value', 'note'];
const P_HEADER = [
  'host',
  'ip',
  'dfget s',
  'exit',
  'sha256',
  'b2s MiB',
  'peer MiB',
  'local MiB',
  'eth rx MiB',
  'eth tx MiB',
  'cpu s',
  'parents offered',
];

function figureRows(figures: Figure[]): string[][] {
  return figures.map((f) => [
    f.name,
    f.unit === 'count' ? String(f.value) : fmt(f.value, f.unit),
    f.note ?? '',
  ]);
}

function peerRows(rows: PeerRow[]): string[][] {
  const m = (v: number) => (Number.isFinite(v) ? v.toFixed(0) : 'n/a');
  return rows.map((r) => [
    r.peer,
    r.ip,
    Number.isFinite(r.seconds) ? r.seconds.toFixed(2) : '—',
    r.exit,
    r.sha256ok === undefined ? '—' : r.sha256ok ? 'ok' : 'BAD',
    m(r.backToSourceMiB),
    m(r.remotePeerMiB),
    m(r.localPeerMiB),
    m(r.ethRxMiB),
    m(r.ethTxMiB),
    r.cpuS.toFixed(1),
    r.parents.join(' ') || '—',
  ]);
}

function textTable(header: string[], body: string[][]): string {
  const all = [header, ...body];
  const widths = header.map((_, i) => Math.max(...all.map((row) => row[i]!.length)));
  const line = (row: string[]) =>
    row
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

function mdTable(header: string[], body: string[][]): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  return [
    `| ${header.join(' | ')} |`,
    `| ${header.map(() => '---').join(' | ')} |`,
    ...body.map((row) => `| ${row.map(esc).join(' | ')} |`),
  ].join('\n');
}

function renderConsole(figures: Figure[], rows: PeerRow[], machine: Machine): string {
  return [
    textTable(F_HEADER, figureRows(figures)),
    '',
    '(b) per host: download_traffic by type from /metrics, bytes through eth0, daemon CPU',
    textTable(P_HEADER, peerRows(rows)),
    '',
    `machine: ${machineLine(machine)}`,
  ].join('\n');
}

function renderMarkdown(
  date: string,
  figures: Figure[],
  rows: PeerRow[],
  machine: Machine,
  notes: string[],
  params: Record<string, unknown>,
  durationS: number,
): string {
  const logLines = rows
    .map((r) => {
      const entries = Object.entries(r.log).sort((x, y) => y[1] - x[1]);
      return `- ${r.peer}: ${entries.length ? entries.map(([m, c]) => `"${m}" ×${c}`).join('; ') : '(none)'}`;
    })
    .join('\n');
  return [
    `# P2P benchmark ${date}`,
    '',
    `Machine: ${machineLine(machine)}`,
    '',
    `Network namespaces on one machine: a bridge, the origin (Node, generated content, Range) with dfscheduler, ` +
      `1 seed peer and ${rows.length - 1} peers, each dfdaemon in its own namespace; every host link shaped with ` +
      `tbf ${String(params.rate)} (burst ${String(params.burst)}, latency 400ms) in both directions; ` +
      `dfdaemon upload.bandwidthLimit: ${String(params.uploadBandwidthLimit)}. ` +
      `Run took ${durationS.toFixed(0)} s.`,
    '',
    mdTable(F_HEADER, figureRows(figures)),
    '',
    '(b) per host: download_traffic by type (delta over (b), from each daemon /metrics), bytes through eth0, daemon CPU:',
    '',
    mdTable(P_HEADER, peerRows(rows)),
    '',
    ...(notes.length ? ['Notes:', '', ...notes.map((n) => `- ${n}`), ''] : []),
    'Daemon log lines about the (b) task, and every warn/error line, by message:',
    '',
    logLines,
    '',
  ].join('\n');
}

// --- entry -------------------------------------------------------------------------------------------------------

if (process.argv[2] === '--origin') {
  await runOrigin(process.argv[3]!, Number(process.argv[4]), Number(process.argv[5]));
} else {
  const watchdog = setTimeout(() => {
    log(`watchdog: still running after ${WATCHDOG_MS / 1000} s; stopping`);
    void cleanup().finally(() => process.exit(1));
  }, WATCHDOG_MS);
  watchdog.unref();
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      log(`${sig}: cleaning up`);
      void cleanup().finally(() => process.exit(130));
    });
  }
  process.once('exit', cleanupSync);
  try {
    await bench();
  } catch (e) {
    log(`failed: ${(e as Error).stack ?? String(e)}`);
    process.exitCode = 1;
  } finally {
    await cleanup();
    clearTimeout(watchdog);
    log(
      `cleaned up: ${namespaces.length === 0 ? 'namespaces deleted' : 'namespaces left!'}, temp dir removed`,
    );
  }
}
