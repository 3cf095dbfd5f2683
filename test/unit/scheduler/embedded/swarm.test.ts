// The embedded scheduler's swarm rules (option `swarm`, on by default), each against upstream's behaviour
// (`swarm: false`): seeds always in the pool, Running peers with pieces as parents, more candidates, a capped seed
// that is still offered when nothing else is, the host-type score, and no back-to-source while a seed starts.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import type { AnnouncePeerResponse } from '../../../../src/gen/scheduler.js';
import {
  evaluateParents,
  hostTypeScore,
  swarmHostTypeScore,
} from '../../../../src/scheduler/embedded/evaluator.js';
import { resolveSchedulerOptions } from '../../../../src/scheduler/embedded/options.js';
import { Resources, type Peer, type Task } from '../../../../src/scheduler/embedded/resources.js';
import {
  filterCandidateParents,
  findCandidateParents,
  Scheduling,
} from '../../../../src/scheduler/embedded/scheduling.js';
import { host, peer, task } from './fixtures.js';

const swarm = resolveSchedulerOptions({ retryIntervalMs: 1 });
const upstream = resolveSchedulerOptions({ retryIntervalMs: 1, swarm: false });
const SEED = { type: 1 };

function ids(peers: { id: string }[]): string[] {
  return peers.map((p) => p.id).sort();
}

/** A task with a child asking for parents, a seed peer in `seedState` and `n` Succeeded normal peers. */
function swarmOf(n: number, seedState: Peer['state'] = 'BackToSource') {
  const r = new Resources();
  const t = task();
  const child = peer(r, 'child', t, host('c'), 'ReceivedNormal');
  const seed = peer(r, 'seed', t, host('s', SEED), seedState);
  const normals = Array.from({ length: n }, (_, i) => peer(r, `p${i}`, t, host(`h${i}`), 'Succeeded'));
  return { r, t, child, seed, normals, block: new Set(['child']) };
}

/** Gives `parent` `n` children on new hosts (they count toward a seed's cap; ReceivedNormal, so never parents). */
function addChildren(r: Resources, t: Task, parent: Peer, n: number): void {
  for (let i = 0; i < n; i++)
    t.addPeerEdge(parent, peer(r, `${parent.id}-kid${i}`, t, host(`k${parent.id}${i}`), 'ReceivedNormal'));
}

test('options: swarm is on with 8 candidates and a seed cap of 4; swarm: false alone gives upstream’s 3', () => {
  assert.equal(swarm.swarm, true);
  assert.equal(swarm.candidateParentLimit, 8);
  assert.equal(swarm.seedPeerChildLimit, 4);
  assert.equal(upstream.candidateParentLimit, 3);
  assert.equal(resolveSchedulerOptions({ swarm: false, candidateParentLimit: 5 }).candidateParentLimit, 5);
  assert.equal(resolveSchedulerOptions({ candidateParentLimit: 2 }).candidateParentLimit, 2);
});

test('rule 1: the task’s seed peers are always in the pool, not only when the random sample has them', () => {
  const { child, block } = swarmOf(40);
  for (let i = 0; i < 20; i++) {
    const got = filterCandidateParents(child, block, { filterParentLimit: 3, swarm: true });
    assert.ok(
      got.some((p) => p.id === 'seed'),
      `round ${i}: ${ids(got).join(',')}`,
    );
  }
  // Upstream looks at the sample only: 3 of 42 peers, so the seed is mostly missing.
  let seen = 0;
  for (let i = 0; i < 20; i++) {
    const got = filterCandidateParents(child, block, { filterParentLimit: 3, swarm: false });
    assert.ok(got.length <= 3);
    if (got.some((p) => p.id === 'seed')) seen++;
  }
  assert.ok(seen < 20);
});

test('rule 1: a failed or departed seed peer is still never a candidate', () => {
  for (const state of ['Failed', 'Leave'] as const) {
    const { child, block } = swarmOf(2, state);
    assert.deepEqual(ids(filterCandidateParents(child, block, { filterParentLimit: 15, swarm: true })), [
      'p0',
      'p1',
    ]);
  }
});

test('rule 2: a Running peer without parents that holds pieces is a parent; one with nothing is not', () => {
  const r = new Resources();
  const t = task();
  const child = peer(r, 'child', t, host('c'), 'ReceivedNormal');
  const holder = peer(r, 'holder', t, host('a'), 'Running');
  holder.finishedPieces.add(0);
  peer(r, 'empty', t, host('b'), 'Running');
  const withParent = peer(r, 'with-parent', t, host('d'), 'Running');
  t.addPeerEdge(holder, withParent);
  const block = new Set(['child']);
  assert.deepEqual(ids(filterCandidateParents(child, block, { filterParentLimit: 15, swarm: true })), [
    'holder',
    'with-parent',
  ]);
  // Upstream drops a normal peer with in-degree 0 unless it is BackToSource or Succeeded.
  assert.deepEqual(ids(filterCandidateParents(child, block, { filterParentLimit: 15, swarm: false })), [
    'with-parent',
  ]);
});

test('rule 3: an offer holds up to 8 parents: the seed and seven normal peers', () => {
  const { child, block } = swarmOf(12);
  const got = findCandidateParents(child, block, swarm);
  assert.equal(got.length, 8);
  assert.ok(got.some((p) => p.id === 'seed'));
  assert.equal(findCandidateParents(child, block, upstream).length, 3);
});

test('rule 4: a seed ranked below every normal peer still gets a slot while below its child cap', () => {
  const { child, block } = swarmOf(12, 'Succeeded');
  // A Succeeded seed scores lowest in both modes; only the reserved slot puts it in the offer.
  const got = findCandidateParents(child, block, { ...swarm, candidateParentLimit: 3 });
  assert.equal(got.length, 3);
  assert.ok(got.some((p) => p.id === 'seed'));
  assert.ok(!findCandidateParents(child, block, upstream).some((p) => p.id === 'seed'));
});

test('rule 4: a seed at its child cap is left out while normal peers exist, offered when nothing else is', () => {
  const { r, t, child, seed, normals, block } = swarmOf(3);
  addChildren(r, t, seed, 4);
  assert.deepEqual(ids(findCandidateParents(child, block, swarm)), ['p0', 'p1', 'p2']);
  for (const p of normals) p.state = 'Failed';
  assert.deepEqual(ids(findCandidateParents(child, block, swarm)), ['seed']);
  // seedPeerChildLimit 0: no cap.
  for (const p of normals) p.state = 'Succeeded';
  assert.ok(
    findCandidateParents(child, block, { ...swarm, seedPeerChildLimit: 0 }).some((p) => p.id === 'seed'),
  );
});

test('rule 4: normal peers with fewer children go first; one at candidateParentLimit children only to fill', () => {
  const { r, t, child, normals, block } = swarmOf(13);
  // p0..p5 carry 8 children each (the cap), p6 two, the rest none.
  for (const p of normals.slice(0, 6)) addChildren(r, t, p, 8);
  addChildren(r, t, normals[6]!, 2);
  const o = { ...swarm, filterParentLimit: 1000 }; // the sample must see every peer, not 15 of the 64
  const got = ids(findCandidateParents(child, block, o));
  assert.equal(got.length, 8);
  assert.ok(got.includes('seed'));
  for (const busy of ['p0', 'p1', 'p2', 'p3', 'p4', 'p5']) assert.ok(!got.includes(busy), `${busy} is full`);
  assert.deepEqual(
    got.filter((id) => id !== 'seed'),
    ['p10', 'p11', 'p12', 'p6', 'p7', 'p8', 'p9'],
    'the seven peers below the cap, the one with two children among them',
  );
  // With only full peers left, they still fill the offer.
  for (const p of normals.slice(6)) p.state = 'Failed';
  assert.equal(findCandidateParents(child, block, o).length, 7);
});

test('rule 4: host-type score — piece holders first, a downloading seed next, empty peers last', () => {
  const r = new Resources();
  const t = task();
  const child = peer(r, 'child', t, host('c'), 'ReceivedNormal');
  const seed = peer(r, 'seed', t, host('s', SEED), 'BackToSource');
  const holder = peer(r, 'holder', t, host('a'), 'Running');
  holder.finishedPieces.add(3);
  const empty = peer(r, 'empty', t, host('b'), 'Running');
  const done = peer(r, 'done', t, host('d'), 'Succeeded');
  assert.equal(swarmHostTypeScore(seed), 0.5);
  assert.equal(swarmHostTypeScore(holder), 1);
  assert.equal(swarmHostTypeScore(done), 1);
  assert.equal(swarmHostTypeScore(empty), 0.25);
  assert.deepEqual(
    evaluateParents([empty, seed, holder], child, true).map((p) => p.id),
    ['holder', 'seed', 'empty'],
  );
  // Upstream: a seed downloading from the source (BackToSource) scores 0, below every normal peer.
  assert.equal(hostTypeScore(seed), 0);
  assert.deepEqual(
    evaluateParents([seed, empty], child, false).map((p) => p.id),
    ['empty', 'seed'],
  );
});

test('rule 5: a seed counts as starting while triggered or working, not once failed, blocked, done or stale', () => {
  const r = new Resources();
  const t = task();
  const none = new Set<string>();
  assert.equal(t.isSeedPeerStarting(none, 1000), false);
  const ended = t.seedTriggered(Date.now());
  assert.equal(t.isSeedPeerStarting(none, 1000), true);
  assert.equal(t.isSeedPeerStarting(none, 1000, Date.now() + 2000), false, 'past the timeout');
  ended();
  assert.equal(t.isSeedPeerStarting(none, 1000), false, 'the DownloadTask call ended without a seed peer');
  const seed = peer(r, 'seed', t, host('s', SEED), 'Pending');
  for (const state of ['Pending', 'ReceivedNormal', 'Running', 'BackToSource'] as const) {
    seed.state = state;
    assert.equal(t.isSeedPeerStarting(none, 1000), true, state);
  }
  assert.equal(t.isSeedPeerStarting(new Set(['seed']), 1000), false, 'blocked by the asking peer');
  for (const state of ['Succeeded', 'Failed', 'Leave'] as const) {
    seed.state = state;
    assert.equal(t.isSeedPeerStarting(none, 1000), false, state);
  }
});

test('rule 5: a seed triggered again after its old seed peer failed counts as starting', () => {
  const r = new Resources();
  const t = task();
  const old = peer(r, 'old-seed', t, host('s', SEED), 'Failed');
  old.createdAt.setTime(Date.now() - 60_000);
  const none = new Set<string>();
  assert.equal(t.isSeedPeerStarting(none, 1000), false);
  const ended = t.seedTriggered();
  assert.equal(t.isSeedPeerStarting(none, 1000), true);
  ended();
  assert.equal(t.isSeedPeerStarting(none, 1000), false);
});

test('rule 5: no back-to-source while the triggered seed starts; the seed is offered once it downloads', async () => {
  const r = new Resources();
  const t = task();
  const sent: AnnouncePeerResponse[] = [];
  const child = peer(r, 'child', t, host('c'), 'ReceivedNormal');
  child.stream = { send: (x) => void sent.push(x) };
  const ended = t.seedTriggered();
  const scheduling = new Scheduling(swarm, pino({ level: 'silent' }));
  const done = scheduling.scheduleCandidateParents(child, new Set(['child']), new AbortController().signal);
  // Far more rounds than retryBackToSourceLimit (4) pass while the seed is starting.
  await new Promise((resolve) => setTimeout(resolve, 60));
  assert.equal(sent.length, 0);
  peer(r, 'seed', t, host('s', SEED), 'ReceivedNormal');
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(sent.length, 0);
  r.peers.get('seed')!.state = 'BackToSource';
  await done;
  assert.deepEqual(ids(sent[0]?.normalTaskResponse?.candidateParents ?? []), ['seed']);
  ended();
});

test('rule 5: a seed trigger that ended, or upstream’s rules, send the peer to the source after the retries', async () => {
  for (const [name, options, end] of [
    ['trigger ended', swarm, true],
    ['upstream', upstream, false],
  ] as const) {
    const r = new Resources();
    const t = task();
    const sent: AnnouncePeerResponse[] = [];
    const child = peer(r, 'child', t, host('c'), 'ReceivedNormal');
    child.stream = { send: (x) => void sent.push(x) };
    const ended = t.seedTriggered();
    if (end) ended();
    await new Scheduling(options, pino({ level: 'silent' })).scheduleCandidateParents(
      child,
      new Set(['child']),
      new AbortController().signal,
    );
    assert.equal(
      sent[0]?.needBackToSourceResponse?.description,
      'scheduling exceeded RetryBackToSourceLimit',
      name,
    );
  }
});

test('rule 5: the wait ends with the stream (abort)', async () => {
  const r = new Resources();
  const t = task();
  const child = peer(r, 'child', t, host('c'), 'ReceivedNormal');
  child.stream = { send: () => undefined };
  t.seedTriggered();
  const ac = new AbortController();
  const done = new Scheduling(swarm, pino({ level: 'silent' })).scheduleCandidateParents(
    child,
    new Set(['child']),
    ac.signal,
  );
  setTimeout(() => ac.abort(), 20);
  await assert.rejects(done);
});
