// `npm run bench:soak`: a bounded soak of dfdaemon (issue 6, item 4). For SOAK_MINUTES (default 5, at most 30)
// downloads files of varied sizes (1 KiB … 64 MiB, log-uniform, from a pool of ~1.2 GiB so that some are
// cache hits and GC must evict) from nginx on loopback, a few at a time, alternately with dfget and with curl through
// dfdaemon's proxy (X-Dragonfly-Use-P2P), while GC runs every 2 s against
// gc.policy.diskThreshold = 512 MiB (high 80 %, low 60 %). Every second it samples dfdaemon's RSS
// (/proc/PID/status) and open fds (/proc/PID/fd), and every 5 s the bytes of its content files.
// Reports peak and final RSS, RSS after warm-up (at 20 % of the run), fds at start and end, bytes on disk vs the
// threshold, and GC evictions from /metrics. Target: final RSS within 10 % of RSS after warm-up; no fd growth after warm-up (the idle daemon at start
// has not opened its connections to nginx and the scheduler yet).
// With SOAK_HEAP_SNAPSHOTS=1 it also takes a heap snapshot of dfdaemon at 30 % of the run (just after the warm-up
// window) and one at the end, and reports the V8 heap's size in each and the groups that grew most (heap-snapshot.ts):
// what of the RSS growth is objects, and what is outside the heap. Writing a snapshot costs the daemon ~100 MiB of
// RSS that it keeps, so such a run's RSS ratios are not the daemon's (the report says so).
// Writes bench/results/soak-latest.{json,md} and soak-YYYY-MM-DD.md. Never fails on a number.
// Every process (nginx, dfdaemon, each dfget and curl) is ended by PID and the temp dir removed, also on SIGINT/SIGTERM.

import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { open, readdir, stat, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DFGET,
  metricsText,
  metricValue,
  startDaemon,
  stopDaemon,
  type DaemonHandle,
} from '../test/helpers/daemon.js';
import {
  heapGrowth,
  heapSnapshotNodeOptions,
  summarizeHeapSnapshot,
  takeHeapSnapshot,
  type HeapSummary,
} from './heap-snapshot.js';
import { machineInfo, machineLine } from './machine.js';
import { NGINX, startNginx, type NginxHandle } from './nginx.js';
import { median, procStatusBytes } from './proc.js';
import { publishReport, type Figure } from './report.js';
import { runBenchmark } from './run.js';
import { sampledEqual } from './tools.js';

const KIB = 1024;
const MIB = 2 ** 20;
const MIN_SIZE = KIB;
const MAX_SIZE = 64 * MIB;
const POOL_FILES = 200;
const CONCURRENCY = 4;
const THRESHOLD = 512 * MIB;
const GC_INTERVAL = '2s';
const DFGET_TIMEOUT_MS = 120_000;
const MINUTES = Math.min(30, Math.max(0.1, Number(process.env.SOAK_MINUTES ?? '5') || 5));
const RUN_MS = MINUTES * 60_000;
/** Quiet time after the load before the final RSS and fd figures. */
const SETTLE_MS = 10_000;
const WATCHDOG_MS = RUN_MS + 5 * 60_000;
const PREFIX = 'dragonfly_client_';
const HEAP_SNAPSHOTS = process.env.SOAK_HEAP_SNAPSHOTS === '1';

const log = (msg: string) => process.stderr.write(`[soak] ${msg}\n`);

let tmp: string | undefined;
let nginx: NginxHandle | undefined;
let daemon: DaemonHandle | undefined;
const children = new Set<ChildProcess>();
let stopping = false;

async function cleanup(): Promise<void> {
  stopping = true;
  for (const c of children) if (c.pid && c.exitCode === null) c.kill('SIGKILL');
  if (daemon) await stopDaemon(daemon, { keepDir: true }).catch(() => undefined);
  if (nginx) await nginx.stop().catch(() => undefined);
  if (tmp) rmSync(tmp, { recursive: true, force: true });
}

interface PoolFile {
  name: string;
  size: number;
}

/** Sizes log-uniform between MIN_SIZE and MAX_SIZE, with both ends present; deterministic for a given seed. */
function poolSizes(n: number): number[] {
  let x = 0x9e3779b9;
  const rnd = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
  const sizes = [MIN_SIZE, MAX_SIZE, MAX_SIZE];
  while (sizes.length < n) {
    const s = Math.exp(Math.log(MIN_SIZE) + rnd() * (Math.log(MAX_SIZE) - Math.log(MIN_SIZE)));
    sizes.push(Math.round(s) + (sizes.length % 7));
  }
  return sizes;
}

/** One random 1 MiB block, stamped with the file number and offset at every MiB. */
async function writeFile(path: string, size: number, n: number, block: Buffer): Promise<void> {
  const fh = await open(path, 'w');
  try {
    for (let off = 0; off < size; off += block.length) {
      block.writeUInt32LE(n, 0);
      block.writeUInt32LE(off / MIB, 4);
      const len = Math.min(block.length, size - off);
      let done = 0;
      while (done < len) done += (await fh.write(block, done, len - done, off + done)).bytesWritten;
    }
  } finally {
    await fh.close();
  }
}

/** dfget as a tracked child (so cleanup can end it by PID). */
function dfget(url: string, out: string): Promise<{ code: number | null; stderr: string }> {
  return tracked(process.execPath, [DFGET, url, '-O', out, '-e', daemon!.socket, '--no-progress']);
}

/** curl through dfdaemon's proxy, routed to P2P by header, as a tracked child. */
function proxyGet(url: string, out: string): Promise<{ code: number | null; stderr: string }> {
  const proxy = `http://127.0.0.1:${daemon!.proxyPort}`;
  return tracked('curl', ['-sS', '-f', '-x', proxy, '-H', 'X-Dragonfly-Use-P2P: true', '-o', out, url]);
}

function tracked(cmd: string, args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    children.add(p);
    let stderr = '';
    p.stderr!.setEncoding('utf8').on('data', (d: string) => {
      if (stderr.length < 4096) stderr += d;
    });
    const t = setTimeout(() => p.kill('SIGKILL'), DFGET_TIMEOUT_MS);
    p.once('error', (e) => {
      clearTimeout(t);
      children.delete(p);
      resolve({ code: -1, stderr: e.message });
    });
    p.once('close', (code) => {
      clearTimeout(t);
      children.delete(p);
      resolve({ code, stderr });
    });
  });
}

function fdCount(pid: number): number | undefined {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return undefined;
  }
}

/** Bytes of the daemon's content files (what diskThreshold counts). */
async function contentBytes(storageDir: string): Promise<number> {
  let total = 0;
  const walk = async (dir: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const e of entries) {
      const p = join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else total += (await stat(p).catch(() => undefined))?.size ?? 0;
    }
  };
  await walk(join(storageDir, 'content', 'tasks'));
  return total;
}

interface Sample {
  t: number;
  rss: number;
  fds: number;
}

async function main(): Promise<void> {
  const began = performance.now();
  const machine = machineInfo(NGINX);
  log(`machine: ${machineLine(machine)}`);
  log(`soak for ${MINUTES} min, ${CONCURRENCY} at a time, diskThreshold ${THRESHOLD / MIB} MiB`);
  tmp = mkdtempSync(join(tmpdir(), 'dfsoak-'));
  const www = join(tmp, 'www');
  const out = join(tmp, 'out');
  const ddir = join(tmp, 'daemon');
  for (const d of [www, out, ddir]) mkdirSync(d);

  const block = randomBytes(MIB);
  const pool: PoolFile[] = [];
  for (const [i, size] of poolSizes(POOL_FILES).entries()) {
    const name = `f${i}.bin`;
    await writeFile(join(www, name), size, i, block);
    pool.push({ name, size });
  }
  const poolBytes = pool.reduce((n, f) => n + f.size, 0);
  log(`pool: ${pool.length} files, ${(poolBytes / MIB).toFixed(0)} MiB`);

  nginx = await startNginx(join(tmp, 'nginx'), www);
  const snapshotDir = join(tmp, 'heap');
  mkdirSync(snapshotDir);
  daemon = await startDaemon({
    dir: ddir,
    ...(HEAP_SNAPSHOTS ? { env: { NODE_OPTIONS: heapSnapshotNodeOptions(snapshotDir) } } : {}),
    extraConfig: [
      'gc:',
      `  interval: ${GC_INTERVAL}`,
      '  policy:',
      '    taskTTL: 24h',
      `    diskThreshold: ${THRESHOLD / MIB}MiB`,
      '    diskHighThresholdPercent: 80',
      '    diskLowThresholdPercent: 60',
      '',
    ].join('\n'),
  });
  const pid = daemon.proc.pid!;
  await new Promise((r) => setTimeout(r, 1000));
  const rssStart = procStatusBytes(pid, 'VmRSS') ?? NaN;
  const fdStart = fdCount(pid) ?? NaN;
  log(`dfdaemon pid ${pid}: RSS ${(rssStart / MIB).toFixed(1)} MiB, ${fdStart} fds`);

  const samples: Sample[] = [];
  const disk: { t: number; bytes: number }[] = [];
  const t0 = performance.now();
  const sampler = setInterval(() => {
    const rss = procStatusBytes(pid, 'VmRSS');
    const fds = fdCount(pid);
    if (rss !== undefined && fds !== undefined) samples.push({ t: performance.now() - t0, rss, fds });
  }, 1000);
  let diskBusy = false;
  const diskSampler = setInterval(() => {
    if (diskBusy) return;
    diskBusy = true;
    void contentBytes(daemon!.storageDir)
      .then((bytes) => disk.push({ t: performance.now() - t0, bytes }))
      .finally(() => (diskBusy = false));
  }, 5000);

  let ok = 0;
  let viaProxy = 0;
  let failed = 0;
  let mismatched = 0;
  let bytes = 0;
  let seq = 0;
  const errors = new Map<string, number>();
  let rnd = 0x2545f491;
  const pick = () => {
    rnd = (Math.imul(rnd, 1103515245) + 12345) >>> 0;
    return pool[rnd % pool.length]!;
  };
  const worker = async (): Promise<void> => {
    while (!stopping && performance.now() - t0 < RUN_MS) {
      const f = pick();
      const n = seq++;
      const dst = join(out, `${n}-${f.name}`);
      const proxied = n % 2 === 1;
      const url = `${nginx!.baseUrl}/${f.name}`;
      const r = proxied ? await proxyGet(url, dst) : await dfget(url, dst);
      if (stopping) return;
      if (r.code === 0) {
        if (await sampledEqual(join(www, f.name), dst, f.size, 0)) {
          ok++;
          if (proxied) viaProxy++;
          bytes += f.size;
        } else mismatched++;
      } else {
        failed++;
        const line = `${proxied ? 'proxy' : 'dfget'}: ${r.stderr.trim().split('\n')[0]?.slice(0, 200) ?? `exit ${r.code}`}`;
        errors.set(line, (errors.get(line) ?? 0) + 1);
      }
      await unlink(dst).catch(() => undefined);
      const done = ok + failed + mismatched;
      if (done % 50 === 0) {
        const s = samples.at(-1);
        log(
          `${done} downloads (${failed} failed), ${(bytes / 2 ** 30).toFixed(2)} GiB, ` +
            `RSS ${s ? (s.rss / MIB).toFixed(1) : '?'} MiB, ${s?.fds ?? '?'} fds, ` +
            `${((performance.now() - t0) / 1000).toFixed(0)} s`,
        );
      }
    }
  };
  // The warm-up snapshot after the warm-up window (15-25 %), so that writing it does not touch those samples.
  let heapWarm: Promise<HeapSummary> | undefined;
  const snapshotTimer = HEAP_SNAPSHOTS
    ? setTimeout(() => {
        log('heap snapshot after warm-up');
        heapWarm = takeHeapSnapshot(pid, snapshotDir).then(summarizeHeapSnapshot);
        heapWarm.catch(() => undefined);
      }, 0.3 * RUN_MS)
    : undefined;
  await Promise.all(Array.from({ length: CONCURRENCY }, () => worker()));
  clearTimeout(snapshotTimer);
  const loadMs = performance.now() - t0;
  const rssEndOfLoad = procStatusBytes(pid, 'VmRSS') ?? NaN;
  log(`load done after ${(loadMs / 1000).toFixed(0)} s; settling ${SETTLE_MS / 1000} s`);
  await new Promise((r) => setTimeout(r, SETTLE_MS));
  clearInterval(sampler);
  clearInterval(diskSampler);
  const rssFinal = procStatusBytes(pid, 'VmRSS') ?? NaN;
  const fdEnd = fdCount(pid) ?? NaN;
  const heap = heapWarm
    ? { warm: await heapWarm, final: summarizeHeapSnapshot(await takeHeapSnapshot(pid, snapshotDir)) }
    : undefined;
  const diskFinal = await contentBytes(daemon.storageDir);
  const metrics = await metricsText(daemon);
  const evictedTasks = metricValue(metrics, `${PREFIX}gc_evicted_tasks_total`);
  const evictedBytes = metricValue(metrics, `${PREFIX}gc_evicted_bytes_total`);
  const evictedDiskTasks = metricValue(metrics, `${PREFIX}gc_evicted_tasks_total`, 'reason="disk"');

  // RSS after warm-up: the median of the samples between 15 % and 25 % of the load.
  const during = samples.filter((s) => s.t <= loadMs);
  const warm = during.filter((s) => s.t >= 0.15 * loadMs && s.t <= 0.25 * loadMs).map((s) => s.rss);
  const rssWarm = warm.length > 0 ? median(warm) : NaN;
  const fdsWarm = during.filter((s) => s.t >= 0.15 * loadMs && s.t <= 0.25 * loadMs).map((s) => s.fds);
  const fdWarm = fdsWarm.length > 0 ? Math.max(...fdsWarm) : NaN;
  const rssPeak = Math.max(...samples.map((s) => s.rss), rssEndOfLoad, rssFinal);
  const diskPeak = Math.max(0, ...disk.map((d) => d.bytes));
  const fdPeak = Math.max(...samples.map((s) => s.fds));
  const mib = (b: number) => b / MIB;

  const figures: Figure[] = [
    {
      name: 'downloads completed (byte-checked)',
      value: ok,
      unit: 'downloads',
      target: '',
      note: `${ok - viaProxy} by dfget, ${viaProxy} through the proxy`,
    },
    {
      name: 'downloads failed or wrong',
      value: failed + mismatched,
      unit: 'downloads',
      target: '0',
      ok: failed + mismatched === 0,
    },
    { name: 'bytes downloaded', value: bytes / 2 ** 30, unit: 'GiB', target: '' },
    { name: 'dfdaemon RSS at start (idle)', value: mib(rssStart), unit: 'MiB', target: '' },
    { name: 'dfdaemon RSS after warm-up (20 % of the run)', value: mib(rssWarm), unit: 'MiB', target: '' },
    { name: 'dfdaemon peak RSS', value: mib(rssPeak), unit: 'MiB', target: '' },
    { name: 'dfdaemon RSS at the end of the load', value: mib(rssEndOfLoad), unit: 'MiB', target: '' },
    {
      name: `dfdaemon final RSS (${SETTLE_MS / 1000} s after the load)`,
      value: mib(rssFinal),
      unit: 'MiB',
      target: '',
    },
    {
      name: 'end-of-load RSS / RSS after warm-up',
      value: rssEndOfLoad / rssWarm,
      unit: 'ratio',
      target: '≤ 1.10',
      ok: rssEndOfLoad / rssWarm <= 1.1,
    },
    {
      name: 'final RSS / RSS after warm-up',
      value: rssFinal / rssWarm,
      unit: 'ratio',
      target: '≤ 1.10',
      ok: rssFinal / rssWarm <= 1.1,
    },
    { name: 'open fds at start (idle)', value: fdStart, unit: 'fds', target: '' },
    { name: 'open fds after warm-up (max, 15–25 % of the run)', value: fdWarm, unit: 'fds', target: '' },
    { name: 'open fds peak (during the load)', value: fdPeak, unit: 'fds', target: '' },
    {
      name: `open fds at the end (${SETTLE_MS / 1000} s after the load)`,
      value: fdEnd,
      unit: 'fds',
      target: '≤ after warm-up',
      ok: fdEnd <= fdWarm,
    },
    {
      name: 'content bytes on disk, peak (5 s samples)',
      value: mib(diskPeak),
      unit: 'MiB',
      target: '',
      note: `threshold ${THRESHOLD / MIB} MiB, high 80 % = ${(0.8 * THRESHOLD) / MIB} MiB`,
    },
    {
      name: 'content bytes on disk, final',
      value: mib(diskFinal),
      unit: 'MiB',
      target: `≤ ${THRESHOLD / MIB}`,
      ok: diskFinal <= THRESHOLD,
    },
    {
      name: 'GC evicted tasks',
      value: evictedTasks,
      unit: 'tasks',
      target: '',
      note: `${evictedDiskTasks} for disk`,
    },
    { name: 'GC evicted bytes', value: mib(evictedBytes), unit: 'MiB', target: '' },
    ...(heap
      ? [
          {
            name: 'V8 heap (snapshot) after warm-up',
            value: mib(heap.warm.totalBytes),
            unit: 'MiB',
            target: '',
          },
          {
            name: 'V8 heap (snapshot) at the end',
            value: mib(heap.final.totalBytes),
            unit: 'MiB',
            target: '',
          },
        ]
      : []),
  ];
  const notes = [
    `Origin: nginx on loopback; ${pool.length} files of 1 KiB … 64 MiB (log-uniform), ${(poolBytes / MIB).toFixed(0)} MiB in all; ${CONCURRENCY} downloads at a time for ${MINUTES} min, alternately dfget and curl through the proxy (X-Dragonfly-Use-P2P: true); each output's size and first and last 64 KiB checked, then deleted.`,
    `GC every ${GC_INTERVAL} with gc.policy.diskThreshold ${THRESHOLD / MIB} MiB (only dfdaemon's content files count), high 80 %, low 60 %, taskTTL 24 h. The daemon's storage is on the ordinary disk (no tmpfs needed).`,
    'RSS and open fds sampled every second from /proc/PID/status and /proc/PID/fd; content bytes every 5 s. Disk peaks above the high mark between GC passes are the downloads in flight (up to 4 × 64 MiB).',
    ...[...errors].map(([line, n]) => `error ×${n}: ${line}`),
    ...(heap
      ? [
          "Writing a heap snapshot makes dfdaemon allocate ~100 MiB outside the heap, which glibc keeps: after the first snapshot (30 % of the run) the RSS figures of this run are not the daemon's own; run without SOAK_HEAP_SNAPSHOTS for the RSS ratio.",
          `Heap snapshots (SOAK_HEAP_SNAPSHOTS=1) at 30 % of the run and after the final RSS sample; groups that grew most: ${heapGrowth(
            heap.warm,
            heap.final,
          )
            .map((g) => `${g.group} ${(g.bytes / 1024).toFixed(0)} KiB`)
            .join(', ')}.`,
        ]
      : []),
  ];
  publishReport(
    {
      began,
      machine,
      figures,
      samples: {
        rssMiBPerSecond: samples.map((s) => Math.round(mib(s.rss) * 10) / 10),
        fdsPerSecond: samples.map((s) => s.fds),
        contentMiBPer5s: disk.map((d) => Math.round(mib(d.bytes))),
      },
      notes,
    },
    { prefix: 'soak-', title: 'Soak benchmark', log },
  );
}

await runBenchmark({ main, cleanup, watchdogMs: WATCHDOG_MS, log });
