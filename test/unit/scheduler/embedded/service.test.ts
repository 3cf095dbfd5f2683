// The embedded scheduler's service through the generated client, for what its fuzz found
// (test/unit/scheduler/embedded/service.fuzz.test.ts): each test names the input that broke a rule.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { pino } from 'pino';
import type { SchedulerClient } from '../../../../src/gen/scheduler.js';
import { EmbeddedScheduler } from '../../../../src/scheduler/embedded/scheduler-server.js';
import { announceHost, rpc, schedulerClient } from '../../../helpers/scheduler-client.js';
import { rejection } from '../../../helpers/upload-stand-in.js';

let scheduler: EmbeddedScheduler;
let client: SchedulerClient;

before(async () => {
  scheduler = new EmbeddedScheduler({ ip: '127.0.0.1', port: 0, log: pino({ level: 'silent' }) });
  client = schedulerClient(await scheduler.start());
});

after(async () => {
  client.close();
  await scheduler.stop();
});

test('regression (fuzz): AnnounceHost refuses a host no peer could reach (an ip that is not an IP, port 0)', async () => {
  // A host name as Host.ip made seed triggers resolve it; port 0 was accepted and offered to peers as a parent.
  for (const [host, field] of [
    [{ id: 'h1', ip: 'not-an-ip' }, 'Host.Ip'],
    [{ id: 'h2', ip: '127.0.0.1:22' }, 'Host.Ip'],
    [{ id: 'h3', port: 0 }, 'Host.Port'],
    [{ id: 'h4', port: 65536 }, 'Host.Port'],
    [{ id: 'h5', port: -1 }, 'Host.Port'],
    [{ id: 'h6', downloadPort: 70_000 }, 'Host.DownloadPort'],
    [{ id: 'h7', type: 4 }, 'Host.Type'],
  ] as const) {
    const e = await rejection(announceHost(client, host));
    assert.equal(e.code, GrpcStatus.INVALID_ARGUMENT, `${JSON.stringify(host)}: ${e.details}`);
    assert.match(e.details, new RegExp(`invalid ${field}`), JSON.stringify(host));
    assert.equal(scheduler.resources.hosts.has(host.id), false);
  }
  // What daemons announce still passes: IPv4, IPv6, a privileged port, no download port.
  await announceHost(client, { id: 'ok-v4', ip: '10.0.0.1', port: 4000 });
  await announceHost(client, { id: 'ok-v6', ip: '::1', port: 80, downloadPort: 0 });
});

test('regression (fuzz): a status quoting an id holding CRLF is one line', async () => {
  const e = await rejection(rpc(client).deleteHost({ hostId: 'a\r\nX-Injected: 1' }));
  assert.equal(e.code, GrpcStatus.NOT_FOUND);
  assert.equal(e.details, 'host a\\r\\nX-Injected: 1 not found');
});

test('regression (fuzz): StatPeer of a 70 000-character id is NOT_FOUND with a bounded message', async () => {
  // The whole id in grpc-message went past the client's header limit: the client saw another status.
  const e = await rejection(rpc(client).statPeer({ hostId: 'h', taskId: 't', peerId: 'p'.repeat(70_000) }));
  assert.equal(e.code, GrpcStatus.NOT_FOUND, e.details);
  assert.ok(e.details.length < 1100, `${e.details.length} characters`);
  assert.match(e.details, /^peer p+… \(70015 characters in all\)$/);
});

test('regression (fuzz): a host whose stats hold u64::MAX and i64::MAX is accepted and listed', async () => {
  // Decoded as 2^64 and 2^63 (the nearest doubles), out of their fields' range: re-encoding the host failed, and
  // AnnounceHost answered INTERNAL "invalid uint64: 18446744073709552000". The generated decoders now round toward
  // zero (scripts/gen.mjs).
  const u64max = '18446744073709551615' as unknown as number;
  const i64max = '9223372036854775807' as unknown as number;
  await announceHost(client, {
    id: 'big-stats',
    disk: {
      total: u64max,
      free: u64max,
      used: 0,
      usedPercent: 0,
      inodesTotal: 0,
      inodesUsed: 0,
      inodesFree: 0,
      inodesUsedPercent: 0,
      readBandwidth: 0,
      writeBandwidth: 0,
    },
    memory: {
      total: 1,
      available: 1,
      used: 0,
      usedPercent: 0,
      processUsedPercent: 0,
      free: 1,
      cgroup: { limit: i64max, usage: 0, usedPercent: 0 },
    },
  });
  const listed = (await rpc(client).listHosts({})).hosts.find((h) => h.id === 'big-stats');
  assert.ok(listed?.disk && listed.disk.total > Number.MAX_SAFE_INTEGER && listed.disk.total < 2 ** 64);
  assert.ok(listed.memory?.cgroup && listed.memory.cgroup.limit < 2 ** 63);
});
