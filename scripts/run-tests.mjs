#!/usr/bin/env node
// Runs every compiled *.test.js under the given directories with node:test.
// Node 20's `--test` takes files, not globs, so we collect them here.
//
// Two limits keep a hang from eating a CI run's whole budget (a CI run once timed out with no clue where):
//   TEST_TIMEOUT_MS     each test's default timeout (a test or suite may set its own), default 10 min;
//   TEST_WALL_LIMIT_S   the whole run, default 30 min: past it, the processes still running (which test files,
//                       which servers and clients they started) are printed, all of them are killed, and the run
//                       fails.
// The runner is started in its own process group so that everything the tests start can be ended at once.
import { readdirSync, statSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { spawn, spawnSync } from 'node:child_process';

function collect(dir, out) {
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) collect(p, out);
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

function positiveNumber(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) {
    console.error(`${name}=${raw}: expected a positive number`);
    process.exit(2);
  }
  return n;
}

const files = process.argv.slice(2).flatMap((d) => collect(d, []));
if (files.length === 0) {
  console.error(`no tests found under ${process.argv.slice(2).join(', ')}`);
  process.exit(1);
}
const concurrency = process.env.TEST_CONCURRENCY ?? '2';
const testTimeoutMs = positiveNumber('TEST_TIMEOUT_MS', 10 * 60_000);
const wallLimitS = positiveNumber('TEST_WALL_LIMIT_S', 30 * 60);

const started = Date.now();
const runner = spawn(
  process.execPath,
  [
    '--test',
    // A test file whose tests are done but whose process keeps a handle open would hold its slot (and the report
    // of every later file) for ever: node:test waits for the process to exit. Processes such a file started are
    // named and ended below, when the run is over.
    '--test-force-exit',
    `--test-concurrency=${concurrency}`,
    `--test-timeout=${testTimeoutMs}`,
    '--test-reporter=spec',
    ...files,
  ],
  { stdio: 'inherit', detached: true },
);

/** The processes of the runner's group, as a tree with their run times: who is still running and since when. */
function processesOfGroup(pgid) {
  const r = spawnSync('ps', ['-o', 'pid,ppid,etime,args', '--forest', '-g', String(pgid)], {
    encoding: 'utf8',
  });
  return r.stdout || r.stderr || `ps failed: ${r.error?.message ?? r.status}`;
}

function killGroup(signal) {
  try {
    process.kill(-runner.pid, signal);
  } catch {
    // The group is gone already.
  }
}

let timedOut = false;
const watchdog = setTimeout(() => {
  timedOut = true;
  const minutes = ((Date.now() - started) / 60_000).toFixed(1);
  console.error(
    `\nrun-tests: the run passed its limit of ${wallLimitS} s (TEST_WALL_LIMIT_S) after ${minutes} min;`,
  );
  console.error('run-tests: still running (each test file is a `node --test` child of the runner):');
  console.error(processesOfGroup(runner.pid));
  console.error('run-tests: killing them all');
  killGroup('SIGKILL');
}, wallLimitS * 1000);

// Ctrl-C or a CI stop reaches the runner's group too, not only this process.
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    killGroup(signal);
    process.exit(1);
  });
}

runner.on('exit', (code, signal) => {
  clearTimeout(watchdog);
  // What the test files started and left behind (a server a file did not end: a hermeticity bug) is named, then
  // ended with the group.
  if (!timedOut) {
    const left = processesOfGroup(runner.pid).trim().split('\n').slice(1);
    if (left.length > 0) {
      console.error('run-tests: WARNING: processes the tests started and did not end (killed now):');
      console.error(left.join('\n'));
    }
  }
  killGroup('SIGKILL');
  if (timedOut) {
    console.error(`run-tests: FAILED: the run did not finish within ${wallLimitS} s`);
    process.exit(1);
  }
  process.exit(code ?? (signal ? 1 : 0));
});
