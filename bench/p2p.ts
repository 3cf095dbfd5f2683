// `npm run bench:p2p`: P2P distribution over shaped links between network namespaces on one machine, against
// the distribution bound (issue 11). Root: it makes namespaces, veths, a bridge and tc tbf qdiscs.
//
// Scenarios (P2P_SCENARIOS, a comma list; default all, in this order):
//   cold-seed  seed + 1 peer, 100 Mbit/s, 256 MiB: the peer takes the file through a seed that starts cold
//   8x256M     seed + 7 peers, 100 Mbit/s, 256 MiB
//   8x1G       seed + 7 peers, 100 Mbit/s, 1 GiB
//   32x64M     seed + 32 peers, 10 Mbit/s, 64 MiB (a rate at which 2 cores are not the bottleneck)
// Each scenario builds its own network (bench/p2p/topology.ts); each of its P2P_REPEATS (default 3) repeats
// starts a fresh dfscheduler and fresh dfdaemons and has every peer dfget a new file at once
// (bench/p2p/run.ts), then reads back /metrics, eth0 counters, the origin's byte counts, the daemons' and the
// scheduler's logs, each daemon's piece records and CPU (bench/p2p/collect.ts). The report
// (bench/p2p/report.ts) gives the medians beside the targets, against the Kumar–Ross bound
// (bench/p2p/bound.ts) with the raw link rate and with the goodput curl measured over one shaped link.
//
// Env: P2P_SCENARIOS, P2P_REPEATS; overrides for every selected scenario: P2P_PEERS (not cold-seed), P2P_RATE
// (tc rate, e.g. 100mbit), P2P_SIZE (bytes or 16MiB/1GiB), P2P_BURST (tc burst; default rate/200 s, ≥ 16 KiB);
// P2P_GOODPUT_SECONDS (curl length at the link rate, default 10), P2P_TIMEOUT_FACTOR (a download is given up
// after this × the bound, ≥ 2 min; default 5), P2P_LOG_LEVEL (daemons and scheduler, default info: the
// reschedule counts need info), P2P_UPLOAD_LIMIT (the daemons' upload.bandwidthLimit), P2P_KEEP_LOGS (a dir to
// copy the logs to), P2P_RESULTS_DIR (default bench/results).
// Writes p2p-latest.{json,md}, p2p-YYYY-MM-DD.md and p2p-latest-pieces.json; never fails on a number.
// Every process started here is ended by PID (processes in a namespace survive `ip netns del`), the namespaces
// are deleted after each scenario and the temp dir at the end, also on error, SIGINT/SIGTERM/SIGHUP and the
// watchdog (scaled with the scenario list).

import { mkdtempSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { machineInfo, machineLine } from './machine.js';
import { runOrigin } from './p2p/origin.js';
import { cleanup, cleanupSync, log, namespaces, setTempDir } from './p2p/procs.js';
import { renderConsole, writeResults } from './p2p/report.js';
import { runScenario, type ScenarioResult } from './p2p/run.js';
import { floorSeconds, scenarioBudgetMs, settingsFromEnv } from './p2p/scenarios.js';
import { RESULTS_DIR } from './report.js';
import { randomBytes } from 'node:crypto';

const THIS_FILE = fileURLToPath(import.meta.url);
/** Added to the scenarios' budgets: start, reporting and cleanup. */
const RESERVE_MS = 90_000;

async function bench(settings: ReturnType<typeof settingsFromEnv>, deadline: number): Promise<void> {
  const began = performance.now();
  const machine = machineInfo('nginx');
  log(`machine: ${machineLine(machine)}`);
  const sfx = randomBytes(3).toString('hex');
  const tmp = mkdtempSync(join(tmpdir(), `dfp2p-${sfx}-`));
  setTempDir(tmp, settings.keepLogsDir);
  mkdirSync(join(tmp, 'logs'));
  const results: ScenarioResult[] = [];
  for (const [i, sc] of settings.scenarios.entries()) {
    const budget = scenarioBudgetMs(sc, settings);
    if (Date.now() + budget > deadline) {
      log(`${sc.name}: skipped, its budget (${(budget / 1000).toFixed(0)} s) no longer fits the watchdog`);
      continue;
    }
    log(
      `scenario ${sc.name}: seed + ${sc.peers} peers, ${sc.size} B at ${sc.rate} (floor ${floorSeconds(sc).toFixed(1)} s)`,
    );
    results.push(
      await runScenario(sc, { settings, tmp, entryFile: THIS_FILE, prefix: `dfp2p-${sfx}-${i}`, index: i }),
    );
  }
  const date = new Date().toISOString();
  const durationS = (performance.now() - began) / 1000;
  process.stdout.write(`\n${renderConsole(results, machine)}\n`);
  const dir = settings.resultsDir ?? RESULTS_DIR;
  writeResults(dir, { date, machine, settings, results, durationS });
  log(`wrote ${join(dir, 'p2p-latest.md')} (+ .json, -pieces.json)`);
}

if (process.argv[2] === '--origin') {
  await runOrigin(process.argv[3]!, Number(process.argv[4]));
} else {
  const settings = settingsFromEnv();
  const watchdogMs = settings.scenarios.reduce((s, sc) => s + scenarioBudgetMs(sc, settings), RESERVE_MS);
  const deadline = Date.now() + watchdogMs - RESERVE_MS / 2;
  log(
    `scenarios ${settings.scenarios.map((s) => s.name).join(', ')}; ${settings.repeats} repeat(s); ` +
      `watchdog ${(watchdogMs / 60_000).toFixed(1)} min`,
  );
  const watchdog = setTimeout(() => {
    log(`watchdog: still running after ${(watchdogMs / 1000).toFixed(0)} s; stopping`);
    void cleanup().finally(() => process.exit(1));
  }, watchdogMs);
  watchdog.unref();
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      log(`${sig}: cleaning up`);
      void cleanup().finally(() => process.exit(130));
    });
  }
  process.once('exit', cleanupSync);
  try {
    await bench(settings, deadline);
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
