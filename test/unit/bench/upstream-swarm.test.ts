// `npm run bench:upstream:swarm` (bench/upstream-swarm.ts) refuses to start in one line when it cannot run: the
// Rust client is not installed (it is not built in CI: a one-hour cargo install), or a setting is wrong. Both are
// checked before any namespace is made, so these runs need no root and leave nothing behind.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ENTRY = fileURLToPath(new URL('../../../bench/upstream-swarm.js', import.meta.url));

function runEntry(env: NodeJS.ProcessEnv): { code: number | null; lines: string[] } {
  const r = spawnSync(process.execPath, [ENTRY], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { code: r.status, lines: `${r.stdout}${r.stderr}`.split('\n').filter(Boolean) };
}

test('without the Rust client: exit 1 and one line naming the programs and the install step', () => {
  const empty = mkdtempSync(join(tmpdir(), 'no-cargo-'));
  try {
    const r = runEntry({ CARGO_HOME: empty, P2P_MODES: 'ours,mixed' });
    assert.equal(r.code, 1);
    assert.deepEqual(r.lines, [
      `[p2p] failed: upstream programs missing: dfdaemon, dfget (the Rust client, dragonfly-client 1.5.10) ` +
        `not in ${join(empty, 'bin')}: run \`scripts/install-upstream.sh rust\``,
    ]);
  } finally {
    rmSync(empty, { recursive: true, force: true });
  }
});

test('an unknown mode: exit 2 and one line naming the known modes', () => {
  const r = runEntry({ P2P_MODES: 'ours,golang' });
  assert.equal(r.code, 2);
  assert.deepEqual(r.lines, [
    '[p2p] failed: P2P_MODES: unknown mode "golang" (known: ours, rust, mixed, mixed-rust-seed)',
  ]);
});
