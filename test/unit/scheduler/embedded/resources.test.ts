import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Resources } from '../../../../src/scheduler/embedded/resources.js';
import { host, peer, PIECE, task } from './fixtures.js';

test('peer FSM: allowed transitions and refused ones', () => {
  const r = new Resources();
  const t = task();
  const p = peer(r, 'p', t, host('h'));
  assert.throws(() => p.event('Download'), /inappropriate in current state Pending/);
  p.event('RegisterNormal');
  p.event('Download');
  p.event('DownloadBackToSource');
  assert.ok(t.backToSourcePeers.has('p'));
  p.event('DownloadFailed');
  assert.equal(t.backToSourcePeers.has('p'), false);
  assert.equal(t.peerFailedCount, 1);
  assert.throws(() => p.event('DownloadFailed'));
  p.event('Leave');
  assert.throws(() => p.event('Leave'));
});

test('task FSM as upstream: only Running can fail, Succeeded can start again', () => {
  const t = task();
  assert.throws(() => t.event('DownloadFailed'));
  t.event('Download');
  t.event('DownloadSucceeded');
  t.event('Download');
  assert.equal(t.state, 'Running');
});

test('size scope', () => {
  assert.equal(task('a', 0).sizeScope(), 3);
  assert.equal(task('a', 100).sizeScope(), 2);
  assert.equal(task('a', PIECE).sizeScope(), 1);
  assert.equal(task('a', 3 * PIECE).sizeScope(), 0);
  const t = task();
  t.contentLength = -1;
  assert.equal(t.sizeScope(), 4);
});

test('edges charge the parent host and release exactly that on delete, Succeeded and Leave', () => {
  const r = new Resources();
  const t = task('t', 10 * PIECE);
  const ha = host('a');
  const parent = peer(r, 'p', t, ha, 'Succeeded');
  const c1 = peer(r, 'c1', t, host('b'), 'ReceivedNormal');
  const c2 = peer(r, 'c2', t, host('c'), 'ReceivedNormal');
  assert.ok(t.addPeerEdge(parent, c1));
  assert.ok(t.addPeerEdge(parent, c2));
  assert.equal(ha.txBandwidth, 2 * PIECE * 8 * 8);
  assert.equal(ha.uploadContentLength, 2 * 10 * PIECE);
  assert.equal(ha.concurrentUploadPieceCount, 16);
  // A change of the task's length must not skew what is released.
  t.contentLength = -1;
  c1.state = 'Running';
  c1.event('DownloadSucceeded');
  assert.equal(ha.concurrentUploadPieceCount, 8);
  r.deletePeer(c2);
  assert.deepEqual([ha.txBandwidth, ha.uploadContentLength, ha.concurrentUploadPieceCount], [0, 0, 0]);
});

test('deleting a host deletes its peers from every index and DAG', () => {
  const r = new Resources();
  const t = task();
  const ha = host('a');
  r.hosts.set('a', ha);
  const p = peer(r, 'p', t, ha, 'Succeeded');
  const c = peer(r, 'c', t, host('b'), 'ReceivedNormal');
  t.addPeerEdge(p, c);
  r.deleteHost(ha);
  assert.equal(r.peers.has('p'), false);
  assert.equal(t.dag.has('p'), false);
  assert.equal(t.dag.inDegree('c'), 0);
  assert.equal(r.hosts.has('a'), false);
});

test('hasAvailablePeer ignores the same host and blocked peers', () => {
  const r = new Resources();
  const t = task();
  peer(r, 'x', t, host('a'), 'Succeeded');
  assert.equal(t.hasAvailablePeer('a', new Set()), false);
  assert.equal(t.hasAvailablePeer('b', new Set(['x'])), false);
  assert.equal(t.hasAvailablePeer('b', new Set()), true);
});
