import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import type { AnnouncePeerResponse } from '../../../../src/gen/scheduler.js';
import { resolveSchedulerOptions } from '../../../../src/scheduler/embedded/options.js';
import { Resources } from '../../../../src/scheduler/embedded/resources.js';
import {
  filterCandidateParents,
  findCandidateParents,
  jittered,
  Scheduling,
} from '../../../../src/scheduler/embedded/scheduling.js';
import { host, peer, task } from './fixtures.js';

const o = resolveSchedulerOptions({ retryIntervalMs: 1 });
const upstream = resolveSchedulerOptions({ retryIntervalMs: 1, swarm: false });

function ids(peers: { id: string }[]): string[] {
  return peers.map((p) => p.id).sort();
}

test('filter: never itself, its own host, blocked, unshared, not ready or in-degree 0 normal peers', () => {
  const r = new Resources();
  const t = task();
  const hc = host('c');
  const child = peer(r, 'child', t, hc, 'ReceivedNormal');
  peer(r, 'same-host', t, hc, 'Succeeded');
  peer(r, 'blocked', t, host('b'), 'Succeeded');
  peer(r, 'unshared', t, host('u', { disableShared: true }), 'Succeeded');
  peer(r, 'failed', t, host('f'), 'Failed');
  peer(r, 'left', t, host('l'), 'Leave');
  peer(r, 'running-no-parent', t, host('r'), 'Running');
  peer(r, 'seed-running', t, host('s', { type: 1 }), 'Running');
  peer(r, 'bts', t, host('x'), 'BackToSource');
  peer(r, 'done', t, host('y'), 'Succeeded');
  const withParent = peer(r, 'running-with-parent', t, host('z'), 'Running');
  t.addPeerEdge(r.peers.get('done')!, withParent);
  const got = filterCandidateParents(child, new Set(['child', 'blocked']), {
    filterParentLimit: 100,
    swarm: false,
  });
  assert.deepEqual(ids(got), ['bts', 'done', 'running-with-parent', 'seed-running']);
});

test('filter: a descendant of the peer is never its parent', () => {
  const r = new Resources();
  const t = task();
  const root = peer(r, 'root', t, host('a'), 'Succeeded');
  const child = peer(r, 'child', t, host('b'), 'Running');
  const grandchild = peer(r, 'grandchild', t, host('c'), 'Running');
  t.addPeerEdge(root, child);
  t.addPeerEdge(child, grandchild);
  // child asks again (its in-edges are dropped first, as each scheduling round does): grandchild descends from it
  // and must not be offered.
  t.deletePeerInEdges('child');
  assert.deepEqual(
    ids(filterCandidateParents(child, new Set(['child']), { filterParentLimit: 100, swarm: true })),
    ['root'],
  );
});

test("filter, swarm: normal peers may be each other's parents; a seed never takes its descendants", () => {
  const r = new Resources();
  const t = task(undefined, undefined, { peersTradeBothWays: true });
  const seed = peer(r, 'seed', t, host('s', { type: 1 }), 'Running');
  const a = peer(r, 'a', t, host('a'), 'Running');
  const b = peer(r, 'b', t, host('b'), 'Running');
  t.addPeerEdge(seed, a);
  t.addPeerEdge(a, b);
  // a reschedules: b descends from it, and is offered all the same (they trade pieces both ways).
  assert.deepEqual(
    ids(filterCandidateParents(a, new Set(['a', 'seed']), { filterParentLimit: 100, swarm: true })),
    ['b'],
  );
  assert.equal(t.addPeerEdge(b, a), true);
  assert.deepEqual(t.dag.parents('a').sort(), ['b', 'seed']);
  // The seed asks for parents: its descendants are never offered.
  assert.deepEqual(
    ids(filterCandidateParents(seed, new Set(['seed']), { filterParentLimit: 100, swarm: true })),
    [],
  );
  assert.equal(t.addPeerEdge(a, seed), false);
});

test('find: at most candidateParentLimit, and nothing unless the peer is ReceivedNormal or Running', () => {
  const r = new Resources();
  const t = task();
  const child = peer(r, 'child', t, host('c'), 'ReceivedNormal');
  for (let i = 0; i < 6; i++) peer(r, `p${i}`, t, host(`h${i}`), 'Succeeded');
  assert.equal(findCandidateParents(child, new Set(['child']), upstream).length, 3);
  child.state = 'BackToSource';
  assert.equal(findCandidateParents(child, new Set(['child']), o).length, 0);
});

test('jitter stays in [0.75, 1.25) × interval', () => {
  assert.equal(
    jittered(100, () => 0),
    75,
  );
  assert.ok(jittered(100, () => 0.999999) < 125);
});

test('schedule: adds edges and replies with complete parents; with none, NeedBackToSource after the retries', async () => {
  const r = new Resources();
  const t = task();
  const sent: AnnouncePeerResponse[] = [];
  const stream = { send: (x: AnnouncePeerResponse) => void sent.push(x) };
  const child = peer(r, 'child', t, host('c'), 'ReceivedNormal');
  child.stream = stream;
  const scheduling = new Scheduling(o, pino({ level: 'silent' }));
  const signal = new AbortController().signal;

  await scheduling.scheduleCandidateParents(child, new Set(['child']), signal);
  assert.equal(sent[0]?.needBackToSourceResponse?.description, 'scheduling exceeded RetryBackToSourceLimit');

  const parent = peer(r, 'parent', t, host('p'), 'Succeeded');
  await scheduling.scheduleCandidateParents(child, new Set(['child']), signal);
  const parents = sent[1]?.normalTaskResponse?.candidateParents ?? [];
  assert.deepEqual(ids(parents), ['parent']);
  assert.equal(parents[0]!.task?.contentLength, t.contentLength);
  assert.equal(parents[0]!.host?.id, 'p');
  assert.equal(t.dag.inDegree('child'), 1);
  assert.equal(parent.host.concurrentUploadPieceCount, 8);

  child.needBackToSource = true;
  await scheduling.scheduleCandidateParents(child, new Set(['child']), signal);
  assert.equal(sent[2]?.needBackToSourceResponse?.description, "peer's NeedBackToSource is true");
});

test('schedule: past the back-to-source limit, RetryLimit is FAILED_PRECONDITION', async () => {
  const r = new Resources();
  const t = task();
  const child = peer(r, 'child', t, host('c'), 'ReceivedNormal');
  child.stream = { send: () => undefined };
  for (let i = 0; i <= 200; i++) t.backToSourcePeers.add(`bts${i}`);
  const scheduling = new Scheduling(o, pino({ level: 'silent' }));
  await assert.rejects(
    scheduling.scheduleCandidateParents(child, new Set(['child']), new AbortController().signal),
    {
      code: 9,
      message: 'scheduling exceeded RetryLimit',
    },
  );
});
