// `npm run bench`: dfget + dfdaemon against curl, both fetching from nginx on loopback, measured in one run.
//   1. cold dfget of 1 GiB (new task each time) vs curl -o FILE: median of 3, ratio dfget/curl (target ≤ 1.0);
//      dfdaemon's CPU time (user + system, all threads) per cold GiB (target ≤ 1.2 s)
//   2. warm dfget (cache hit, new output path) vs the cold curl median (target ≤ 0.10)
//   3. dfdaemon peak RSS while downloading 1 GiB and 4 GiB (target ≤ 128 MiB, flat with size), idle RSS (≤ 80 MiB)
//   4. the start-up rows (startup.ts): dfget --version, a cached 1 KiB dfget / `node -e 0` (target ≤ 1.3), a cold
//      1 B dfget start to exit (target ≤ 0.10 s); plus curl of 1 KiB for context
//   5. cold dfget of 1 MiB vs curl -o FILE, start to exit, median of 10 (target ≤ 2)
//   6. cold dfget --transfer-from-dfdaemon of 1 GiB (the bytes over the unix socket) vs the cold curl median (≤ 1.2)
//   7. 1 GiB through the HTTP proxy (curl -x, a cache hit) vs curl straight from nginx, both to /dev/null (≤ 1.0)
//   8. Vortex piece serving: every piece of the cached 1 GiB task from dfdaemon's piece server vs the same file over
//      a raw loopback socket (bench/raw-copy-server.ts), throughput ratio (target ≥ 0.8)
//   9. dfcache: import of 1 GiB by hard link vs `cp` (target ≤ 0.05) and by copy, export on a second host vs dfget
//      from a peer (target ≤ 1.0), time until 2 persistent replicas exist (bench/dfcache.ts)
// Writes bench/results/latest.{json,md} and bench/results/YYYY-MM-DD.md. Never fails on a number.
// Every process is ended by PID and every temp dir (the data files too) is removed, also on SIGINT/SIGTERM.

import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { open, rm, stat, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DFGET, startDaemon, stopDaemon, type DaemonHandle } from '../test/helpers/daemon.js';
import { proxyWarm, smallCold, transferCold, vortexServing, type Section } from './data-path.js';
import { benchDfcache } from './dfcache.js';
import { machineInfo, machineLine } from './machine.js';
import { NGINX, startNginx, type NginxHandle } from './nginx.js';
import { median, procCpuMs, procStatusBytes, sampleRss, type Timed } from './proc.js';
import { publishReport, type Figure } from './report.js';
import { runBenchmark } from './run.js';
import { measureStartup, STARTUP_RUNS } from './startup.js';
import { check, curl, curlWithCpu, dfget, mbps, round, sampledEqual, spread, sync } from './tools.js';

const MIB = 2 ** 20;
const GIB = 2 ** 30;
const SIZE_1G = GIB;
const SIZE_4G = 4 * GIB;
const COLD_RUNS = 3;
const WARM_RUNS = 3;
/** The whole run is cut off after this long. */
const WATCHDOG_MS = 20 * 60_000;
const BIG_TIMEOUT_MS = 120_000;
const SMALL_TIMEOUT_MS = 15_000;

const log = (msg: string) => process.stderr.write(`[bench] ${msg}\n`);

let tmp: string | undefined;
let nginx: NginxHandle | undefined;
let daemon: DaemonHandle | undefined;
/** What a benchmark section started besides the above (dfcache's second daemon, its /dev/shm copy). */
const cleanups: Array<() => Promise<void>> = [];

async function cleanup(): Promise<void> {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
  if (daemon) await stopDaemon(daemon, { keepDir: true }).catch(() => undefined);
  if (nginx) await nginx.stop().catch(() => undefined);
  if (tmp) rmSync(tmp, { recursive: true, force: true });
}

/** A file of random-ish bytes, written in 4 MiB chunks: one random block, each chunk stamped with its index. */
async function writeRandomish(path: string, size: number): Promise<void> {
  const block = randomBytes(4 * MIB);
  const fh = await open(path, 'w');
  try {
    for (let off = 0; off < size; off += block.length) {
      block.writeBigUInt64LE(BigInt(off), 0);
      block.writeUInt32LE(((off / block.length) * 2654435761) >>> 0, 4096);
      const n = Math.min(block.length, size - off);
      let done = 0;
      while (done < n) done += (await fh.write(block, done, n - done, off + done)).bytesWritten;
    }
  } finally {
    await fh.close();
  }
}

function dfgetOne(url: string, out: string, tag: string, timeoutMs: number): Promise<Timed> {
  return dfget(daemon!.socket, url, out, tag, timeoutMs);
}

/** dfget with the daemon's VmRSS polled every 50 ms; returns the time and the peak RSS seen. */
async function dfgetSampled(
  url: string,
  out: string,
  tag: string,
  timeoutMs: number,
): Promise<{ r: Timed; peakRss: number; cpuMs: number }> {
  const pid = daemon!.proc.pid!;
  const cpu0 = procCpuMs(pid);
  const sampler = sampleRss(pid, 50);
  const r = await dfgetOne(url, out, tag, timeoutMs);
  return { r, peakRss: sampler.stop(), cpuMs: procCpuMs(pid) - cpu0 };
}

async function main(): Promise<void> {
  const began = performance.now();
  const machine = machineInfo(NGINX);
  log(`machine: ${machineLine(machine)}`);
  tmp = mkdtempSync(join(tmpdir(), 'dfbench-'));
  const www = join(tmp, 'www');
  const out = join(tmp, 'out');
  mkdirSync(www);
  mkdirSync(out);
  mkdirSync(join(tmp, 'daemon'));

  log('writing 1 GiB, 4 GiB (sparse), 1 MiB and 1 KiB files');
  const fileStart = performance.now();
  await writeRandomish(join(www, '1g.bin'), SIZE_1G);
  writeFileSync(join(www, '4g.bin'), '');
  await truncate(join(www, '4g.bin'), SIZE_4G);
  writeFileSync(join(www, '1k.bin'), randomBytes(1024));
  writeFileSync(join(www, '1m.bin'), randomBytes(MIB));
  writeFileSync(join(www, '1b.bin'), 'x');
  log(`files written in ${((performance.now() - fileStart) / 1000).toFixed(1)} s`);

  nginx = await startNginx(join(tmp, 'nginx'), www);
  daemon = await startDaemon({ dir: join(tmp, 'daemon') });
  log(`nginx pid ${nginx.pid} on ${nginx.baseUrl}; dfdaemon pid ${daemon.proc.pid}`);
  const url1g = `${nginx.baseUrl}/1g.bin`;
  const url4g = `${nginx.baseUrl}/4g.bin`;
  const url1k = `${nginx.baseUrl}/1k.bin`;
  const notes: string[] = [];
  const samples: Record<string, number[]> = {};

  // Warm the page cache for the binaries and the source file, and the daemon's code paths.
  check('curl warm-up', await curl(url1g, '/dev/null', BIG_TIMEOUT_MS));
  check('dfget warm-up', await dfgetOne(url1k, join(out, 'warm-1k'), '', SMALL_TIMEOUT_MS));
  const idleRss = procStatusBytes(daemon.proc.pid!, 'VmRSS') ?? NaN;

  // 1. cold 1 GiB, alternating which goes first; sync before each so neither pays the other's writeback.
  const coldCurl: number[] = [];
  const coldDfget: number[] = [];
  const rss1g: number[] = [];
  const cpu1g: number[] = [];
  const curlCpu1g: number[] = [];
  for (let i = 0; i < COLD_RUNS; i++) {
    const runCurl = async () => {
      await sync();
      const path = join(out, `curl-${i}`);
      const r = check('curl', await curlWithCpu(url1g, path, BIG_TIMEOUT_MS));
      coldCurl.push(r.ms);
      curlCpu1g.push(r.cpuMs);
      await rm(path, { force: true });
    };
    const runDfget = async () => {
      await sync();
      const path = join(out, `dfget-cold-${i}`);
      const { r, peakRss, cpuMs } = await dfgetSampled(url1g, path, `cold-${i}`, BIG_TIMEOUT_MS);
      check('dfget cold', r);
      coldDfget.push(r.ms);
      rss1g.push(peakRss);
      cpu1g.push(cpuMs);
      if (i === 0 && !(await sampledEqual(path, join(www, '1g.bin'), SIZE_1G))) {
        notes.push('dfget output of the 1 GiB file differs from the source (sampled comparison)!');
      }
      await rm(path, { force: true });
    };
    if (i % 2 === 0) {
      await runCurl();
      await runDfget();
    } else {
      await runDfget();
      await runCurl();
    }
    log(`cold ${i}: curl ${coldCurl[i]!.toFixed(0)} ms, dfget ${coldDfget[i]!.toFixed(0)} ms`);
  }

  // 2. warm: the task of cold-0 again, to a new output path.
  const warm: number[] = [];
  for (let i = 0; i < WARM_RUNS; i++) {
    const path = join(out, `dfget-warm-${i}`);
    warm.push(check('dfget warm', await dfgetOne(url1g, path, 'cold-0', BIG_TIMEOUT_MS)).ms);
    await rm(path, { force: true });
  }
  log(`warm: ${warm.map((m) => m.toFixed(0)).join(', ')} ms`);

  // 3. 4 GiB (its 1 GiB peak is above); the daemon's high-water mark over the whole run too.
  await sync();
  const big = await dfgetSampled(url4g, join(out, 'dfget-4g'), 'big', 3 * BIG_TIMEOUT_MS);
  check('dfget 4 GiB', big.r);
  const bigStat = await stat(join(out, 'dfget-4g'));
  if (bigStat.size !== SIZE_4G) notes.push(`dfget output of the 4 GiB file has ${bigStat.size} bytes`);
  await rm(join(out, 'dfget-4g'), { force: true });
  log(`4 GiB: dfget ${big.r.ms.toFixed(0)} ms, peak RSS ${(big.peakRss / MIB).toFixed(0)} MiB`);

  // 4. start-up (startup.ts), then curl of the cached 1 KiB file for context.
  const startup = await measureStartup({
    dfgetPath: DFGET,
    socket: daemon.socket,
    url1k,
    url1b: `${nginx.baseUrl}/1b.bin`,
    outDir: out,
    log,
  });
  const curlSmall: number[] = [];
  for (let i = 0; i < STARTUP_RUNS; i++) {
    curlSmall.push(check('curl 1 KiB', await curl(url1k, join(out, `small-curl-${i}`), SMALL_TIMEOUT_MS)).ms);
  }
  notes.push(
    `cold 1 GiB spread: curl ${spread(coldCurl)}, dfget ${spread(coldDfget)} (loopback to a VM disk is noisy; the runs alternate which goes first and sync before each)`,
  );
  const hwm = procStatusBytes(daemon.proc.pid!, 'VmHWM') ?? NaN;

  // 5–8 (data-path.ts), on the same daemon and nginx.
  const context = { daemon, baseUrl: nginx.baseUrl, www, out, cachedTag: 'cold-0', size1g: SIZE_1G, log };
  const sections: Section[] = [];
  for (const section of [smallCold, transferCold, proxyWarm, vortexServing])
    sections.push(await section(context));

  // 9. dfcache (after the high-water mark: its imports and exports are not downloads of the figures above).
  mkdirSync(join(tmp, 'dfcache'));
  const cache = await benchDfcache({
    daemon,
    file: join(www, '1g.bin'),
    url: url1g,
    tag: 'cold-0',
    tmp: join(tmp, 'dfcache'),
    log,
    check,
    sync,
    onCleanup: (f) => cleanups.push(f),
  });

  // Figures.
  const curlMs = median(coldCurl);
  const dfgetMs = median(coldDfget);
  const warmMs = median(warm);
  const peak1g = Math.max(...rss1g);
  const peakTarget = 128 * MIB;
  const idleTarget = 80 * MIB;
  const cpuTargetMs = 1200;
  const figures: Figure[] = [
    {
      name: 'curl 1 GiB cold (median of 3)',
      value: curlMs / 1000,
      unit: 's',
      target: '',
      note: mbps(SIZE_1G, curlMs),
    },
    {
      name: 'dfget 1 GiB cold (median of 3)',
      value: dfgetMs / 1000,
      unit: 's',
      target: '',
      note: mbps(SIZE_1G, dfgetMs),
    },
    {
      name: 'cold ratio dfget/curl',
      value: dfgetMs / curlMs,
      unit: 'ratio',
      target: '≤ 1.0',
      ok: dfgetMs / curlMs <= 1.0,
    },
    {
      name: 'dfdaemon CPU per cold 1 GiB (user+sys, median)',
      value: median(cpu1g) / 1000,
      unit: 's',
      target: '≤ 1.2 s',
      ok: median(cpu1g) <= cpuTargetMs,
      note: 'every thread of the process',
    },
    {
      name: 'curl CPU per cold 1 GiB (user+sys, median)',
      value: median(curlCpu1g) / 1000,
      unit: 's',
      target: '',
      note: 'socket receive + page-cache write: the floor for any downloader',
    },
    { name: 'dfget 1 GiB warm (median of 3)', value: warmMs / 1000, unit: 's', target: '' },
    {
      name: 'warm ratio dfget/curl',
      value: warmMs / curlMs,
      unit: 'ratio',
      target: '≤ 0.10',
      ok: warmMs / curlMs <= 0.1,
    },
    {
      name: 'dfdaemon peak RSS, 1 GiB download',
      value: peak1g / MIB,
      unit: 'MiB',
      target: '≤ 128 MiB',
      ok: peak1g <= peakTarget,
    },
    {
      name: 'dfdaemon peak RSS, 4 GiB download',
      value: big.peakRss / MIB,
      unit: 'MiB',
      target: '≤ 128 MiB, flat',
      ok: big.peakRss <= peakTarget && big.peakRss <= peak1g * 1.25,
    },
    {
      name: 'dfdaemon RSS idle (after one 1 KiB download)',
      value: idleRss / MIB,
      unit: 'MiB',
      target: '≤ 80 MiB',
      ok: idleRss <= idleTarget,
    },
    { name: 'dfdaemon VmHWM over the run', value: hwm / MIB, unit: 'MiB', target: '' },
    {
      name: 'dfget 4 GiB cold (sparse source)',
      value: big.r.ms / 1000,
      unit: 's',
      target: '',
      note: mbps(SIZE_4G, big.r.ms),
    },
    ...startup.figures,
    { name: 'curl 1 KiB (median of 20)', value: median(curlSmall), unit: 'ms', target: '' },
  ];
  for (const section of sections) {
    figures.push(...section.figures);
    notes.push(...section.notes);
    Object.assign(samples, section.samples);
  }
  Object.assign(samples, {
    coldCurlMs: coldCurl.map(round),
    coldDfgetMs: coldDfget.map(round),
    warmDfgetMs: warm.map(round),
    peakRss1gBytes: rss1g,
    daemonCpu1gMs: cpu1g,
    curlCpu1gMs: curlCpu1g,
    daemonIdleRssBytes: [idleRss],
    peakRss4gBytes: [big.peakRss],
    ...startup.samples,
    small1kCurlMs: curlSmall.map(round),
  });
  figures.push(...cache.figures);
  Object.assign(samples, cache.samples);
  publishReport({ began, machine, figures, samples, notes }, { prefix: '', log });
}

await runBenchmark({ main, cleanup, watchdogMs: WATCHDOG_MS, log });
