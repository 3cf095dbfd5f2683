// activeLogFile: the file dfdaemon's start-up line names must be the one pino-roll writes. The line used to name
// `dfdaemon.log`, which never exists: pino-roll writes `dfdaemon.1.log`, and after a restart or a rotation a
// higher number (issue 17).

import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { activeLogFile, createRotatingLogger, logFlushed } from '../../../src/cli/logging.js';

function withDir(fn: (dir: string) => void | Promise<void>) {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dft-logs-'));
    try {
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

/** dfdaemon's logger as it runs without --console: rotated files in `dir`. */
function rotatingLogger(dir: string, maxFileSize = 1024 * 1024) {
  return createRotatingLogger(
    { name: 'dfdaemon', level: 'info', console: false, logDir: dir },
    { maxFiles: 3, maxFileSize },
  );
}

test(
  'no directory or an empty one: pino-roll starts at dfdaemon.1.log',
  withDir((dir) => {
    assert.equal(activeLogFile(join(dir, 'missing'), 'dfdaemon'), join(dir, 'missing', 'dfdaemon.1.log'));
    assert.equal(activeLogFile(dir, 'dfdaemon'), join(dir, 'dfdaemon.1.log'));
  }),
);

test(
  'the highest-numbered file of ours is the live one; other files do not count once ours exist',
  withDir((dir) => {
    for (const f of ['dfdaemon.1.log', 'dfdaemon.3.log', 'dfdaemon.2.log', 'dfdaemon.log.bak', 'notes.txt'])
      writeFileSync(join(dir, f), '');
    assert.equal(activeLogFile(dir, 'dfdaemon'), join(dir, 'dfdaemon.3.log'));
  }),
);

test(
  'before ours exist, pino-roll continues from the highest number of any *<n>.log',
  withDir((dir) => {
    writeFileSync(join(dir, 'other.7.log'), '');
    assert.equal(activeLogFile(dir, 'dfdaemon'), join(dir, 'dfdaemon.7.log'));
  }),
);

test(
  'a rotating logger writes to the file activeLogFile names, also after a restart',
  withDir(async (dir) => {
    for (let run = 0; run < 2; run++) {
      const log = await rotatingLogger(dir);
      log.info({ run }, 'hello');
      // sonic-boom writes asynchronously: wait until the line is in the file named.
      const file = activeLogFile(dir, 'dfdaemon');
      const holds = () => {
        try {
          return readFileSync(file, 'utf8').includes(`"run":${run}`);
        } catch {
          return false;
        }
      };
      for (let i = 0; i < 250 && !holds(); i++) await new Promise((r) => setTimeout(r, 20));
      assert.ok(holds(), `${file} does not hold the line of run ${run}`);
      assert.equal(file, join(dir, 'dfdaemon.1.log'));
    }
  }),
);

// dfdaemon prints its start-up line, which names the log file, only after logFlushed: the npm start test read the
// file named and found none when the pino-roll worker started more slowly than the daemon's servers.
test(
  'logFlushed resolves once the rotating logger has created the file activeLogFile names',
  withDir(async (dir) => {
    const log = await rotatingLogger(dir);
    log.info('started');
    const file = activeLogFile(dir, 'dfdaemon');
    await logFlushed(log, file);
    assert.ok(existsSync(file), 'no log file after logFlushed');
  }),
);

// pino-roll now runs on the daemon's main thread (a transport's worker thread held ~15 MiB of idle RSS); these two
// keep what the worker did for us: rotation by size, and every line written before the process exits.
test(
  'the rotating logger moves to the next numbered file once a file reaches its size',
  withDir(async (dir) => {
    const log = await rotatingLogger(dir, 1024);
    for (let i = 0; i < 40; i++) {
      log.info({ i, pad: 'x'.repeat(100) }, 'line');
      await new Promise<void>((resolve) => log.flush(() => resolve()));
    }
    const second = join(dir, 'dfdaemon.2.log');
    for (let i = 0; i < 250 && !existsSync(second); i++) await new Promise((r) => setTimeout(r, 20));
    assert.ok(existsSync(second), 'no dfdaemon.2.log after 4 KiB of lines with a 1 KiB size');
  }),
);

test(
  'lines logged just before process.exit reach the rotated file',
  withDir(async (dir) => {
    const logging = new URL('../../../src/cli/logging.js', import.meta.url).href;
    const script = `
      const { createRotatingLogger } = await import(${JSON.stringify(logging)});
      const log = await createRotatingLogger(
        { name: 'dfdaemon', level: 'info', console: false, logDir: ${JSON.stringify(dir)} },
        { maxFiles: 3, maxFileSize: 1048576 },
      );
      for (let i = 0; i < 100; i++) log.info({ i }, 'before exit');
      process.exit(0);`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { timeout: 20_000 });
    assert.equal(r.status, 0, r.stderr.toString());
    const text = readFileSync(join(dir, 'dfdaemon.1.log'), 'utf8');
    assert.ok(text.includes('"i":99'), `the last line is missing:\n${text.slice(-300)}`);
  }),
);

// pino-roll loads all of date-fns (304 modules, ≈12 MiB of RSS): a daemon with --console and the CLIs, which share
// this module, must not load it; it was loaded at import for a while.
test(
  'pino-roll and date-fns are loaded only for a logger that writes rotated files',
  withDir((dir) => {
    const logging = new URL('../../../src/cli/logging.js', import.meta.url).href;
    const loaded = (console: boolean) => {
      const script = `
        import { createRequire } from 'node:module';
        const { createRotatingLogger } = await import(${JSON.stringify(logging)});
        await createRotatingLogger(
          { name: 'dfdaemon', level: 'info', console: ${console}, logDir: ${JSON.stringify(dir)} },
          { maxFiles: 3, maxFileSize: 1048576 },
        );
        const paths = Object.keys(createRequire(import.meta.url).cache);
        console.log(['pino-roll', 'date-fns'].filter((p) => paths.some((x) => x.includes('/' + p + '/'))).join(','));
        process.exit(0);`;
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { timeout: 20_000 });
      assert.equal(r.status, 0, r.stderr.toString());
      return r.stdout.toString().trim();
    };
    assert.equal(loaded(true), '');
    assert.equal(loaded(false), 'pino-roll,date-fns');
  }),
);
