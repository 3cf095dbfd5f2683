// startDaemon runs `node dfdaemon.js`, not the file itself, so it must give the daemon what the shebang gives the
// installed binary; otherwise the tests (and the benchmarks, which use startDaemon) measure a daemon with glibc's
// default malloc arenas, 10-20 MiB larger at its peak than the one users run.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startDaemon, stopDaemon } from '../helpers/daemon.js';

test('a daemon started by the tests runs with the environment and node flags of the shebang', async () => {
  const d = await startDaemon();
  try {
    const environ = readFileSync(`/proc/${d.proc.pid}/environ`, 'utf8').split('\0');
    assert.ok(environ.includes('MALLOC_ARENA_MAX=2'), 'MALLOC_ARENA_MAX=2 is not in the daemon environment');
    const cmdline = readFileSync(`/proc/${d.proc.pid}/cmdline`, 'utf8').split('\0');
    assert.ok(cmdline.includes('--max-semi-space-size=2'), `cmdline: ${cmdline.join(' ')}`);
  } finally {
    await stopDaemon(d);
  }
});
