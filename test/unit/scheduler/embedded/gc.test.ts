import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { ResourceGc } from '../../../../src/scheduler/embedded/gc.js';
import { resolveSchedulerOptions } from '../../../../src/scheduler/embedded/options.js';
import { Resources } from '../../../../src/scheduler/embedded/resources.js';
import { host, peer, task } from './fixtures.js';

const silent = pino({ level: 'silent' });

test('peers: Failed and stale ones leave, Leave ones are deleted on the next pass', () => {
  const r = new Resources();
  const gc = new ResourceGc(r, resolveSchedulerOptions().gc, silent);
  const t = task();
  r.tasks.set(t.id, t);
  const h = host('a');
  r.hosts.set('a', h);
  peer(r, 'failed', t, h, 'Failed');
  const stale = peer(r, 'stale', t, h, 'Running');
  stale.pieceUpdatedAt = new Date(Date.now() - 31 * 60_000);
  peer(r, 'fine', t, h, 'Succeeded');
  gc.collectPeers();
  assert.equal(r.peers.get('failed')?.state, 'Leave');
  assert.equal(r.peers.get('stale')?.state, 'Leave');
  gc.collectPeers();
  assert.deepEqual([...r.peers.keys()], ['fine']);
  r.deletePeer(r.peers.get('fine')!);
  gc.collectTasks();
  assert.equal(r.tasks.size, 0);
});

test('hosts: only those with an interval, after 2 × interval', () => {
  const r = new Resources();
  const gc = new ResourceGc(r, resolveSchedulerOptions().gc, silent);
  const withInterval = host('i');
  withInterval.intervalMs = 1000;
  const without = host('n');
  r.hosts.set('i', withInterval);
  r.hosts.set('n', without);
  peer(r, 'p', task(), withInterval, 'Succeeded');
  const now = Date.now();
  gc.collectHosts(now + 1500);
  assert.equal(r.hosts.size, 2);
  gc.collectHosts(now + 2500);
  assert.deepEqual([...r.hosts.keys()], ['n']);
  assert.equal(r.peers.size, 0);
});
