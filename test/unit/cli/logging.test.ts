// activeLogFile: the file dfdaemon's start-up line names must be the one pino-roll writes. The line used to name
// `dfdaemon.log`, which never exists: pino-roll writes `dfdaemon.1.log`, and after a restart or a rotation a
// higher number (issue 17).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { activeLogFile, createLogger, logFlushed } from '../../../src/cli/logging.js';

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
function rotatingLogger(dir: string) {
  return createLogger({
    name: 'dfdaemon',
    level: 'info',
    console: false,
    logDir: dir,
    rotate: { maxFiles: 3, maxFileSize: 1024 * 1024 },
  });
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
      const log = rotatingLogger(dir);
      log.info({ run }, 'hello');
      // The transport writes from a worker thread: wait until the line is in the file named.
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
    const log = rotatingLogger(dir);
    log.info('started');
    const file = activeLogFile(dir, 'dfdaemon');
    await logFlushed(log, file);
    assert.ok(existsSync(file), 'no log file after logFlushed');
  }),
);
