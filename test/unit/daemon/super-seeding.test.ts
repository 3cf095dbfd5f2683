import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SuperSeeding, TaskAnnouncements, type ChildStream } from '../../../src/daemon/super-seeding.js';
import type { PieceRecord } from '../../../src/storage/storage.js';

function piece(number: number, finishedAt: number): PieceRecord {
  const at = new Date(finishedAt);
  return {
    taskId: 't',
    number,
    offset: number * 4,
    length: 4,
    digest: 'crc32:0',
    trafficType: 0,
    costMs: 0,
    createdAt: at,
    updatedAt: at,
    finishedAt: at,
  };
}

function child(pieces: number): ChildStream & { told: number[] } {
  const told: number[] = [];
  return { told, interested: new Set([...Array(pieces).keys()]), announce: (p) => told.push(p.number) };
}

function setup(now: { t: number }) {
  const a = new TaskAnnouncements({ minReleaseMs: 2000, releaseServeFactor: 4, now: () => now.t });
  const kids = [child(8), child(8), child(8), child(8), child(8)];
  const removes = kids.map((k) => a.addChild(k, []));
  return { a, kids, close: () => (removes.forEach((r) => r()), a.close()) };
}

test('a fresh piece is told to one child, the children told the fewest first', () => {
  const now = { t: 10_000 };
  const { a, kids, close } = setup(now);
  for (let n = 0; n < 5; n++) a.stored(piece(n, now.t));
  assert.deepEqual(
    kids.map((k) => k.told),
    [[0], [1], [2], [3], [4]],
    'each child hears of a different piece',
  );
  close();
});

test('a fresh piece stays with its one child until the release time, which follows the serve time', () => {
  const now = { t: 10_000 };
  const { a, kids, close } = setup(now);
  a.stored(piece(0, now.t));
  a.served(0, 1000); // its first copy took 1 s to send: the release is 4 s from now
  now.t += 3000;
  a.releaseDue();
  assert.equal(kids.filter((k) => k.told.includes(0)).length, 1, 'not yet released at 3 s');
  now.t += 1500;
  a.releaseDue();
  assert.equal(kids.filter((k) => k.told.includes(0)).length, 5, 'released at 4.5 s');
  assert.ok(
    kids.every((k) => k.told.filter((n) => n === 0).length === 1),
    'nobody is told twice',
  );
  close();
});

test("after the release time, or once the seed's download is abandoned, every child hears of every piece", () => {
  const now = { t: 10_000 };
  const { a, kids, close } = setup(now);
  a.stored(piece(0, now.t));
  a.stored(piece(1, now.t));
  a.served(0, 100);
  a.served(1, 100);
  now.t += 2500;
  a.stored(piece(2, now.t));
  a.releaseDue();
  assert.ok(
    kids.every((k) => k.told.includes(0) && k.told.includes(1)),
    'old pieces released',
  );
  assert.equal(kids.filter((k) => k.told.includes(2)).length, 1, 'the fresh one is not');
  a.abandoned();
  assert.ok(kids.every((k) => k.told.includes(2)));
  close();
});

test('a child that joins late hears at once of pieces stored long ago, and only of pieces it wants', () => {
  const now = { t: 10_000 };
  const a = new TaskAnnouncements({ minReleaseMs: 2000, releaseServeFactor: 4, now: () => now.t });
  const late: ChildStream & { told: number[] } = {
    told: [],
    interested: new Set([1, 2]),
    announce: (p) => late.told.push(p.number),
  };
  const remove = a.addChild(late, [piece(0, 1000), piece(1, 1000), piece(2, now.t)]);
  assert.deepEqual(
    late.told.sort(),
    [1, 2],
    'piece 2 is fresh but nobody else listens: it goes to this child',
  );
  remove();
  a.close();
});

test('SuperSeeding keeps a task while its run is active or a child listens', () => {
  const s = new SuperSeeding({ minReleaseMs: 2000, releaseServeFactor: 4 });
  const first = s.forTask('t');
  assert.equal(first.created, true);
  const kid = child(2);
  const remove = s.addChild('t', kid, []);
  s.runEnded('t');
  assert.equal(s.forTask('t').created, false, 'a child still listens after the run ended');
  remove();
  assert.equal(s.forTask('t').created, true, 'disposed once the last child left: a new one is made');
  s.runEnded('t');
});

test('a release is never taken back when the release time grows with the measured serve time', () => {
  const now = { t: 10_000 };
  const { a, kids, close } = setup(now);
  a.stored(piece(0, now.t));
  a.served(0, 400); // the release is its 2 s floor
  now.t += 2500;
  a.releaseDue();
  assert.equal(kids.filter((k) => k.told.includes(0)).length, 5, 'released after 2 s');
  assert.equal(a.priority(0), 1);
  a.served(0, 12_000); // another copy was slow: the release time is now 48 s
  assert.equal(a.priority(0), 1, 'still released: its requests do not outrank a fresh piece');
  a.stored(piece(1, now.t));
  assert.equal(a.priority(1), 0, 'a fresh piece ranks first');
  close();
});

test('a piece never sent ranks first until its first copy left, also once the seed’s download finished', () => {
  const now = { t: 10_000 };
  const { a, close } = setup(now);
  a.stored(piece(0, now.t));
  a.stored(piece(1, now.t)); // the last piece: the seed's download finishes with it
  assert.equal(a.priority(1), 0);
  a.served(1, 300);
  assert.equal(a.priority(1), 1);
  assert.equal(a.priority(0), 0);
  close();
});

test('before any piece was served the release waits up to unmeasuredReleaseMs, then follows the serve time', () => {
  const now = { t: 10_000 };
  const a = new TaskAnnouncements({
    minReleaseMs: 2000,
    releaseServeFactor: 4,
    unmeasuredReleaseMs: 10_000,
    now: () => now.t,
  });
  const kids = [child(4), child(4), child(4)];
  const removes = kids.map((k) => a.addChild(k, []));
  const told = () => kids.filter((k) => k.told.includes(0)).length;
  a.stored(piece(0, now.t));
  now.t += 5000;
  a.releaseDue();
  assert.equal(told(), 1, 'not released at 5 s: nothing measured yet');
  a.served(0, 500); // measured: the release is max(2 s, 4 × 0.5 s) after this first copy
  now.t += 2000;
  a.releaseDue();
  assert.equal(told(), 3);
  removes.forEach((r) => r());
  a.close();
});

test('the release clock starts when the first copy left the seed; until then one more child per release time', () => {
  const now = { t: 10_000 };
  const { a, kids, close } = setup(now);
  const told = () => kids.filter((k) => k.told.includes(0)).length;
  a.stored(piece(0, now.t)); // release: the 2 s floor
  now.t += 2500;
  a.releaseDue();
  assert.equal(told(), 2, 'nobody took it after one release time: a second child hears of it');
  now.t += 2000;
  a.releaseDue();
  assert.equal(told(), 3);
  a.served(0, 300);
  now.t += 1900;
  a.releaseDue();
  assert.equal(told(), 3, 'its first copy left 1.9 s ago: not released yet, and no more children');
  now.t += 200;
  a.releaseDue();
  assert.equal(told(), 5, 'released a release time after its first copy');
  close();
});

test('a piece no copy of which left the seed ranks first, released or not; a second copy never does', () => {
  const now = { t: 10_000 };
  const { a, kids, close } = setup(now);
  a.stored(piece(0, now.t));
  a.stored(piece(1, now.t));
  assert.equal(a.priority(0), 0);
  a.served(0, 300);
  assert.equal(a.priority(0), 1, 'its first copy left: a second one waits behind fresh pieces');
  now.t += 8500; // piece 1: four release times unasked — told to everyone, and still fresh
  a.releaseDue();
  assert.equal(kids.filter((k) => k.told.includes(1)).length, 5);
  assert.equal(a.priority(1), 0);
  close();
});
