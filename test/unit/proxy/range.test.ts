// parseRange: one `bytes=` range against the task's length; several ranges or other units are left to the origin.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ifRangeMatches, parseRange } from '../../../src/proxy/range.js';

describe('parseRange', () => {
  test('no header is the whole content', () => {
    assert.deepEqual(parseRange(undefined, 100), { kind: 'none' });
  });

  test('bytes=a-b, clamped to the content', () => {
    assert.deepEqual(parseRange('bytes=0-9', 100), { kind: 'range', start: 0, length: 10 });
    assert.deepEqual(parseRange('bytes=10-10', 100), { kind: 'range', start: 10, length: 1 });
    assert.deepEqual(parseRange('bytes=90-1000', 100), { kind: 'range', start: 90, length: 10 });
    assert.deepEqual(parseRange(' Bytes = 5 - 6 ', 100), { kind: 'range', start: 5, length: 2 });
  });

  test('bytes=a- runs to the end', () => {
    assert.deepEqual(parseRange('bytes=0-', 100), { kind: 'range', start: 0, length: 100 });
    assert.deepEqual(parseRange('bytes=99-', 100), { kind: 'range', start: 99, length: 1 });
  });

  test('bytes=-n is the last n bytes, all of them when n exceeds the length', () => {
    assert.deepEqual(parseRange('bytes=-10', 100), { kind: 'range', start: 90, length: 10 });
    assert.deepEqual(parseRange('bytes=-100', 100), { kind: 'range', start: 0, length: 100 });
    assert.deepEqual(parseRange('bytes=-1000', 100), { kind: 'range', start: 0, length: 100 });
    assert.deepEqual(parseRange('bytes=-0', 100), { kind: 'unsatisfiable' });
  });

  test('several ranges or another unit are unsupported (forwarded as they are)', () => {
    assert.deepEqual(parseRange('bytes=0-1,5-6', 100), { kind: 'unsupported' });
    assert.deepEqual(parseRange('bytes=0-1, -5', 100), { kind: 'unsupported' });
    assert.deepEqual(parseRange('items=0-1', 100), { kind: 'unsupported' });
    assert.deepEqual(parseRange('0-1', 100), { kind: 'unsupported' });
  });

  test('garbage after bytes= and a > b are unsatisfiable, never a range', () => {
    for (const h of [
      'bytes=',
      'bytes=-',
      'bytes=abc',
      'bytes=1-2-3',
      'bytes=0x10-',
      'bytes=1.5-2',
      'bytes=5-1',
    ]) {
      assert.deepEqual(parseRange(h, 100), { kind: 'unsatisfiable' }, h);
    }
  });

  test('a start at or beyond the length is unsatisfiable', () => {
    assert.deepEqual(parseRange('bytes=100-', 100), { kind: 'unsatisfiable' });
    assert.deepEqual(parseRange('bytes=100-200', 100), { kind: 'unsatisfiable' });
    assert.deepEqual(parseRange('bytes=1000-', 100), { kind: 'unsatisfiable' });
  });

  test('an empty content satisfies no range', () => {
    assert.deepEqual(parseRange('bytes=0-', 0), { kind: 'unsatisfiable' });
    assert.deepEqual(parseRange('bytes=0-0', 0), { kind: 'unsatisfiable' });
    assert.deepEqual(parseRange('bytes=-5', 0), { kind: 'unsatisfiable' });
  });

  test('numbers beyond safe integers never make a wrong range', () => {
    const huge = '99999999999999999999999';
    assert.deepEqual(parseRange(`bytes=${huge}-`, 100), { kind: 'unsatisfiable' });
    assert.deepEqual(parseRange(`bytes=${huge}-${huge}`, 100), { kind: 'unsatisfiable' });
    assert.deepEqual(parseRange(`bytes=0-${huge}`, 100), { kind: 'range', start: 0, length: 100 });
    assert.deepEqual(parseRange(`bytes=-${huge}`, 100), { kind: 'range', start: 0, length: 100 });
    assert.deepEqual(parseRange(`bytes=${'9'.repeat(400)}-`, 100), { kind: 'unsatisfiable' });
    // The proxy asks with the largest safe length before the task's length is known.
    const max = Number.MAX_SAFE_INTEGER;
    assert.deepEqual(parseRange(`bytes=${max - 1}-`, max), { kind: 'range', start: max - 1, length: 1 });
    assert.deepEqual(parseRange(`bytes=${huge}-`, max), { kind: 'unsatisfiable' });
  });

  test('every answered range lies inside the content', () => {
    for (const total of [1, 2, 7, 100]) {
      for (let a = 0; a <= total + 1; a++) {
        for (let b = 0; b <= total + 1; b++) {
          for (const h of [`bytes=${a}-${b}`, `bytes=${a}-`, `bytes=-${b}`]) {
            const r = parseRange(h, total);
            if (r.kind !== 'range') continue;
            assert.ok(r.start >= 0 && r.length >= 1 && r.start + r.length <= total, `${h} of ${total}`);
          }
        }
      }
    }
  });
});

describe('ifRangeMatches', () => {
  const stored = { ETag: '"v1"', 'last-modified': 'Wed, 21 Oct 2026 07:28:00 GMT' };

  test('a strong entity tag equal to the stored ETag matches', () => {
    assert.equal(ifRangeMatches('"v1"', stored), true);
    assert.equal(ifRangeMatches('"v2"', stored), false);
    assert.equal(ifRangeMatches('W/"v1"', stored), false, 'a weak tag never matches');
    assert.equal(ifRangeMatches('"v1"', { etag: 'W/"v1"' }), false, 'nor does a weak stored tag');
    assert.equal(ifRangeMatches('"v1"', {}), false);
  });

  test('a date equal to the stored Last-Modified matches', () => {
    assert.equal(ifRangeMatches('Wed, 21 Oct 2026 07:28:00 GMT', stored), true);
    assert.equal(ifRangeMatches('Wed, 21 Oct 2026 07:28:01 GMT', stored), false);
    assert.equal(ifRangeMatches('Wed, 21 Oct 2026 07:28:00 GMT', { etag: '"v1"' }), false);
    assert.equal(ifRangeMatches('not a date', stored), false);
  });
});
