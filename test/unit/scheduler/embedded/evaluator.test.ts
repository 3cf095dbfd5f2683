import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  bandwidthDurationScore,
  concurrencyScore,
  evaluateParent,
  evaluateParents,
  hostTypeScore,
  idcAffinityScore,
  isBadParent,
  isSlow,
  loadQualityScore,
  locationAffinityScore,
  peakBandwidthUsageScore,
} from '../../../../src/scheduler/embedded/evaluator.js';
import { Resources } from '../../../../src/scheduler/embedded/resources.js';
import { host, peer, task } from './fixtures.js';

const GBIT = 1_000_000_000;
const idle = { maxTxBandwidth: GBIT, txBandwidth: 0, uploadContentLength: 0, concurrentUploadPieceCount: 0 };

test('load quality: an idle host with known bandwidth scores 1, an unknown bandwidth 0', () => {
  assert.equal(loadQualityScore(idle), 1);
  assert.equal(loadQualityScore({ ...idle, maxTxBandwidth: 0 }), 0);
});

test('peak bandwidth usage', () => {
  assert.equal(peakBandwidthUsageScore({ ...idle, txBandwidth: GBIT / 4 }), 0.75);
  assert.equal(peakBandwidthUsageScore({ ...idle, txBandwidth: 2 * GBIT }), 0);
});

test('bandwidth duration: bytes queued against 60s of bandwidth', () => {
  // 1 Gbit/s × 60s = 7.5e9 bytes; half of it queued → 0.5.
  assert.equal(bandwidthDurationScore({ ...idle, uploadContentLength: 3.75e9 }), 0.5);
  assert.equal(bandwidthDurationScore({ ...idle, uploadContentLength: 1e10 }), 0);
});

test('concurrency: N = M / 16MiB / 8', () => {
  const n = GBIT / (16 * 1024 * 1024) / 8; // ≈ 7.45
  assert.equal(concurrencyScore({ ...idle, concurrentUploadPieceCount: 7 }), 1);
  assert.ok(Math.abs(concurrencyScore({ ...idle, concurrentUploadPieceCount: 16 }) - n / 16) < 1e-12);
  // A host too slow for even one 16 MiB piece per second scores 0.
  assert.equal(concurrencyScore({ ...idle, maxTxBandwidth: 100_000_000 }), 0);
});

test('IDC and location affinity', () => {
  assert.equal(idcAffinityScore('IDC-1', 'idc-1'), 1);
  assert.equal(idcAffinityScore('', ''), 0);
  assert.equal(idcAffinityScore('a', 'b'), 0);
  assert.equal(locationAffinityScore('cn|hz|a', 'CN|HZ|A'), 1);
  assert.equal(locationAffinityScore('cn|hz|a', 'cn|hz|b'), 0.4);
  assert.equal(locationAffinityScore('cn|hz', 'us|hz'), 0);
  assert.equal(locationAffinityScore('a|b|c|d|e|f', 'a|b|c|d|e|g'), 1);
  assert.equal(locationAffinityScore('', 'a'), 0);
});

test('host type: seeds first while downloading, normal peers 0.5', () => {
  assert.equal(hostTypeScore({ state: 'Running', host: { type: 1 } }), 1);
  assert.equal(hostTypeScore({ state: 'Succeeded', host: { type: 1 } }), 0);
  assert.equal(hostTypeScore({ state: 'Succeeded', host: { type: 0 } }), 0.5);
});

test('bad parents: not ready states, and slow last pieces', () => {
  for (const state of ['Pending', 'ReceivedNormal', 'ReceivedEmpty', 'Failed', 'Leave'] as const) {
    assert.equal(isBadParent({ state, pieceCosts: [] }), true, state);
  }
  assert.equal(isBadParent({ state: 'Running', pieceCosts: [] }), false);
  assert.equal(isSlow([10]), false);
  assert.equal(isSlow([10, 10, 200]), false);
  assert.equal(isSlow([10, 10, 201]), true);
  // A full window uses mean + 3σ.
  const full = Array.from<unknown, number>({ length: 2000 }, (_, i) => (i % 2 === 0 ? 9 : 11));
  full[1999] = 14;
  assert.equal(isSlow(full), true);
  full[1999] = 12.9;
  assert.equal(isSlow(full), false);
});

test('the score weighs load 0.6, IDC 0.2, location 0.1, host type 0.1; parents sort best first', () => {
  const r = new Resources();
  const t = task();
  const child = peer(r, 'child', t, host('c', { idc: 'x', location: 'a|b' }), 'ReceivedNormal');
  const near = peer(r, 'near', t, host('n', { idc: 'x', location: 'a|b', maxTx: GBIT }), 'Succeeded');
  const far = peer(r, 'far', t, host('f', { maxTx: GBIT }), 'Succeeded');
  const unknown = peer(r, 'unknown', t, host('u'), 'Succeeded');
  assert.ok(Math.abs(evaluateParent(near, child) - (0.6 + 0.2 + 0.1 + 0.05)) < 1e-12);
  assert.ok(Math.abs(evaluateParent(far, child) - (0.6 + 0.05)) < 1e-12);
  assert.ok(Math.abs(evaluateParent(unknown, child) - 0.05) < 1e-12);
  assert.deepEqual(
    evaluateParents([unknown, far, near], child).map((p) => p.id),
    ['near', 'far', 'unknown'],
  );
});
