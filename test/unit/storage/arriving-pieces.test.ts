// A piece relayed while it arrives (cut-through) must never hand out its last byte before it is stored and
// verified, and must fail every reader when it fails: these are what keep a relayed child from completing a
// wrong piece.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DfError } from '../../../src/core/errors.js';
import { ArrivingPiece, ArrivingPieces } from '../../../src/storage/arriving-pieces.js';

function piece(number = 3, length = 100): ArrivingPiece {
  return new ArrivingPiece('task-1', number, number * length, length, 'crc32:1234', 'parent-1');
}

test('bytes become readable as they are written, the last one only once the piece is stored', async () => {
  const p = piece();
  p.progress(40);
  assert.equal(await p.waitBeyond(0), 40);
  p.progress(100);
  // Written whole but not yet verified: one byte is held back.
  assert.equal(await p.waitBeyond(40), 99);
  const last = p.waitBeyond(99);
  let resolved: number | undefined;
  void last.then((n) => (resolved = n));
  await new Promise((r) => setImmediate(r));
  assert.equal(resolved, undefined, 'the last byte waits for the piece to be stored');
  p.finish();
  assert.equal(await last, 100);
  assert.equal(p.done, true);
});

test('a failed piece fails every reader waiting on it, and later ones', async () => {
  const p = piece();
  p.progress(10);
  const waiting = p.waitBeyond(10);
  p.fail(new DfError('UNAVAILABLE', 'parent went away'));
  await assert.rejects(waiting, /parent went away/);
  await assert.rejects(p.waitBeyond(0), /parent went away/);
  // A stored piece cannot fail afterwards.
  const q = piece();
  q.finish();
  q.fail(new DfError('UNAVAILABLE', 'too late'));
  assert.equal(await q.waitBeyond(0), 100);
});

test('a reader whose signal aborts stops waiting', async () => {
  const p = piece();
  const ac = new AbortController();
  const waiting = p.waitBeyond(0, ac.signal);
  ac.abort();
  await assert.rejects(waiting, (e: DfError) => e.code === 'CANCELLED');
});

test('the registry lists a task’s arriving pieces, tells subscribers of new ones, and keeps one writer a piece', () => {
  const reg = new ArrivingPieces();
  const heard: number[] = [];
  const unsubscribe = reg.subscribe('task-1', (p) => heard.push(p.number));
  const a = piece(1);
  assert.equal(reg.start(a), true);
  assert.equal(reg.start(piece(1)), false, 'a second writer of the same piece is not relayed');
  reg.start(piece(2));
  assert.deepEqual(heard, [1, 2]);
  assert.deepEqual(
    reg.list('task-1').map((p) => p.number),
    [1, 2],
  );
  assert.equal(reg.get('task-1', 1), a);
  reg.end(a);
  assert.equal(reg.get('task-1', 1), undefined);
  unsubscribe();
  reg.start(piece(5));
  assert.deepEqual(heard, [1, 2], 'no news after unsubscribing');
  assert.deepEqual(reg.list('other'), []);
});
