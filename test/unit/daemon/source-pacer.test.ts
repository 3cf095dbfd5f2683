// The back-to-source pacer (src/daemon/source-pacer.ts): one more source connection only while the previous step
// raised the throughput, turns around when it falls, one fewer when it held above the initial count, stays within
// [1, max]. The clock is injected.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SourcePacer } from '../../../src/daemon/source-pacer.js';

/** A clock the test moves by hand. */
function clock(): { now: () => number; advance: (ms: number) => void } {
  let t = 1000;
  return { now: () => t, advance: (ms) => (t += ms) };
}

/**
 * One phase at the pacer's current limit: `limit + 1` pieces of `bytes` finishing over `ms` in total (the
 * pacer decides on the last one).
 */
function phase(pacer: SourcePacer, c: ReturnType<typeof clock>, bytes: number, ms: number): void {
  const pieces = pacer.limit + 1;
  for (let i = 0; i < pieces; i++) {
    c.advance(ms / pieces);
    pacer.finished(bytes);
  }
}

test('one more connection after each phase whose throughput rose by more than the gain', () => {
  const c = clock();
  const pacer = new SourcePacer({ initial: 1, max: 8, gain: 1.15, now: c.now });
  assert.equal(pacer.limit, 1);
  // The limit does not move before `limit + 1` pieces finished.
  c.advance(10);
  pacer.finished(1000);
  assert.equal(pacer.limit, 1);
  c.advance(10);
  pacer.finished(1000); // 2000 bytes in 20 ms: the first rate, better than none
  assert.equal(pacer.limit, 2);
  // Each phase: every connection delivers 1000 bytes per 20 ms, so the rate rises with the connections.
  phase(pacer, c, 1000, 20); // 3 pieces: 150 B/ms > 100 × 1.15
  assert.equal(pacer.limit, 3);
  phase(pacer, c, 1000, 20); // 4 pieces: 200 B/ms > 150 × 1.15
  assert.equal(pacer.limit, 4);
});

test('a step up that did not change the throughput is taken back, down to the initial count; a fall turns around', () => {
  const c = clock();
  const pacer = new SourcePacer({ initial: 1, max: 8, now: c.now });
  phase(pacer, c, 1000, 20); // 100 B/ms
  assert.equal(pacer.limit, 2);
  phase(pacer, c, 1000, 28); // 3000 B in 28 ms ≈ 107 B/ms: not 15% better (the link is the bottleneck)
  assert.equal(pacer.limit, 1, 'no gain: the step is taken back');
  phase(pacer, c, 1000, 20); // 2000 B in 20 ms = 100 B/ms at 1: the same
  assert.equal(pacer.limit, 1, 'the same rate at the initial count: stays');
  phase(pacer, c, 1000, 40); // 50 B/ms: the origin got slower per connection
  assert.equal(pacer.limit, 2, 'fell: turned around (one step up)');
  phase(pacer, c, 1000, 30); // 3000 B in 30 ms = 100 B/ms: better → keeps going up
  assert.equal(pacer.limit, 3);
  phase(pacer, c, 1000, 40); // 4000 B in 40 ms = 100 B/ms: the same → one fewer
  assert.equal(pacer.limit, 2);
  phase(pacer, c, 1000, 30); // 100 B/ms: held → one fewer, to the initial count
  assert.equal(pacer.limit, 1);
  phase(pacer, c, 1000, 20);
  assert.equal(pacer.limit, 1);
});

test('never below the initial count for a throughput that only held', () => {
  const c = clock();
  const pacer = new SourcePacer({ initial: 2, max: 8, now: c.now });
  phase(pacer, c, 1000, 30); // 100 B/ms: the first measure → 3
  phase(pacer, c, 1000, 40); // 100 B/ms: no gain → back to 2
  assert.equal(pacer.limit, 2);
  phase(pacer, c, 1000, 30);
  phase(pacer, c, 1000, 30);
  assert.equal(pacer.limit, 2, 'held at 2: stays (one connection waits for each piece to be stored)');
});

test('never above max, even when every step helps, and initial is clamped into [1, max]', () => {
  const c = clock();
  const pacer = new SourcePacer({ initial: 1, max: 3, now: c.now });
  let bytes = 1000;
  for (let i = 0; i < 10; i++) {
    phase(pacer, c, bytes, 10);
    bytes *= 2; // always twice as fast
    assert.ok(pacer.limit <= 3, `limit ${pacer.limit}`);
  }
  assert.equal(pacer.limit, 3);
  assert.equal(new SourcePacer({ initial: 10, max: 4, now: c.now }).limit, 4);
  assert.equal(new SourcePacer({ initial: 0, max: 4, now: c.now }).limit, 1);
  assert.equal(new SourcePacer({ initial: 2, max: 0, now: c.now }).limit, 1, 'max below 1 is 1');
});

test('a phase time is measured from the previous decision, not from the start', () => {
  const c = clock();
  const pacer = new SourcePacer({ initial: 1, max: 8, now: c.now });
  c.advance(5000); // a long wait before the first pieces (connection setup) counts in the first phase only
  phase(pacer, c, 1000, 20); // 2000 B in 5020 ms
  assert.equal(pacer.limit, 2);
  phase(pacer, c, 1000, 30); // 3000 B in 30 ms: far better than the first phase
  assert.equal(pacer.limit, 3);
});

test('the first phase starts with the first source piece: the wait before it does not make the next look faster', () => {
  const c = clock();
  const pacer = new SourcePacer({ initial: 2, max: 8, now: c.now });
  c.advance(5000); // registration and the scheduler's answer
  pacer.started();
  phase(pacer, c, 1000, 30); // 3000 B in 30 ms = 100 B/ms
  assert.equal(pacer.limit, 3, 'the first measure: one more, to see');
  pacer.started(); // later starts do not move the phase clock
  phase(pacer, c, 1000, 40); // 4000 B in 40 ms = 100 B/ms: the link is full
  assert.equal(pacer.limit, 2, 'no gain: taken back (it went up to 4 when the wait counted)');
});
