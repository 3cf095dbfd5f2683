// The embedded scheduler against a caller on another address (issue 16 item 7), with real gRPC clients: the
// cluster's hosts announce from 127.0.0.1, the attacker through a relay from 127.0.0.2. Before the fix anyone
// could DeleteHost the seed (the next download went to the origin), list every host, re-announce the seed's
// host with its own address, register peers on it, and grow the host table without bound.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import pino from 'pino';
import {
  PreheatFileRequest,
  PreheatImageRequest,
  StatFileRequest,
  StatImageRequest,
  type SchedulerClient,
} from '../../src/gen/scheduler.js';
import { EmbeddedScheduler } from '../../src/scheduler/embedded/scheduler-server.js';
import { relayFrom, type Relay } from '../helpers/relay.js';
import { announceHost, download, PeerStream, rpc, schedulerClient } from '../helpers/scheduler-client.js';

const TASK = 'a'.repeat(64);
const MAX_HOSTS = 6;

function rejectsWith(code: number, pattern: RegExp) {
  return (e: ServiceError) => {
    assert.equal(e.code, code, `got ${GrpcStatus[e.code]}: ${e.details}`);
    assert.match(e.details, pattern);
    return true;
  };
}

describe('embedded scheduler: callers on other addresses', () => {
  let scheduler: EmbeddedScheduler;
  let relay: Relay;
  let member: SchedulerClient;
  let stranger: SchedulerClient;

  before(async () => {
    scheduler = new EmbeddedScheduler({
      ip: '127.0.0.1',
      port: 0,
      log: pino({ level: 'silent' }),
      options: { retryIntervalMs: 10, registerBackoffBaseMs: 0, maxHosts: MAX_HOSTS },
    });
    const port = await scheduler.start();
    relay = await relayFrom('127.0.0.2', { port });
    member = schedulerClient(port);
    stranger = schedulerClient(relay.port);
    await announceHost(member, { id: 'seed-host', type: 1, ip: '127.0.0.1' });
    await announceHost(member, { id: 'peer-host', type: 0, ip: '127.0.0.1' });
  });

  after(async () => {
    member?.close();
    stranger?.close();
    await relay?.close();
    await scheduler?.stop();
  });

  test('DeleteHost of a host another address announced is PERMISSION_DENIED; the seed stays', async () => {
    await assert.rejects(
      rpc(stranger).deleteHost({ hostId: 'seed-host' }),
      rejectsWith(
        GrpcStatus.PERMISSION_DENIED,
        /DeleteHost: host seed-host was announced from 127\.0\.0\.1; 127\.0\.0\.2 may not act for it/,
      ),
    );
    assert.ok(scheduler.resources.hosts.has('seed-host'));
  });

  test('ListHosts is for callers that announced a host', async () => {
    await assert.rejects(
      rpc(stranger).listHosts({}),
      rejectsWith(GrpcStatus.PERMISSION_DENIED, /127\.0\.0\.2 announced no host/),
    );
    const ids = (await rpc(member).listHosts({})).hosts.map((h) => h.id).sort();
    assert.deepEqual(ids, ['peer-host', 'seed-host']);
  });

  test('the seed’s host cannot be re-announced from another address (its address hijacked)', async () => {
    await assert.rejects(
      announceHost(stranger, { id: 'seed-host', type: 1, ip: '127.0.0.2', port: 9 }),
      rejectsWith(
        GrpcStatus.PERMISSION_DENIED,
        /AnnounceHost: host seed-host was announced from 127\.0\.0\.1/,
      ),
    );
    assert.equal(scheduler.resources.hosts.get('seed-host')!.info.ip, '127.0.0.1');
  });

  test('peers cannot be registered on, or deleted from, another address’s host', async () => {
    const s = new PeerStream(stranger, 'seed-host', TASK, 'fake-seed-peer');
    s.register(download());
    const st = await s.finalStatus();
    assert.equal(st.code, GrpcStatus.PERMISSION_DENIED, st.details);
    assert.match(st.details, /RegisterPeer: host seed-host was announced from 127\.0\.0\.1/);
    assert.equal(scheduler.resources.peers.has('fake-seed-peer'), false);

    const own = new PeerStream(member, 'peer-host', TASK, 'real-peer');
    own.register(download());
    assert.ok(await own.next(), 'the member registers a peer on its host');
    await assert.rejects(
      rpc(stranger).deletePeer({ hostId: 'peer-host', taskId: TASK, peerId: 'real-peer' }),
      rejectsWith(GrpcStatus.PERMISSION_DENIED, /DeletePeer/),
    );
    await assert.rejects(
      rpc(stranger).deleteTask({ hostId: 'peer-host', taskId: TASK }),
      rejectsWith(GrpcStatus.PERMISSION_DENIED, /DeleteTask/),
    );
    assert.ok(scheduler.resources.peers.has('real-peer'));
    own.cancel();
  });

  test('StatTask and StatPeer (hosts’ addresses, tasks’ pieces) answer only members of the cluster', async () => {
    const own = new PeerStream(member, 'peer-host', TASK, 'stat-peer');
    own.register(download());
    assert.ok(await own.next());
    try {
      await assert.rejects(
        rpc(stranger).statTask({ hostId: '', taskId: TASK }),
        rejectsWith(
          GrpcStatus.PERMISSION_DENIED,
          /^StatTask: 127\.0\.0\.2 announced no host to this scheduler$/,
        ),
      );
      await assert.rejects(
        rpc(stranger).statPeer({ hostId: 'peer-host', taskId: TASK, peerId: 'stat-peer' }),
        rejectsWith(GrpcStatus.PERMISSION_DENIED, /^StatPeer: 127\.0\.0\.2 announced no host/),
      );
      assert.equal((await rpc(member).statTask({ hostId: 'peer-host', taskId: TASK })).id, TASK);
      assert.equal(
        (await rpc(member).statPeer({ hostId: 'peer-host', taskId: TASK, peerId: 'stat-peer' })).id,
        'stat-peer',
      );
    } finally {
      own.cancel();
    }
  });

  test('the preheat calls (which make hosts download, and name them) answer only members of the cluster', async () => {
    const url = 'http://example.com/model.bin';
    const manifest = 'https://example.com/v2/t/x/manifests/v1';
    const c = stranger;
    const calls: [string, (cb: (e: ServiceError | null) => void) => unknown][] = [
      [
        'PreheatFile',
        (cb) => c.preheatFile(PreheatFileRequest.fromPartial({ url, scope: 'all_seed_peers' }), cb),
      ],
      ['PreheatImage', (cb) => c.preheatImage(PreheatImageRequest.fromPartial({ url: manifest }), cb)],
      ['StatFile', (cb) => c.statFile(StatFileRequest.fromPartial({ url }), cb)],
      ['StatImage', (cb) => c.statImage(StatImageRequest.fromPartial({ url: manifest }), cb)],
    ];
    for (const [name, call] of calls) {
      await assert.rejects(
        new Promise<void>((resolve, reject) => call((e) => (e ? reject(e) : resolve()))),
        rejectsWith(GrpcStatus.PERMISSION_DENIED, new RegExp(`^${name}: 127\\.0\\.0\\.2 announced no host`)),
      );
    }
  });

  test('a host deletes its own task and itself; another address may not, even once it is a member', async () => {
    const other = new EmbeddedScheduler({ ip: '127.0.0.1', port: 0, log: pino({ level: 'silent' }) });
    const port = await other.start();
    const otherRelay = await relayFrom('127.0.0.2', { port });
    const a = schedulerClient(port);
    const b = schedulerClient(otherRelay.port);
    try {
      await announceHost(a, { id: 'host-a', ip: '127.0.0.1' });
      await announceHost(b, { id: 'host-b', ip: '127.0.0.2' });
      const s = new PeerStream(a, 'host-a', TASK, 'peer-a');
      s.register(download());
      assert.ok(await s.next());
      // b is a member now (it announced host-b), but host-a is not its own.
      await assert.rejects(
        rpc(b).deleteTask({ hostId: 'host-a', taskId: TASK }),
        rejectsWith(GrpcStatus.PERMISSION_DENIED, /DeleteTask: host host-a was announced from 127\.0\.0\.1/),
      );
      await assert.rejects(
        rpc(b).deleteHost({ hostId: 'host-a' }),
        rejectsWith(GrpcStatus.PERMISSION_DENIED, /DeleteHost: host host-a was announced from 127\.0\.0\.1/),
      );
      assert.ok(other.resources.peers.has('peer-a'));
      await rpc(a).deleteTask({ hostId: 'host-a', taskId: TASK });
      assert.equal(other.resources.peers.has('peer-a'), false, 'its own DeleteTask removed its peer');
      s.cancel();
      await rpc(a).deleteHost({ hostId: 'host-a' });
      assert.equal(other.resources.hosts.has('host-a'), false, 'its own DeleteHost removed it');
      assert.ok(other.resources.hosts.has('host-b'));
    } finally {
      a.close();
      b.close();
      await otherRelay.close();
      await other.stop();
    }
  });

  test('a 3 MB host id and more than maxHosts hosts are refused with clear errors', async () => {
    await assert.rejects(
      announceHost(stranger, { id: 'x'.repeat(3 * 1024 * 1024), hostname: 'h' }),
      rejectsWith(GrpcStatus.INVALID_ARGUMENT, /Host\.Id: 3145728 characters; at most 512/),
    );
    await assert.rejects(
      announceHost(stranger, { id: 'h', hostname: 'y'.repeat(20_000) }),
      rejectsWith(GrpcStatus.INVALID_ARGUMENT, /bytes; at most 16384/),
    );
    const start = scheduler.resources.hosts.size;
    for (let i = start; i < MAX_HOSTS; i++) await announceHost(stranger, { id: `filler-${i}` });
    await assert.rejects(
      announceHost(stranger, { id: 'one-too-many' }),
      rejectsWith(
        GrpcStatus.RESOURCE_EXHAUSTED,
        /holds 6 hosts, its limit \(scheduler\.maxHosts 6\); host one-too-many is refused/,
      ),
    );
    // Hosts already known still announce; one that leaves makes room.
    await announceHost(member, { id: 'seed-host', type: 1, ip: '127.0.0.1' });
    await rpc(stranger).deleteHost({ hostId: `filler-${start}` });
    await announceHost(stranger, { id: 'one-too-many' });
  });
});
