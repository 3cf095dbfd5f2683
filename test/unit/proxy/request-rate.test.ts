// proxy.server.requestRateLimit: a token bucket of one second's worth, refused at once when empty; 0 = unlimited.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { RequestRate } from '../../../src/proxy/request-rate.js';

function clock(start = 1000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

const take = (r: RequestRate, n: number) =>
  Array.from({ length: n }, () => r.tryAcquire()).filter(Boolean).length;

describe('RequestRate', () => {
  test('a burst of one second’s worth passes, the next request is refused', () => {
    const c = clock();
    const r = new RequestRate(5, c.now);
    assert.equal(take(r, 5), 5);
    assert.equal(r.tryAcquire(), false);
  });

  test('tokens refill with time, never beyond the burst', () => {
    const c = clock();
    const r = new RequestRate(10, c.now);
    assert.equal(take(r, 10), 10);
    c.advance(99);
    assert.equal(r.tryAcquire(), false, '0.99 of a token');
    c.advance(1);
    assert.equal(r.tryAcquire(), true, 'one token after 100 ms');
    assert.equal(r.tryAcquire(), false);
    c.advance(550);
    assert.equal(take(r, 10), 5);
    c.advance(60_000);
    assert.equal(take(r, 100), 10, 'an idle minute still gives one second of burst');
  });

  test('refused requests do not use up tokens', () => {
    const c = clock();
    const r = new RequestRate(2, c.now);
    assert.equal(take(r, 2), 2);
    assert.equal(take(r, 50), 0);
    c.advance(500);
    assert.equal(take(r, 5), 1);
  });

  test('0 is unlimited', () => {
    const c = clock();
    const r = new RequestRate(0, c.now);
    assert.equal(take(r, 10_000), 10_000);
  });

  test('the default clock works', () => {
    const r = new RequestRate(3);
    assert.equal(take(r, 10), 3);
  });
});
