// The entry of a netns swarm benchmark, shared by `bench:p2p` (our dfdaemons, issue 11) and
// `bench:upstream:swarm` (ours beside the upstream Rust client, issue 13): settings from the environment with the
// entry's defaults, the watchdog, the signal handlers, every scenario in turn, the report, and the cleanup (every
// process by PID, every namespace, the temp dir) also on error. `ENTRY --origin IP PORT` runs the origin server.

import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { missingUpstream } from '../../test/helpers/upstream/programs.js';
import { machineInfo, machineLine } from '../machine.js';
import { RESULTS_DIR } from '../report.js';
import { needsRust } from './modes.js';
import { runOrigin } from './origin.js';
import { cleanup, cleanupSync, log, namespaces, setTempDir } from './procs.js';
import { renderConsole, writeResults } from './report.js';
import { runScenario, type ScenarioResult } from './run.js';
import {
  floorSeconds,
  scenarioBudgetMs,
  settingsFromEnv,
  type Settings,
  type SettingsDefaults,
} from './scenarios.js';

/** Added to the scenarios' budgets: start, reporting and cleanup. */
const RESERVE_MS = 90_000;

export interface SwarmBench {
  /** The entry file (the origin runs as `node ENTRY --origin IP PORT`). */
  entryFile: string;
  defaults: SettingsDefaults;
  /** Results file names: `${prefix}latest.md`, …; and the report's title. */
  resultsPrefix: string;
  title: string;
}

async function bench(b: SwarmBench, settings: Settings, deadline: number): Promise<void> {
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
      `scenario ${sc.name}: seed + ${sc.peers} peers, ${sc.size} B at ${sc.rate} (floor ${floorSeconds(sc).toFixed(1)} s)` +
        (settings.modes.length > 1 || settings.modes[0]!.name !== 'ours'
          ? `; modes ${settings.modes.map((m) => m.name).join(', ')}`
          : ''),
    );
    results.push(
      ...(await runScenario(sc, {
        settings,
        tmp,
        entryFile: b.entryFile,
        prefix: `dfp2p-${sfx}-${i}`,
        index: i,
      })),
    );
  }
  const date = new Date().toISOString();
  const durationS = (performance.now() - began) / 1000;
  process.stdout.write(`\n${renderConsole(results, machine)}\n`);
  const dir = settings.resultsDir ?? RESULTS_DIR;
  writeResults(dir, { date, machine, settings, results, durationS }, b);
  log(`wrote ${join(dir, `${b.resultsPrefix}latest.md`)} (+ .json, -pieces.json)`);
}

/** Reads the settings; a bad setting or a missing Rust client ends the process with one line. */
function settingsOrExit(b: SwarmBench): Settings {
  let settings: Settings;
  try {
    settings = settingsFromEnv(process.env, b.defaults);
  } catch (e) {
    log(`failed: ${(e as Error).message}`);
    process.exit(2);
  }
  if (settings.scenarios.some((sc) => needsRust(settings.modes, sc.peers))) {
    const missing = missingUpstream(['dfdaemon', 'dfget']);
    if (missing.length > 0) {
      log(`failed: upstream programs missing: ${missing.join('; ')}`);
      process.exit(1);
    }
  }
  return settings;
}

export async function swarmMain(b: SwarmBench): Promise<void> {
  if (process.argv[2] === '--origin') {
    await runOrigin(process.argv[3]!, Number(process.argv[4]));
    return;
  }
  const settings = settingsOrExit(b);
  const watchdogMs = settings.scenarios.reduce((s, sc) => s + scenarioBudgetMs(sc, settings), RESERVE_MS);
  const deadline = Date.now() + watchdogMs - RESERVE_MS / 2;
  log(
    `scenarios ${settings.scenarios.map((s) => s.name).join(', ')}; modes ${settings.modes.map((m) => m.name).join(', ')}; ` +
      `${settings.repeats} repeat(s); watchdog ${(watchdogMs / 60_000).toFixed(1)} min`,
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
    await bench(b, settings, deadline);
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
