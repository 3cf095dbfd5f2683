// Which hosts a preheat downloads on (Go's selectSeedPeers / selectPeers): ips first, then count, then percentage
// (rounded down, at least one), else all; the same hosts for the same count (sorted by id).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Host as HostMessage } from '../../../../src/gen/common.js';
import { Host } from '../../../../src/scheduler/embedded/resources.js';
import { selectHosts } from '../../../../src/scheduler/embedded/preheat.js';

const h = (id: string, ip: string) =>
  new Host(HostMessage.fromPartial({ id, hostname: id, ip, port: 4000, type: 1 }));
const hosts = [h('c', '10.0.0.3'), h('a', '10.0.0.1'), h('b', '10.0.0.2'), h('d', '10.0.0.4')];
const ids = (picked: Host[]) => picked.map((x) => x.id);

test('ips, then count, then percentage, else all', () => {
  assert.deepEqual(ids(selectHosts(hosts, 'seed peer', { ips: ['10.0.0.2', '10.0.0.4'], count: 1 })), [
    'b',
    'd',
  ]);
  assert.deepEqual(ids(selectHosts(hosts, 'seed peer', { ips: [], count: 2, percentage: 100 })), ['a', 'b']);
  assert.deepEqual(ids(selectHosts(hosts, 'seed peer', { ips: [], count: 200 })), ['a', 'b', 'c', 'd']);
  assert.deepEqual(ids(selectHosts(hosts, 'seed peer', { ips: [], percentage: 50 })), ['a', 'b']);
  assert.deepEqual(ids(selectHosts(hosts, 'seed peer', { ips: [], percentage: 1 })), ['a'], 'at least one');
  assert.deepEqual(ids(selectHosts(hosts, 'seed peer', { ips: [] })), ['a', 'b', 'c', 'd']);
});

test('no host to pick is FAILED_PRECONDITION naming the kind (and the ips)', () => {
  assert.throws(
    () => selectHosts([], 'seed peer', { ips: [] }),
    (e: Error & { code?: number }) =>
      e.code === 9 && e.message === 'no seed peer is announced to this scheduler',
  );
  assert.throws(
    () => selectHosts(hosts, 'peer', { ips: ['192.0.2.1'] }),
    /: no peer found for ips 192\.0\.2\.1$/,
  );
});
