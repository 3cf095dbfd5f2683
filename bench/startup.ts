// The start-up rows of the benchmarks (issue 12): how long a dfget takes from spawn to exit when there is almost
// nothing to move, so that what is measured is Node's start, module loading and the RPC round trips.
//   - `node -e 0`: the baseline, measured in the same run, interleaved with the rest;
//   - `dfget --version`: module loading alone, no RPC;
//   - a cached 1 KiB dfget (the task is stored): start to exit / `node -e 0`, target ≤ 1.3;
//   - a cold dfget of a 1 B file (a new task each run: a query parameter the origin ignores), target ≤ 0.10 s
//     (upstream publishes 0.65 s).
// Used by bench.ts (`npm run bench`) and, alone, by startup-main.ts (`npm run bench:startup`).

import { join } from 'node:path';
import { rm } from 'node:fs/promises';
import { median, timed, type Timed } from './proc.js';
import type { Figure } from './report.js';

export const STARTUP_RUNS = 20;
const TIMEOUT_MS = 15_000;
/** Targets of issue 12. */
const CACHED_RATIO_TARGET = 1.3;
const COLD_1B_TARGET_MS = 100;

export interface StartupOptions {
  /** The built dfget (dist/src/cli/dfget.js). */
  dfgetPath: string;
  /** dfdaemon's download socket. */
  socket: string;
  /** A 1 KiB file and a 1 B file on the origin. */
  url1k: string;
  url1b: string;
  /** Where the outputs go (each removed after its run). */
  outDir: string;
  runs?: number;
  log: (msg: string) => void;
}

function mustSucceed(what: string, r: Timed): number {
  if (r.code !== 0)
    throw new Error(`${what} failed (exit ${r.code ?? r.signal}): ${r.stderr.trim().slice(0, 2000)}`);
  return r.ms;
}

export async function measureStartup(
  o: StartupOptions,
): Promise<{ figures: Figure[]; samples: Record<string, number[]> }> {
  const runs = o.runs ?? STARTUP_RUNS;
  const node = (args: string[]) => timed(process.execPath, args, TIMEOUT_MS);
  const dfget = async (what: string, url: string, out: string) => {
    const ms = mustSucceed(what, await node([o.dfgetPath, url, '-O', out, '-e', o.socket, '--no-progress']));
    await rm(out, { force: true });
    return ms;
  };
  // The 1 KiB task stored once, before the cached runs.
  await dfget('dfget 1 KiB (storing the task)', o.url1k, join(o.outDir, 'startup-warm'));
  const nodeStart: number[] = [];
  const version: number[] = [];
  const cached: number[] = [];
  const cold: number[] = [];
  for (let i = 0; i < runs; i++) {
    nodeStart.push(mustSucceed('node -e 0', await node(['-e', '0'])));
    version.push(mustSucceed('dfget --version', await node([o.dfgetPath, '--version'])));
    cached.push(await dfget('dfget 1 KiB cached', o.url1k, join(o.outDir, `startup-cached-${i}`)));
    const coldUrl = `${o.url1b}?startup-run=${Date.now()}-${i}`;
    cold.push(await dfget('dfget 1 B cold', coldUrl, join(o.outDir, `startup-cold-${i}`)));
  }
  const nodeMs = median(nodeStart);
  const cachedMs = median(cached);
  const coldMs = median(cold);
  o.log(
    `start-up: node -e 0 ${nodeMs.toFixed(0)} ms, dfget cached 1 KiB ${cachedMs.toFixed(0)} ms, cold 1 B ${coldMs.toFixed(0)} ms`,
  );
  const figures: Figure[] = [
    { name: `node -e 0 (median of ${runs})`, value: nodeMs, unit: 'ms', target: 'baseline' },
    {
      name: `dfget --version, start to exit (median of ${runs})`,
      value: median(version),
      unit: 'ms',
      target: '',
      note: `${(median(version) / nodeMs).toFixed(2)} × node -e 0; module loading, no RPC`,
    },
    {
      name: `dfget 1 KiB cached, start to exit (median of ${runs})`,
      value: cachedMs,
      unit: 'ms',
      target: '',
    },
    {
      name: 'cached 1 KiB dfget / node -e 0',
      value: cachedMs / nodeMs,
      unit: 'ratio',
      target: `≤ ${CACHED_RATIO_TARGET}`,
      ok: cachedMs / nodeMs <= CACHED_RATIO_TARGET,
    },
    {
      name: `dfget 1 B cold (new task), start to exit (median of ${runs})`,
      value: coldMs / 1000,
      unit: 's',
      target: `≤ ${COLD_1B_TARGET_MS / 1000} s`,
      ok: coldMs <= COLD_1B_TARGET_MS,
      note: "upstream's published figure: 0.65 s",
    },
  ];
  const round = (ms: number) => Math.round(ms * 10) / 10;
  return {
    figures,
    samples: {
      nodeStartMs: nodeStart.map(round),
      dfgetVersionMs: version.map(round),
      small1kDfgetMs: cached.map(round),
      cold1bDfgetMs: cold.map(round),
    },
  };
}
