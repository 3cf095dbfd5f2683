import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UploadBusy, UploadSlots } from '../../../src/vortex/upload-slots.js';

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

test('at most `slots` bodies at once; the rest wait and go in arrival order', async () => {
  const slots = new UploadSlots({ slots: 2 });
  const order: number[] = [];
  const releases: Array<() => void> = [];
  for (const n of [0, 1, 2, 3]) {
    void slots.acquire('t', n, 4).then((release) => {
      order.push(n);
      releases.push(release);
    });
  }
  await tick();
  assert.deepEqual(order, [0, 1]);
  assert.equal(slots.queued, 2);
  releases[0]!();
  releases[0]!(); // a second call is a no-op
  await tick();
  assert.deepEqual(order, [0, 1, 2]);
  assert.equal(slots.inUse, 2);
  releases[1]!();
  await tick();
  assert.deepEqual(order, [0, 1, 2, 3]);
});

test('waiting requests go by priority at the moment a slot frees, arrival order within a rank', async () => {
  const urgent = new Set<number>([3]);
  const slots = new UploadSlots({ slots: 1, priority: (_t, n) => (urgent.has(n) ? 0 : 1) });
  const order: number[] = [];
  let release: () => void = () => undefined;
  for (const n of [0, 1, 2, 3, 4]) {
    void slots.acquire('t', n, 4).then((r) => {
      order.push(n);
      release = r;
    });
  }
  await tick();
  urgent.add(4); // becomes urgent while waiting
  urgent.delete(3);
  release();
  await tick();
  release();
  await tick();
  assert.deepEqual(order, [0, 4, 1]);
});

test('a request whose child goes away gives its place up without taking a slot', async () => {
  const slots = new UploadSlots({ slots: 1 });
  const first = await slots.acquire('t', 0, 4);
  const gone = new AbortController();
  const waiting = slots.acquire('t', 1, 4, gone.signal);
  gone.abort(new Error('closed'));
  await assert.rejects(waiting, /closed/);
  assert.equal(slots.queued, 0);
  first();
  assert.equal(slots.inUse, 0);
});

test('the slot count can follow the piece about to go (a slow uplink sends one at a time)', async () => {
  let rate = 1; // pieces per second the uplink carries
  const slots = new UploadSlots({ slots: (length) => (rate * 4) / length });
  const order: number[] = [];
  const releases: Array<() => void> = [];
  for (const n of [0, 1, 2]) {
    void slots.acquire('t', n, 4).then((r) => {
      order.push(n);
      releases.push(r);
    });
  }
  await tick();
  assert.deepEqual(order, [0], 'one at a time');
  rate = 3;
  releases[0]!();
  await tick();
  assert.deepEqual(order, [0, 1, 2], 'a faster uplink: more at once');
});

test('beyond maxWaiting a request is refused at once as busy, unless the priority ranks it first', async () => {
  const urgent = new Set<number>([9]);
  const slots = new UploadSlots({ slots: 1, maxWaiting: 2, priority: (_t, n) => (urgent.has(n) ? 0 : 1) });
  const release = await slots.acquire('t', 0, 4);
  const waiting = [slots.acquire('t', 1, 4), slots.acquire('t', 2, 4)];
  assert.equal(slots.queued, 2);
  await assert.rejects(slots.acquire('t', 3, 4), (e: unknown) => {
    assert.ok(e instanceof UploadBusy);
    assert.match((e as Error).message, /^busy: 2 requests are waiting for an upload slot/);
    return true;
  });
  assert.equal(slots.queued, 2, 'the refused request does not wait');
  // A piece only one child has heard of (rank 0 of a seed's priority) waits even past the limit, and goes first.
  const first = slots.acquire('t', 9, 4);
  assert.equal(slots.queued, 3);
  release();
  (await first)();
  for (const w of waiting) (await w)();
  assert.equal(slots.inUse, 0);
});

test('a request let in because it ranked first, whose rank fell while it waited, is refused as busy when a slot frees', async () => {
  // A seed with queueLimit 0: fresh pieces (rank 0) wait, the others are refused at once.
  const fresh = new Set<number>([5, 6, 7]);
  const slots = new UploadSlots({ slots: 1, maxWaiting: 0, priority: (_t, n) => (fresh.has(n) ? 0 : 1) });
  const release = await slots.acquire('t', 0, 4);
  const five = slots.acquire('t', 5, 4);
  const six = slots.acquire('t', 6, 4);
  assert.equal(slots.queued, 2, 'both fresh: both wait');
  // Piece 5's first copy left for another child meanwhile: it is no longer fresh here, and a later fresh piece
  // arrives.
  fresh.delete(5);
  const seven = slots.acquire('t', 7, 4);
  release();
  await assert.rejects(five, (e: unknown) => e instanceof UploadBusy);
  const releaseSix = await six;
  assert.equal(slots.queued, 1, 'piece 7 waits; piece 5 does not');
  releaseSix();
  (await seven)();
  assert.equal(slots.inUse, 0);
});

test('without maxWaiting nothing is refused', async () => {
  const slots = new UploadSlots({ slots: 1 });
  const release = await slots.acquire('t', 0, 4);
  const waiting = Array.from({ length: 50 }, (_, n) => slots.acquire('t', n + 1, 4));
  assert.equal(slots.queued, 50);
  release();
  for (const w of waiting) (await w)();
});
