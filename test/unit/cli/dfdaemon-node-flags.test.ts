// dfdaemon's V8 flags (--max-semi-space-size, which V8 takes only at start) and its malloc setting
// (MALLOC_ARENA_MAX, which glibc reads only at start) live in its shebang; `npm start` runs `node FILE` and so must
// repeat them, and the tests' startDaemon reads them from the shebang. This keeps the three from drifting apart: a
// daemon started one way would otherwise use 15-30 MiB more memory than the others.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dfdaemonEnv, dfdaemonNodeFlags } from '../../helpers/daemon.js';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));

test("dfdaemon's shebang gives node a small young generation and two malloc arenas; npm start does the same", () => {
  const flags = dfdaemonNodeFlags();
  const env = dfdaemonEnv();
  assert.ok(flags.includes('--max-semi-space-size=2'), `shebang flags: ${flags.join(' ')}`);
  assert.deepEqual(env, { MALLOC_ARENA_MAX: '2' });
  const pkg = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { scripts: Record<string, string> };
  assert.equal(
    pkg.scripts.start,
    `exec env MALLOC_ARENA_MAX=2 node ${flags.join(' ')} dist/src/cli/dfdaemon.js`,
  );
});
