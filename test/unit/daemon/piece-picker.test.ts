// The piece picker (src/daemon/piece-picker.ts): which announced piece starts next and from which parent —
// availability first, rarest first with a random tie-break, in-order consumers' lowest piece first, a per-parent
// cap, normal peers before seeds, then weighting by measured throughput. `random` is injected so every choice is
// exact.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PiecePicker, type PieceHolder } from '../../../src/daemon/piece-picker.js';
import type { PieceCandidates } from '../../../src/daemon/task-run.js';

function holder(parentId: string, seed = false): PieceHolder {
  return { parentId, hostId: `host-${parentId}`, ip: '127.0.0.1', tcpPort: 4000, seed };
}

function candidates(queued: number[], inOrder: number[] = []): PieceCandidates {
  return { queued: new Set(queued), inOrder: new Set(inOrder), inFlight: new Set() };
}

/** A random() that returns the given values in turn (and fails the test if asked for more). */
function sequence(...values: number[]): () => number {
  let i = 0;
  return () => {
    assert.ok(i < values.length, 'random() called more often than expected');
    return values[i++]!;
  };
}

function announceAll(picker: PiecePicker, h: PieceHolder, numbers: number[]): void {
  for (const n of numbers) picker.announce(n, h);
}

test('only pieces some parent announced are picked, each announcement counts once', () => {
  const picker = new PiecePicker({ perParentLimit: 3, random: () => 0 });
  const a = holder('a');
  assert.equal(picker.pick(candidates([0, 1, 2, 3])), undefined, 'nothing announced: nothing starts');
  assert.equal(picker.announce(2, a), true);
  assert.equal(picker.announce(2, a), false, 'a repeated announcement is not news');
  assert.deepEqual(picker.pick(candidates([0, 1, 2, 3])), { number: 2, parent: a });
  assert.equal(picker.pick(candidates([0, 1, 3])), undefined, 'the announced piece is not queued any more');
  assert.equal(picker.available(2), true);
  assert.equal(picker.available(0), false);
});

test('the rarest piece goes first; equally rare pieces are chosen at random', () => {
  const a = holder('a');
  const b = holder('b');
  const setUp = (random: () => number): PiecePicker => {
    const picker = new PiecePicker({ perParentLimit: 3, random });
    announceAll(picker, a, [0, 1, 2, 3]);
    announceAll(picker, b, [0, 1]);
    return picker;
  };
  // Pieces 2 and 3 have one holder each, 0 and 1 two: one of 2 and 3, by reservoir sampling over the queue in
  // its order (a second tie replaces the first when random() * 2 < 1; the first draw is the tie of 0 and 1).
  // Only `a` holds 2 and 3: no parent draw.
  assert.deepEqual(setUp(sequence(0.9, 0.9)).pick(candidates([0, 1, 2, 3])), { number: 2, parent: a });
  assert.deepEqual(setUp(sequence(0.9, 0.1)).pick(candidates([0, 1, 2, 3])), { number: 3, parent: a });
  // With the rare pieces gone, the common ones are next (and the parent is drawn among both holders).
  const picked = setUp(sequence(0.9, 0)).pick(candidates([0, 1]));
  assert.equal(picked?.number, 0);
});

test("an in-order consumer's lowest piece that some parent can give goes first, whatever its rarity", () => {
  const picker = new PiecePicker({ perParentLimit: 3, random: () => 0 });
  const a = holder('a');
  const b = holder('b');
  announceAll(picker, a, [1, 3, 5]);
  announceAll(picker, b, [3, 5]);
  // Piece 1 is the rarest, but the in-order consumer waits for 3, 5 and 7.
  assert.equal(picker.pick(candidates([1, 3, 5, 7], [3, 5, 7]))?.number, 3);
  // Nobody has 7: the lowest in-order piece that somebody has.
  assert.equal(picker.pick(candidates([1, 5, 7], [7, 5]))?.number, 5);
  // No in-order piece is available: rarest first among the rest.
  assert.equal(picker.pick(candidates([1, 3, 7], [7]))?.number, 1);
});

test('a parent serves at most perParentLimit requests at once', () => {
  const picker = new PiecePicker({ perParentLimit: 2, random: () => 0 });
  const a = holder('a');
  announceAll(picker, a, [0, 1, 2, 3]);
  const queued = [0, 1, 2, 3];
  const take = (): number | undefined => {
    const p = picker.pick(candidates(queued));
    if (!p) return undefined;
    picker.started(p.parent.parentId);
    queued.splice(queued.indexOf(p.number), 1);
    return p.number;
  };
  assert.notEqual(take(), undefined);
  assert.notEqual(take(), undefined);
  assert.equal(picker.inFlight('a'), 2);
  assert.equal(take(), undefined, 'both slots are taken');
  assert.equal(picker.available(queued[0]!), true, 'the piece is still available once a slot frees');
  picker.ended('a');
  assert.notEqual(take(), undefined, 'a freed slot starts the next piece');
  assert.equal(take(), undefined);
});

test('a normal peer is preferred over a seed; the seed serves only what no normal-peer parent holds', () => {
  const picker = new PiecePicker({ perParentLimit: 1, random: sequence() });
  const seed = holder('seed', true);
  const peer = holder('peer');
  announceAll(picker, seed, [0, 1]);
  picker.announce(0, peer);
  // Both hold piece 0: the peer, without a draw (the pool holds only normal peers).
  assert.deepEqual(picker.chooseParent(0), peer);
  assert.deepEqual(picker.pick(candidates([0])), { number: 0, parent: peer });
  // Only the seed holds piece 1.
  assert.deepEqual(picker.pick(candidates([1])), { number: 1, parent: seed });
  // The peer's only slot is taken: piece 0 waits for it (the seed's uplink is for what nobody else has).
  picker.started('peer');
  assert.equal(picker.pick(candidates([0])), undefined);
  assert.deepEqual(picker.pick(candidates([0, 1])), { number: 1, parent: seed });
  picker.started('seed');
  assert.equal(picker.pick(candidates([0, 1])), undefined, 'every holder is full');
});

test('parents are weighed by the throughput measured from them; an unmeasured parent gets the best rate', () => {
  const draws = Array.from({ length: 100 }, (_, i) => i / 100);
  const fast = holder('fast');
  const slow = holder('slow');
  const fresh = holder('fresh');
  const picker = new PiecePicker({ perParentLimit: 3, random: sequence(...draws, ...draws) });
  for (const h of [fast, slow, fresh]) picker.announce(0, h);
  picker.started('fast');
  picker.ended('fast', { bytes: 9000, ms: 1 });
  picker.started('slow');
  picker.ended('slow', { bytes: 1000, ms: 1 });
  picker.dropParent('fresh');
  // Weights 9000 : 1000 over evenly spread draws: the fast parent gets 90 of 100 pieces.
  const counts = new Map<string, number>();
  for (let i = 0; i < 100; i++) {
    const id = picker.chooseParent(0)!.parentId;
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  assert.deepEqual(Object.fromEntries(counts), { fast: 90, slow: 10 });

  // A parent without a sample is weighed as the best known one, so it gets tried.
  const p2 = new PiecePicker({ perParentLimit: 3, random: sequence(...draws) });
  for (const h of [fast, fresh]) p2.announce(0, h);
  p2.started('fast');
  p2.ended('fast', { bytes: 9000, ms: 1 });
  const fresher = new Map<string, number>();
  for (let i = 0; i < 100; i++) {
    const id = p2.chooseParent(0)!.parentId;
    fresher.set(id, (fresher.get(id) ?? 0) + 1);
  }
  assert.deepEqual(Object.fromEntries(fresher), { fast: 50, fresh: 50 });
  // A failed piece is no sample: the in-flight count drops, the rate stays.
  p2.started('fresh');
  p2.ended('fresh');
  assert.equal(p2.inFlight('fresh'), 0);
});

test('markFailed: that parent is never asked for that piece again; the others still are', () => {
  const picker = new PiecePicker({ perParentLimit: 3, random: () => 0 });
  const a = holder('a');
  const b = holder('b');
  announceAll(picker, a, [0, 1]);
  picker.announce(0, b);
  picker.markFailed('a', 0);
  assert.deepEqual(
    picker.holdersOf(0).map((h) => h.parentId),
    ['b'],
  );
  assert.deepEqual(picker.pick(candidates([0])), { number: 0, parent: b });
  picker.markFailed('b', 0);
  assert.equal(picker.available(0), false);
  assert.equal(picker.pick(candidates([0])), undefined);
  assert.deepEqual(picker.pick(candidates([0, 1])), { number: 1, parent: a }, 'a still gives piece 1');
});

test('dropParent: a dead parent gives nothing, and its later announcements are ignored', () => {
  const picker = new PiecePicker({ perParentLimit: 3, random: () => 0 });
  const a = holder('a');
  const b = holder('b');
  announceAll(picker, a, [0, 1]);
  picker.announce(1, b);
  assert.equal(picker.liveParents, 2);
  picker.dropParent('a');
  assert.equal(picker.liveParents, 1);
  assert.equal(picker.available(0), false);
  assert.equal(picker.announce(2, a), false, 'a dead parent announces nothing');
  assert.equal(picker.available(2), false);
  assert.equal(picker.pick(candidates([0, 2])), undefined);
  assert.deepEqual(picker.pick(candidates([0, 1, 2])), { number: 1, parent: b });
});

test('while seeds are held nothing comes from a seed, not even what only it has', () => {
  const picker = new PiecePicker({ perParentLimit: 2, random: sequence() });
  const seed = holder('seed', true);
  const peer = holder('peer');
  announceAll(picker, seed, [0, 1]);
  picker.announce(1, peer);
  picker.holdSeeds(true);
  assert.deepEqual(picker.pick(candidates([0, 1])), { number: 1, parent: peer });
  assert.equal(picker.pick(candidates([0])), undefined);
  picker.holdSeeds(false);
  assert.deepEqual(picker.pick(candidates([0])), { number: 0, parent: seed });
});

test('markFailed for a while: the parent is asked for the piece again once that time has passed', () => {
  const clock = { t: 1000 };
  const picker = new PiecePicker({ perParentLimit: 3, random: () => 0, now: () => clock.t });
  const a = holder('a');
  picker.announce(0, a);
  picker.markFailed('a', 0, 5000);
  assert.equal(picker.available(0), false, 'the only holder timed out: not asked at once');
  clock.t += 4999;
  assert.equal(picker.pick(candidates([0])), undefined);
  clock.t += 1;
  assert.deepEqual(picker.pick(candidates([0])), { number: 0, parent: a }, 'asked again after 5 s');
});
