// The token bucket behind upload.bandwidthLimit: its accounting, with an injected clock (no wall-time asserts).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RateLimiter } from '../../../src/daemon/rate-limiter.js';

function fakeClock() {
  let t = 0;
  const sleeps: number[] = [];
  return {
    now: () => t,
    sleep: async (ms: number) => {
      sleeps.push(ms);
      t += ms;
    },
    sleeps,
    advance: (ms: number) => (t += ms),
  };
}

test('bytes beyond the burst wait exactly deficit / rate', async () => {
  const c = fakeClock();
  const rate = 10_000_000;
  const l = new RateLimiter(rate, { now: c.now, sleep: c.sleep });
  for (let i = 0; i < 30; i++) await l.acquire(1_000_000);
  const waited = c.sleeps.reduce((a, b) => a + b, 0);
  // 30 MB at 10 MB/s with a 10 MB burst: 2 s of waiting.
  assert.ok(Math.abs(waited - 2000) < 1, `waited ${waited} ms`);
});

test('concurrent transfers share the rate and are served in order', async () => {
  const c = fakeClock();
  const l = new RateLimiter(1000, { burst: 0, now: c.now, sleep: c.sleep });
  const order: string[] = [];
  await Promise.all([
    l.acquire(500).then(() => order.push('a')),
    l.acquire(500).then(() => order.push('b')),
    l.acquire(1000).then(() => order.push('c')),
  ]);
  assert.deepEqual(order, ['a', 'b', 'c']);
  assert.ok(Math.abs(c.now() - 2000) < 1, `took ${c.now()} ms for 2000 bytes at 1000 B/s`);
});

test('idle time refills up to the burst only', async () => {
  const c = fakeClock();
  const l = new RateLimiter(1000, { burst: 1000, now: c.now, sleep: c.sleep });
  await l.acquire(1000);
  c.advance(10_000);
  await l.acquire(1000);
  assert.equal(c.sleeps.length, 0);
  await l.acquire(500);
  assert.deepEqual(c.sleeps, [500]);
});

test('0 means unlimited', async () => {
  const l = new RateLimiter(0);
  assert.equal(l.unlimited, true);
  await l.acquire(1e12);
});
