// What bench:upstream:swarm reads from a Rust dfdaemon's console log (bench/p2p/rust-log.ts): its metadata is in
// RocksDB, so its piece timeline and its scheduler exchanges come from the log. The lines are a real Rust
// dfdaemon's (test/data/bench/rust-dfdaemon-1.5.10-console.txt: a Rust peer under our seed, before the SyncPieces
// deadline fix).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { summarizePieces } from '../../../bench/p2p/collect.js';
import { rustLogCounts, rustPieceTimeline } from '../../../bench/p2p/rust-log.js';

const MIB = 2 ** 20;
const LOG = fileURLToPath(
  new URL('../../../../test/data/bench/rust-dfdaemon-1.5.10-console.txt', import.meta.url),
);
const TASK = 'c46602191c067baf11eb0cb438a20708f23a0a7ca5fd0cdc8a3d326095f44f96';
const T0 = Date.parse('2026-12-06T08:17:59.000Z');
const NAMES = new Map([
  ['10.77.226.10', 'seed'],
  ['10.77.226.12', 'peer2'],
]);

test('the piece timeline: each finish line with its parent, the start line gives the cost', () => {
  const { pieces, error } = rustPieceTimeline(LOG, TASK, T0, NAMES, () => 4 * MIB);
  assert.equal(error, undefined);
  assert.deepEqual(
    pieces.map((p) => [p.n, p.from, p.type, p.created, p.finished, p.cost, p.length]),
    [
      [0, 'seed', 'peer', 675, 1059, 384, 4 * MIB],
      [3, 'seed', 'peer', 1719, 2284, 565, 4 * MIB],
      [15, 'peer2', 'peer', 12793, 14059, 1266, 4 * MIB],
      [14, 'peer2', 'peer', 12769, 14078, 1309, 4 * MIB],
    ],
  );
  const s = summarizePieces(pieces);
  assert.equal(s.fromSeed, 0.5);
  assert.equal(s.fromPeers, 0.5);
});

test('another task, or a log without debug lines, gives no pieces and says why', () => {
  const other = rustPieceTimeline(LOG, 'f'.repeat(64), T0, NAMES, () => 4 * MIB);
  assert.deepEqual(other.pieces, []);
  assert.match(other.error ?? '', /no "finished piece" line for the task .* at debug/);
  assert.match(rustPieceTimeline('/nonexistent.log', TASK, T0, NAMES, () => 1).error ?? '', /no "finished/);
});

test('pieces from the source and from local storage are told apart', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rust-log-test-'));
  try {
    const path = join(dir, 'd.log');
    const at = (s: string) => `2026-12-06T08:18:0${s}Z DEBUG download_task: src/resource/task.rs:1: `;
    writeFileSync(
      path,
      [
        `${at('1.5')}start to download piece ${TASK}-0 from source host_id="h"`,
        `${at('2.25')}finished piece ${TASK}-0 from source host_id="h"`,
        `${at('3')}finished piece ${TASK}-1 from local`,
        'not a log line',
      ].join('\n'),
    );
    const { pieces } = rustPieceTimeline(path, TASK, T0, NAMES, (n) => (n === 1 ? 1234 : 4 * MIB));
    assert.deepEqual(
      pieces.map((p) => [p.n, p.from, p.type, p.cost, p.length]),
      [
        [0, 'origin', 'source', 750, 4 * MIB],
        [1, 'local', 'local', 0, 1234],
      ],
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('log counts: parents offered, reschedules sent, warnings and errors', () => {
  const c = rustLogCounts(LOG, TASK, NAMES);
  assert.equal(c.candidateParents, 2);
  assert.deepEqual(c.parentsOffered, ['seed', 'peer2']);
  assert.equal(c.rescheduleSent, 1);
  assert.equal(c.reschedules, 1);
  assert.equal(c.rescheduleSource, 'reschedule lines');
  assert.equal(c.backToSource, 0);
  assert.equal(c.warn, 1);
  assert.equal(c.error, 4);
  const deadline = Object.entries(c.messages).filter(([m]) => /^error: sync pieces from parent/.test(m));
  assert.equal(deadline.length, 1, Object.keys(c.messages).join('\n'));
  // Piece lines are the timeline's, not messages.
  assert.ok(!Object.keys(c.messages).some((m) => /piece .* from parent/.test(m) && !m.startsWith('error')));
});
