// Source pieces in flight (src/daemon/source-flights.ts): a piece leaves the busy count once its remaining bytes
// will arrive within about one time to first byte at the rate it arrives at, so the next request overlaps only its
// tail. The clock is injected.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SourceFlights } from '../../../src/daemon/source-flights.js';

function clock(): { now: () => number; advance: (ms: number) => void } {
  let t = 1000;
  return { now: () => t, advance: (ms) => (t += ms) };
}

const KiB = 1024;

test('a piece is busy until its remaining bytes arrive within 1.5 times the time to first byte (+5 ms)', () => {
  const c = clock();
  let tails = 0;
  const flights = new SourceFlights({ onTail: () => tails++, now: c.now });
  const f = flights.begin();
  assert.equal(flights.busy, 1);
  c.advance(20); // time to first byte 20 ms → lead 1.5 × 20 + 5 = 35 ms
  f.bodyBegan(1000 * KiB);
  assert.equal(flights.leadMs(), 35);
  // 1 KiB per ms: the tail is the last 35 KiB.
  c.advance(900);
  f.progress(900 * KiB);
  assert.equal(flights.busy, 1, '100 KiB left: 100 ms at this rate');
  c.advance(64);
  f.progress(964 * KiB);
  assert.equal(flights.busy, 1, '36 KiB left');
  assert.equal(tails, 0);
  c.advance(2);
  f.progress(966 * KiB);
  assert.equal(flights.busy, 0, '34 KiB left: in its tail');
  assert.equal(flights.size, 1, 'still in flight');
  assert.equal(tails, 1, 'the caller is told once');
  f.progress(1000 * KiB);
  assert.equal(tails, 1);
  f.end();
  assert.equal(flights.size, 0);
});

test('the rate of the first eighth of a body is too young to judge; a whole body has arrived is its tail', () => {
  const c = clock();
  const flights = new SourceFlights({ onTail: () => undefined, now: c.now });
  const f = flights.begin();
  f.bodyBegan(8 * KiB);
  f.progress(KiB - 1); // instant, but under an eighth
  assert.equal(flights.busy, 1);
  const small = flights.begin();
  small.bodyBegan(100);
  c.advance(10_000);
  small.progress(100);
  assert.equal(flights.busy, 1, 'the small body is in its tail; the other is not');
});

test('the lead follows the measured time to first byte (a running average)', () => {
  const c = clock();
  const flights = new SourceFlights({ onTail: () => undefined, now: c.now });
  assert.equal(flights.leadMs(), 5, 'nothing measured: 5 ms');
  const a = flights.begin();
  c.advance(100);
  a.bodyBegan(KiB);
  assert.equal(flights.leadMs(), 155);
  a.bodyBegan(KiB); // a retried body: the wait is not measured again
  assert.equal(flights.leadMs(), 155);
  const b = flights.begin();
  c.advance(10);
  b.bodyBegan(KiB);
  // 100 + 0.3 × (10 − 100) = 73 → 1.5 × 73 + 5
  assert.equal(flights.leadMs(), 1.5 * 73 + 5);
});

test('the time to first byte counts from the request, not from when the piece was started', () => {
  const c = clock();
  const flights = new SourceFlights({ onTail: () => undefined, now: c.now });
  const f = flights.begin();
  c.advance(1000); // held by download.backToSourceBandwidthLimit
  f.requested();
  c.advance(20);
  f.bodyBegan(KiB);
  assert.equal(flights.leadMs(), 35);
});
