// `npm run bench:upstream`: our dfget + dfdaemon beside the upstream Rust client's (dragonfly-client 1.5.10,
// `scripts/install-upstream.sh rust`), same machine, same origin (nginx on loopback), same run, alternating which
// goes first:
//   1. cold dfget of 1 MiB, 100 MiB and 1 GiB (a new task each run: its own --tag), median of COLD_RUNS;
//   2. warm dfget of the same task to a new output path, median of WARM_RUNS;
//   3. each dfdaemon's peak RSS during the 1 GiB downloads and its CPU (user + sys) per cold GiB;
//   4. dfget start-to-exit for a cached 1 KiB file, median of SMALL_RUNS;
// and curl of each size to a file, for context.
// Both daemons use one dfscheduler (each task is new to it, so both go back to the source), write to the same
// filesystem, and answer dfget with a hard link (neither is given --transfer-from-dfdaemon). Every line says
// ours ÷ theirs. Its second part, the netns swarm of `bench:p2p` with Rust peers, all-ours and mixed, is
// `npm run bench:upstream:swarm` (bench/upstream-swarm.ts; root).
// Writes bench/results/upstream-latest.{json,md} and upstream-YYYY-MM-DD.md. Never fails on a number; fails
// with one line when the Rust client is not installed.

import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DFGET, startDaemon, stopDaemon, type DaemonHandle } from '../test/helpers/daemon.js';
import { startScheduler, stopScheduler, type SchedulerHandle } from '../test/helpers/scheduler-process.js';
import { missingUpstream, upstreamPath } from '../test/helpers/upstream/programs.js';
import { RustDaemon } from '../test/helpers/upstream/rust-client.js';
import { machineInfo, machineLine } from './machine.js';
import { NGINX, startNginx, type NginxHandle } from './nginx.js';
import { median, procCpuMs, procStatusBytes, sampleRss, timed, type Timed } from './proc.js';
import { publishReport, type Figure } from './report.js';
import { runBenchmark } from './run.js';

const MIB = 2 ** 20;
const SIZES = [
  { name: '1 MiB', file: '1m.bin', size: MIB, runs: 5 },
  { name: '100 MiB', file: '100m.bin', size: 100 * MIB, runs: 3 },
  { name: '1 GiB', file: '1g.bin', size: 1024 * MIB, runs: 3 },
];
const WARM_RUNS = 3;
const SMALL_RUNS = 10;
const WATCHDOG_MS = 15 * 60_000;
const TIMEOUT_MS = 180_000;

const log = (msg: string) => process.stderr.write(`[bench:upstream] ${msg}\n`);

let tmp: string | undefined;
let nginx: NginxHandle | undefined;
let scheduler: SchedulerHandle | undefined;
let ours: DaemonHandle | undefined;
let rust: RustDaemon | undefined;

async function cleanup(): Promise<void> {
  if (ours) await stopDaemon(ours, { keepDir: true }).catch(() => undefined);
  // Its dir is its own temp dir, not under `tmp`.
  await rust?.stop().catch(() => undefined);
  if (scheduler) await stopScheduler(scheduler).catch(() => undefined);
  if (nginx) await nginx.stop().catch(() => undefined);
  if (tmp) rmSync(tmp, { recursive: true, force: true });
}

/** One side of the comparison: how to run its dfget, and its dfdaemon's pid. */
interface Side {
  name: 'ours' | 'theirs';
  pid: () => number;
  dfget: (url: string, out: string, tag: string) => Promise<Timed>;
}

async function writeRandomish(path: string, size: number): Promise<void> {
  const block = randomBytes(Math.min(size, 4 * MIB));
  const fh = await open(path, 'w');
  try {
    for (let off = 0; off < size; off += block.length) {
      block.writeBigUInt64LE(BigInt(off), 0);
      const n = Math.min(block.length, size - off);
      let done = 0;
      while (done < n) done += (await fh.write(block, done, n - done, off + done)).bytesWritten;
    }
  } finally {
    await fh.close();
  }
}

function check(what: string, r: Timed): Timed {
  if (r.code !== 0)
    throw new Error(`${what} failed (exit ${r.code ?? r.signal}): ${r.stderr.trim().slice(0, 2000)}`);
  return r;
}

async function main(): Promise<void> {
  const missing = missingUpstream(['dfdaemon', 'dfget']);
  if (missing.length > 0) throw new Error(`upstream programs missing: ${missing.join('; ')}`);
  const began = performance.now();
  const machine = machineInfo(NGINX);
  log(`machine: ${machineLine(machine)}`);
  tmp = mkdtempSync(join(tmpdir(), 'dfbench-upstream-'));
  const www = join(tmp, 'www');
  const out = join(tmp, 'out');
  mkdirSync(www);
  mkdirSync(out);
  mkdirSync(join(tmp, 'ours'));
  for (const s of SIZES) await writeRandomish(join(www, s.file), s.size);
  writeFileSync(join(www, '1k.bin'), randomBytes(1024));

  nginx = await startNginx(join(tmp, 'nginx'), www);
  scheduler = await startScheduler();
  ours = await startDaemon({ dir: join(tmp, 'ours'), schedulerAddr: scheduler.addr });
  rust = new RustDaemon({ schedulerAddr: scheduler.addr });
  await rust.start();
  const rustDfget = upstreamPath('dfget');
  log(`nginx ${nginx.baseUrl}; our dfdaemon pid ${ours.proc.pid}; Rust dfdaemon on ${rust.socket}`);

  const sides: Side[] = [
    {
      name: 'ours',
      pid: () => ours!.proc.pid!,
      dfget: (url, o, tag) =>
        timed(
          process.execPath,
          [DFGET, url, '-O', o, '-e', ours!.socket, '--no-progress', '--tag', tag],
          TIMEOUT_MS,
        ),
    },
    {
      name: 'theirs',
      pid: () => rust!.pid()!,
      dfget: (url, o, tag) =>
        timed(rustDfget, [url, '-O', o, '-e', rust!.socket, '--no-progress', '--tag', tag], TIMEOUT_MS),
    },
  ];

  // Warm up both daemons and the page cache of every source file.
  for (const s of SIZES)
    check(
      'curl warm-up',
      await timed('curl', ['-s', '-f', '-o', '/dev/null', `${nginx.baseUrl}/${s.file}`], TIMEOUT_MS),
    );
  for (const side of sides)
    check(
      `${side.name} warm-up`,
      await side.dfget(`${nginx.baseUrl}/1k.bin`, join(out, `warm-${side.name}`), 'warm-up'),
    );

  const samples: Record<string, number[]> = {};
  const put = (key: string, v: number) => (samples[key] ??= []).push(Math.round(v * 10) / 10);
  const figures: Figure[] = [];
  const pair = (name: string, key: string, unit: string, scale = 1, note = '') => {
    const a = median(samples[`ours.${key}`] ?? []) * scale;
    const b = median(samples[`theirs.${key}`] ?? []) * scale;
    figures.push({ name: `${name}: ours`, value: a, unit, target: '' });
    figures.push({ name: `${name}: theirs (Rust)`, value: b, unit, target: '' });
    figures.push({ name: `${name}: ours ÷ theirs`, value: a / b, unit: 'ratio', target: '', note });
  };

  for (const s of SIZES) {
    const url = `${nginx.baseUrl}/${s.file}`;
    for (let i = 0; i < s.runs; i++) {
      const order = i % 2 === 0 ? sides : [...sides].reverse();
      for (const side of order) {
        await timed('sync', [], 120_000);
        const pid = side.pid();
        const cpu0 = procCpuMs(pid);
        const sampler = sampleRss(pid, 50);
        const o = join(out, `${side.name}-${s.file}-${i}`);
        const r = check(
          `${side.name} cold ${s.name}`,
          await side.dfget(url, o, `cold-${side.name}-${s.file}-${i}`),
        );
        put(`${side.name}.cold.${s.file}.ms`, r.ms);
        put(`${side.name}.cold.${s.file}.peakRss`, sampler.stop());
        put(`${side.name}.cold.${s.file}.cpuMs`, procCpuMs(pid) - cpu0);
        await rm(o, { force: true });
      }
      // curl to a file, for context: what the origin and the disk allow.
      await timed('sync', [], 120_000);
      const c = join(out, `curl-${s.file}-${i}`);
      put(`curl.${s.file}.ms`, check('curl', await timed('curl', ['-s', '-f', '-o', c, url], TIMEOUT_MS)).ms);
      await rm(c, { force: true });
    }
    for (let i = 0; i < WARM_RUNS; i++) {
      for (const side of i % 2 === 0 ? sides : [...sides].reverse()) {
        const o = join(out, `${side.name}-${s.file}-warm-${i}`);
        const r = check(
          `${side.name} warm ${s.name}`,
          await side.dfget(url, o, `cold-${side.name}-${s.file}-0`),
        );
        put(`${side.name}.warm.${s.file}.ms`, r.ms);
        await rm(o, { force: true });
      }
    }
    log(
      `${s.name}: cold ours ${median(samples[`ours.cold.${s.file}.ms`]!).toFixed(0)} ms, theirs ${median(samples[`theirs.cold.${s.file}.ms`]!).toFixed(0)} ms`,
    );
  }
  for (let i = 0; i < SMALL_RUNS; i++) {
    for (const side of i % 2 === 0 ? sides : [...sides].reverse()) {
      const o = join(out, `${side.name}-small-${i}`);
      put(
        `${side.name}.small.ms`,
        check(`${side.name} 1 KiB`, await side.dfget(`${nginx.baseUrl}/1k.bin`, o, 'warm-up')).ms,
      );
      await rm(o, { force: true });
    }
  }
  for (const side of sides) put(`${side.name}.hwm`, procStatusBytes(side.pid(), 'VmHWM') ?? NaN);

  for (const s of SIZES) {
    const curlMs = median(samples[`curl.${s.file}.ms`] ?? []);
    figures.push({
      name: `curl ${s.name} to a file (median of ${s.runs}), for context`,
      value: curlMs / 1000,
      unit: 's',
      target: '',
      note: `${(s.size / MIB / (curlMs / 1000)).toFixed(0)} MiB/s`,
    });
    pair(`cold dfget ${s.name} (median of ${s.runs})`, `cold.${s.file}.ms`, 's', 1 / 1000);
    pair(`warm dfget ${s.name} (median of ${WARM_RUNS})`, `warm.${s.file}.ms`, 's', 1 / 1000);
  }
  const gib = SIZES[SIZES.length - 1]!;
  pair(`dfdaemon peak RSS during a cold ${gib.name}`, `cold.${gib.file}.peakRss`, 'MiB', 1 / MIB);
  pair(`dfdaemon CPU per cold ${gib.name} (user+sys)`, `cold.${gib.file}.cpuMs`, 's', 1 / 1000);
  pair('dfdaemon VmHWM over the run', 'hwm', 'MiB', 1 / MIB);
  pair(
    `dfget 1 KiB cached, start to exit (median of ${SMALL_RUNS})`,
    'small.ms',
    'ms',
    1,
    'ours starts Node.js',
  );

  publishReport(
    {
      began,
      machine,
      figures,
      samples,
      notes: [
        'Both dfdaemons use one dfscheduler; every cold run is a new task (its own tag), so both fetch from nginx.',
        'Rust client: dragonfly-client 1.5.10 (cargo install --locked), release build.',
        'The netns swarm with all-Rust, all-ours and mixed peers: npm run bench:upstream:swarm (upstream-swarm-latest.md).',
      ],
    },
    { prefix: 'upstream-', title: 'Ours vs the Rust client', log },
  );
}

await runBenchmark({ main, cleanup, watchdogMs: WATCHDOG_MS, log });
