// What `dfctl task preheat --wait` counts: the hosts a scope picks (as the scheduler picks them) and how many of
// them hold each URL finished.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { preheatProgress, preheatTargets, type ListedHost } from '../../../src/scheduler/preheat-progress.js';

const hosts: ListedHost[] = [
  { ip: '10.0.0.1', hostname: 'seed-1', type: 1 },
  { ip: '10.0.0.2', hostname: 'seed-2', type: 1 },
  { ip: '10.0.0.3', hostname: 'peer-3', type: 0 },
  { ip: '10.0.0.4', hostname: 'peer-4', type: 0 },
  { ip: '10.0.0.5', hostname: 'peer-5', type: 0 },
];

test('targets: one seed, all seeds, all normal peers; ips before count before percentage', () => {
  const t = (s: Parameters<typeof preheatTargets>[1]) => preheatTargets(hosts, s).needed;
  assert.equal(t({ scope: 'single_seed_peer', ips: [] }), 1);
  assert.equal(t({ scope: 'all_seed_peers', ips: [] }), 2);
  assert.equal(t({ scope: 'all_peers', ips: [] }), 3);
  assert.equal(t({ scope: 'all_peers', ips: ['10.0.0.4'], count: 3 }), 1);
  assert.equal(t({ scope: 'all_peers', ips: [], count: 2, percentage: 100 }), 2);
  assert.equal(t({ scope: 'all_peers', ips: [], count: 200 }), 3);
  assert.equal(t({ scope: 'all_peers', ips: [], percentage: 10 }), 1, 'at least one');
  assert.equal(t({ scope: 'all_peers', ips: [], percentage: 67 }), 2, 'rounded down');
  assert.equal(preheatTargets([], { scope: 'single_seed_peer', ips: [] }).needed, 0);
});

test('progress counts finished holdings of in-scope hosts only, at most `needed` per URL', () => {
  const targets = preheatTargets(hosts, { scope: 'all_seed_peers', ips: [] });
  const p = preheatProgress(
    ['u1', 'u2'],
    [
      {
        ip: '10.0.0.1',
        hostname: 'seed-1',
        items: [
          { url: 'u1', isFinished: true },
          { url: 'u2', isFinished: false },
        ],
      },
      { ip: '10.0.0.2', hostname: 'seed-2', items: [{ url: 'u1', isFinished: true }] },
      // A normal peer holding u2 does not count for a seed scope; neither does a host of the same IP, other name.
      { ip: '10.0.0.3', hostname: 'peer-3', items: [{ url: 'u2', isFinished: true }] },
      { ip: '10.0.0.1', hostname: 'other', items: [{ url: 'u2', isFinished: true }] },
    ],
    targets,
  );
  assert.deepEqual(p, { done: 2, total: 4 });
});
