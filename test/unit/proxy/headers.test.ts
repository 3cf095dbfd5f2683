// The X-Dragonfly-* request headers as upstream reads them, and the hop-by-hop headers a proxy drops.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEFAULT_PRIORITY,
  appendVia,
  hasVia,
  endToEnd,
  enableTaskIdBasedBlobDigest,
  filteredQueryParams,
  forceHardLink,
  pieceLengthHeader,
  prefetchHeader,
  priority,
  requestHeaderMap,
  schedulingPolicy,
  single,
  useP2P,
} from '../../../src/proxy/headers.js';

describe('X-Dragonfly-* request headers', () => {
  test('priority: an i32 as upstream parses it, else LEVEL6', () => {
    const p = (v?: string) => priority(v === undefined ? {} : { 'x-dragonfly-priority': v });
    assert.equal(DEFAULT_PRIORITY, 6);
    assert.equal(p(), 6);
    assert.equal(p('0'), 0);
    assert.equal(p('3'), 3);
    assert.equal(p(' 2 '), 2);
    assert.equal(p('-1'), -1);
    assert.equal(p('+4'), 4);
    for (const bad of ['', 'high', '3.5', '1e2', '0x3', '3 4', '--1', '٣']) assert.equal(p(bad), 6, bad);
    // Beyond i32 (Rust's parse::<i32>() fails): the default, never a number the int32 encoder refuses.
    assert.equal(p('2147483647'), 2147483647);
    assert.equal(p('-2147483648'), -2147483648);
    for (const big of ['2147483648', '-2147483649', '99999999999', '9'.repeat(400)])
      assert.equal(p(big), 6, big);
  });

  test('a repeated header counts with its first value', () => {
    assert.equal(single({ 'x-a': ['1', '2'] } as never, 'x-a'), '1');
    assert.equal(priority({ 'x-dragonfly-priority': ['2', '5'] } as never), 2);
  });

  test('boolean headers: "true" in any case is true, anything else false, absence undefined', () => {
    assert.equal(useP2P({ 'x-dragonfly-use-p2p': 'TRUE' }), true);
    assert.equal(useP2P({ 'x-dragonfly-use-p2p': 'yes' }), false);
    assert.equal(useP2P({}), false);
    assert.equal(prefetchHeader({ 'x-dragonfly-prefetch': 'true' }), true);
    assert.equal(prefetchHeader({ 'x-dragonfly-prefetch': 'false' }), false);
    assert.equal(prefetchHeader({ 'x-dragonfly-prefetch': '1' }), false);
    assert.equal(prefetchHeader({}), undefined);
    assert.equal(forceHardLink({ 'x-dragonfly-force-hard-link': 'True' }), true);
    assert.equal(forceHardLink({}), false);
    const digest = 'x-dragonfly-enable-task-id-based-blob-digest';
    assert.equal(enableTaskIdBasedBlobDigest({}, true), true);
    assert.equal(enableTaskIdBasedBlobDigest({ [digest]: 'false' }, true), false);
    assert.equal(enableTaskIdBasedBlobDigest({ [digest]: 'true' }, false), true);
  });

  test("scheduling policy: auto or always in any case, else the rule's (upstream logs a bad value and goes on)", () => {
    const h = 'x-dragonfly-scheduling-policy';
    assert.equal(schedulingPolicy({ [h]: 'ALWAYS' }, 'auto'), 'always');
    assert.equal(schedulingPolicy({ [h]: ' Auto ' }, 'always'), 'auto');
    assert.equal(schedulingPolicy({ [h]: 'sometimes' }, 'always'), 'always');
    assert.equal(schedulingPolicy({ [h]: 'é' }, 'auto'), 'auto');
    assert.equal(schedulingPolicy({}, 'always'), 'always');
    assert.equal(schedulingPolicy({}, 'auto'), 'auto');
  });

  test("filtered query params: the header, split on commas and trimmed, else a copy of the rule's", () => {
    const h = 'x-dragonfly-filtered-query-params';
    assert.deepEqual(filteredQueryParams({ [h]: 'Signature, Expires ,ns' }, ['x']), [
      'Signature',
      'Expires',
      'ns',
    ]);
    assert.deepEqual(filteredQueryParams({ [h]: 'one' }, []), ['one']);
    const fallback = ['a', 'b'];
    const got = filteredQueryParams({}, fallback);
    assert.deepEqual(got, fallback);
    got.push('c');
    assert.deepEqual(fallback, ['a', 'b'], 'the rule is not changed through the result');
  });

  test('piece length: a byte size; a bad value throws naming the header', () => {
    const h = 'x-dragonfly-piece-length';
    assert.equal(pieceLengthHeader({}), undefined);
    assert.equal(pieceLengthHeader({ [h]: '4mib' }), 4 * 1024 * 1024);
    assert.equal(pieceLengthHeader({ [h]: '8MiB' }), 8 * 1024 * 1024);
    assert.equal(pieceLengthHeader({ [h]: ' 16777216 ' }), 16 * 1024 * 1024);
    assert.equal(pieceLengthHeader({ [h]: '4MB' }), 4_000_000);
    for (const bad of ['', 'big', '-4MiB', '4 parsecs', '1e400']) {
      assert.throws(() => pieceLengthHeader({ [h]: bad }), /X-Dragonfly-Piece-Length/, bad);
    }
  });
});

describe('hop-by-hop headers', () => {
  test('the fixed list is dropped, end-to-end headers are kept', () => {
    const out = endToEnd({
      connection: 'keep-alive',
      'keep-alive': 'timeout=5',
      'proxy-connection': 'keep-alive',
      'proxy-authenticate': 'Basic',
      'proxy-authorization': 'Basic YTpi',
      te: 'trailers',
      trailer: 'x-sum',
      'transfer-encoding': 'chunked',
      upgrade: 'h2c',
      authorization: 'Bearer t',
      'content-type': 'text/plain',
      'x-other': 'kept',
    });
    assert.deepEqual(out, { authorization: 'Bearer t', 'content-type': 'text/plain', 'x-other': 'kept' });
  });

  test('headers named in Connection are dropped too, in any case and from repeated Connection headers', () => {
    assert.deepEqual(
      endToEnd({ connection: 'close, X-Secret ,x-other', 'x-secret': '1', 'x-other': '2', 'x-kept': '3' }),
      {
        'x-kept': '3',
      },
    );
    assert.deepEqual(endToEnd({ connection: ['X-A', 'x-b'], 'x-a': '1', 'x-b': '2', 'x-c': '3' }), {
      'x-c': '3',
    });
  });

  test('values become strings; arrays (set-cookie) stay arrays; undefined is skipped', () => {
    assert.deepEqual(endToEnd({ 'content-length': 5, 'set-cookie': ['a=1', 'b=2'], 'x-none': undefined }), {
      'content-length': '5',
      'set-cookie': ['a=1', 'b=2'],
    });
  });

  test('requestHeaderMap: end-to-end headers without Host, repeated values joined', () => {
    assert.deepEqual(
      requestHeaderMap({
        host: 'registry.example',
        connection: 'keep-alive, x-hop',
        'x-hop': 'gone',
        'proxy-authorization': 'Basic YTpi',
        authorization: 'Bearer t',
        range: 'bytes=0-9',
        accept: ['a/b', 'c/d'] as never,
      }),
      { authorization: 'Bearer t', range: 'bytes=0-9', accept: 'a/b, c/d' },
    );
  });
});

describe('Via', () => {
  test('appendVia adds an entry after the existing ones', () => {
    assert.equal(appendVia(undefined, '1.1 me'), '1.1 me');
    assert.equal(appendVia('', '1.1 me'), '1.1 me');
    assert.equal(appendVia('1.0 a', '1.1 me'), '1.0 a, 1.1 me');
    assert.equal(appendVia(['1.0 a', '1.1 b'], '1.1 me'), '1.0 a, 1.1 b, 1.1 me');
  });

  test('hasVia finds a whole entry only', () => {
    assert.equal(hasVia({ via: '1.0 a, 1.1 me' }, '1.1 me'), true);
    assert.equal(hasVia({ via: '1.1 me' }, '1.1 me'), true);
    assert.equal(hasVia({ via: '1.1 me2' }, '1.1 me'), false);
    assert.equal(hasVia({ via: '1.1 me-too, 1.1 mex' }, '1.1 me'), false);
    assert.equal(hasVia({}, '1.1 me'), false);
  });
});
