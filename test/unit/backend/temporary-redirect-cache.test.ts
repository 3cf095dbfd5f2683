import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TemporaryRedirectCache } from '../../../src/backend/temporary-redirect-cache.js';

describe('TemporaryRedirectCache', () => {
  it('keeps an entry for the TTL and drops it after', () => {
    let now = 0;
    const cache = new TemporaryRedirectCache({ ttlMs: 100, now: () => now });
    cache.set('a', 'b');
    now = 99;
    assert.equal(cache.get('a'), 'b');
    now = 100;
    assert.equal(cache.get('a'), undefined);
    assert.equal(cache.size, 0);
  });

  it('evicts the least recently used entry past its capacity', () => {
    const cache = new TemporaryRedirectCache({ ttlMs: 1000, capacity: 2, now: () => 0 });
    cache.set('a', '1');
    cache.set('b', '2');
    assert.equal(cache.get('a'), '1'); // a is now the most recent
    cache.set('c', '3');
    assert.equal(cache.get('b'), undefined);
    assert.equal(cache.get('a'), '1');
    assert.equal(cache.get('c'), '3');
  });

  it('renews an entry that is set again', () => {
    let now = 0;
    const cache = new TemporaryRedirectCache({ ttlMs: 100, now: () => now });
    cache.set('a', '1');
    now = 80;
    cache.set('a', '2');
    now = 150;
    assert.equal(cache.get('a'), '2');
  });
});
