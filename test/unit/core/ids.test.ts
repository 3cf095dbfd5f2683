import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hostId, peerId, pieceId } from '../../../src/core/ids.js';
import { loadClientVectors } from './client-vectors.js';

const vectors = loadClientVectors();

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

test('host_id vectors', () => {
  for (const v of vectors.host_id.vectors) {
    assert.equal(hostId(v.ip, v.hostname, v.is_seed_peer), v.expected);
  }
});

test('host_id Go cross-check cases (same format, empty parts kept)', () => {
  const line: string = vectors.host_id.go_cross_check;
  const cases: Array<[string, string, boolean, string]> = [
    ['127.0.0.1', 'foo', false, '127.0.0.1-foo'],
    ['127.0.0.1', 'foo', true, '127.0.0.1-foo-seed'],
    ['', 'foo', true, '-foo-seed'],
    ['127.0.0.1', '', true, '127.0.0.1--seed'],
  ];
  for (const [ip, hostname, seed, want] of cases) {
    assert.ok(line.includes(`'${want}'`), `cross-check line names ${want}`);
    assert.equal(hostId(ip, hostname, seed), want);
  }
});

test('peer_id vectors', () => {
  for (const v of vectors.peer_id.vectors) {
    const id = peerId(v.ip, v.hostname, v.is_seed_peer);
    const prefix = `${v.ip}-${v.hostname}-`;
    // The vector's assertion is prose; check it names what we check.
    assert.ok(v.assertion.includes(`starts_with('${prefix}')`));
    assert.ok(id.startsWith(prefix));
    assert.equal(v.assertion.includes("ends_with('-seed')"), v.is_seed_peer);
    assert.equal(id.endsWith('-seed'), v.is_seed_peer);
    const uuid = id.slice(prefix.length, v.is_seed_peer ? -'-seed'.length : undefined);
    assert.match(uuid, UUID_V4);
  }
});

test('peer ids are fresh per call; a fixed uuid gives a fixed id', () => {
  assert.notEqual(peerId('10.0.0.1', 'h'), peerId('10.0.0.1', 'h'));
  const uuid = '123e4567-e89b-42d3-a456-426614174000';
  assert.equal(peerId('10.0.0.1', 'h', false, uuid), `10.0.0.1-h-${uuid}`);
  assert.equal(peerId('10.0.0.1', 'h', true, uuid), `10.0.0.1-h-${uuid}-seed`);
});

test('piece id is {task_id}-{number}', () => {
  assert.equal(pieceId('abc', 0), 'abc-0');
  assert.equal(pieceId('5844f27a', 4294967295), '5844f27a-4294967295');
});
