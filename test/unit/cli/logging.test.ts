// activeLogFile: the file dfdaemon's start-up line names must be the one its rotating logger writes. The line used
// to name `dfdaemon.log`, which never exists: the logger writes `dfdaemon.1.log`, and after a restart or a rotation
// a higher number (issue 17). And the rotation itself (rotating-log-file.ts), which replaced pino-roll.

import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
function rotatingLogger(dir: string, maxFileSize = 1024 * 1024, maxFiles = 3) {
  return createRotatingLogger(
    { name: 'dfdaemon', level: 'info', console: false, logDir: dir },
    { maxFiles, maxFileSize },
  );
}

/** Waits up to 5 s for `ok`. */
async function eventually(ok: () => boolean): Promise<boolean> {
  for (let i = 0; i < 250 && !ok(); i++) await new Promise((r) => setTimeout(r, 20));
  return ok();
}

const ownFiles = (dir: string) =>
  readdirSync(dir)
    .filter((f) => /^dfdaemon\.\d+\.log$/.test(f))
    .sort((a, b) => Number(a.split('.')[1]) - Number(b.split('.')[1]));

test(
  'no directory or an empty one: the logger starts at dfdaemon.1.log',
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
  'before ours exist, the highest number of any *<n>.log (a directory pino-roll wrote) is continued',
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

// The log files are written on the daemon's main thread (a transport's worker thread held ~15 MiB of idle RSS);
// these keep what the worker did for us: rotation by size, a bounded number of files, and every line written
// before the process exits.
test(
  'the rotating logger moves to the next numbered file once a file reaches its size',
  withDir(async (dir) => {
    const log = await rotatingLogger(dir, 1024);
    for (let i = 0; i < 40; i++) {
      log.info({ i, pad: 'x'.repeat(100) }, 'line');
      await new Promise<void>((resolve) => log.flush(() => resolve()));
    }
    // Rotated files beyond maxFiles (3) are deleted, so look for any number above 1.
    assert.ok(
      await eventually(() => ownFiles(dir).some((f) => f !== 'dfdaemon.1.log')),
      'no dfdaemon.<n>.log with n > 1 after 4 KiB of lines with a 1 KiB size',
    );
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

test(
  'rotation keeps maxFiles rotated files beside the live one, deleting older numbers',
  withDir(async (dir) => {
    const log = await rotatingLogger(dir, 512, 2);
    for (let i = 0; i < 30; i++) {
      log.info({ i, pad: 'x'.repeat(200) }, 'line');
      await new Promise<void>((resolve) => log.flush(() => resolve()));
    }
    // Files open asynchronously: wait for the listing to settle on three consecutive numbers, the newest ≥ 6.
    const numbers = () => ownFiles(dir).map((f) => Number(f.split('.')[1]));
    const settled = () => {
      const n = numbers();
      return n.length === 3 && n[0]! >= 4 && n[1] === n[0]! + 1 && n[2] === n[0]! + 2;
    };
    assert.ok(await eventually(settled), `files: ${ownFiles(dir).join(', ')}`);
    const live = activeLogFile(dir, 'dfdaemon');
    assert.equal(live, join(dir, `dfdaemon.${numbers()[2]}.log`));
    // The newest line is in the live file, or in the one before when that line made the file rotate.
    const newest = () =>
      [live, join(dir, `dfdaemon.${numbers()[1]}.log`)].some((f) =>
        readFileSync(f, 'utf8').includes('"i":29'),
      );
    assert.ok(await eventually(newest), 'the last line is in neither of the two newest files');
  }),
);

test(
  "a restart counts the live file's size: it rotates when the old bytes and the new reach the size",
  withDir(async (dir) => {
    writeFileSync(join(dir, 'dfdaemon.4.log'), 'x'.repeat(900) + '\n');
    const log = await rotatingLogger(dir, 1024);
    assert.equal(activeLogFile(dir, 'dfdaemon'), join(dir, 'dfdaemon.4.log'));
    log.info({ pad: 'y'.repeat(200) }, 'after restart');
    await new Promise<void>((resolve) => log.flush(() => resolve()));
    assert.ok(await eventually(() => existsSync(join(dir, 'dfdaemon.5.log'))), ownFiles(dir).join());
    assert.ok(readFileSync(join(dir, 'dfdaemon.4.log'), 'utf8').includes('after restart'));
  }),
);

// pino-roll loaded all of date-fns (304 modules, ≈12 MiB of RSS); neither may come back, with or without log files.
test(
  'neither pino-roll nor date-fns is loaded, whether the daemon logs to files or to the console',
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
        console.log(['pino-roll', 'date-fns', 'sonic-boom'].filter((p) => paths.some((x) => x.includes('/' + p + '/'))).join(','));
        process.exit(0);`;
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { timeout: 20_000 });
      assert.equal(r.status, 0, r.stderr.toString());
      return r.stdout.toString().trim();
    };
    // sonic-boom (pino's own writer) is there either way: the check sees the modules loaded.
    assert.equal(loaded(true), 'sonic-boom');
    assert.equal(loaded(false), 'sonic-boom');
  }),
);
