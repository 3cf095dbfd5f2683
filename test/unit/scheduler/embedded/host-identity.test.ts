// One host id, one daemon: when the embedded scheduler refuses a host id announced with other ports, and every
// case in which it still accepts one (as upstream's scheduler does), with a recorded fake probe.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { Host as HostMessage } from '../../../../src/gen/common.js';
import {
  checkHostIdentity,
  tcpProbe,
  type PortProbe,
} from '../../../../src/scheduler/embedded/host-identity.js';
import { Host } from '../../../../src/scheduler/embedded/resources.js';
import { GrpcCode, SchedulerStatusError } from '../../../../src/scheduler/embedded/status.js';

const ID = '127.0.0.1-box';
const msg = (port: number, o: Partial<HostMessage> = {}) =>
  HostMessage.fromPartial({ id: ID, hostname: 'box', ip: '127.0.0.1', port, downloadPort: port, ...o });

/** The host as the scheduler knows it: announced on port 4000 from `from`, every 30 s, at t0. */
function known(from = 'ipv4:127.0.0.1:50001', t0 = 1_000_000): Host {
  const h = new Host(msg(4000), new Date(t0));
  h.announcedVia = from;
  h.intervalMs = 30_000;
  return h;
}

/** A probe that answers `alive` and records what it was asked. */
function probe(alive: boolean): PortProbe & { asked: string[] } {
  const asked: string[] = [];
  const f: PortProbe = async (ip, port) => {
    asked.push(`${ip}:${port}`);
    return alive;
  };
  return Object.assign(f, { asked });
}

test('another live daemon with the same host id and other ports is refused: ALREADY_EXISTS naming host.hostname', async () => {
  const p = probe(true);
  await assert.rejects(
    checkHostIdentity(known(), msg(4100), 'ipv4:127.0.0.1:50002', 1_000_000 + 5_000, p),
    (e: unknown) => {
      assert.ok(e instanceof SchedulerStatusError);
      assert.equal(e.code, GrpcCode.ALREADY_EXISTS);
      assert.match(
        e.message,
        /^host id 127\.0\.0\.1-box is already announced by another daemon \(ip 127\.0\.0\.1, port 4000\); this daemon announces port 4100\./,
      );
      assert.match(
        e.message,
        /set host\.hostname in dfdaemon\.yaml to a name unique to each daemon \(or give each daemon its own host\.ip\)$/,
      );
      return true;
    },
  );
  assert.deepEqual(p.asked, ['127.0.0.1:4000'], 'the known host is probed on its own port');
});

test('the same ports are accepted from any connection (a re-announce, a reconnect, the same daemon restarted): no probe', async () => {
  const p = probe(true);
  await checkHostIdentity(known(), msg(4000), 'ipv4:127.0.0.1:50002', 1_000_000 + 5_000, p);
  await checkHostIdentity(known(), msg(4000), 'ipv4:127.0.0.1:50001', 1_000_000 + 5_000, p);
  assert.deepEqual(p.asked, []);
});

test('other ports on the connection the host was announced on are accepted (one process): no probe', async () => {
  const p = probe(true);
  await checkHostIdentity(known(), msg(4100), 'ipv4:127.0.0.1:50001', 1_000_000 + 5_000, p);
  assert.deepEqual(p.asked, []);
});

test('other ports are accepted when the known host does not answer any more (a crash, then a restart on new ports)', async () => {
  const p = probe(false);
  await checkHostIdentity(known(), msg(4100), 'ipv4:127.0.0.1:50002', 1_000_000 + 5_000, p);
  assert.deepEqual(p.asked, ['127.0.0.1:4000']);
});

test('other ports are accepted when the known host has expired (not announced for twice its interval): no probe', async () => {
  const p = probe(true);
  await checkHostIdentity(known(), msg(4100), 'ipv4:127.0.0.1:50002', 1_000_000 + 60_001, p);
  assert.deepEqual(p.asked, []);
  // within twice the interval it is still alive, so it is probed
  await assert.rejects(checkHostIdentity(known(), msg(4100), 'ipv4:127.0.0.1:50002', 1_000_000 + 60_000, p));
});

test('a port the newcomer claims for itself at the same ip is not probed (it would answer for the newcomer)', async () => {
  const p = probe(true);
  // known: port 4000 and download port 4005; newcomer: port 4005, download port 4100
  const k = new Host(msg(4000, { downloadPort: 4005 }), new Date(1_000_000));
  k.announcedVia = 'ipv4:127.0.0.1:50001';
  await assert.rejects(
    checkHostIdentity(k, msg(4005, { downloadPort: 4100 }), 'ipv4:127.0.0.1:50002', 1_000_000, p),
  );
  assert.deepEqual(p.asked, ['127.0.0.1:4000']);
});

test('tcpProbe: true for a listening port, false for a closed one', async () => {
  const server: Server = createServer((s) => s.destroy());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  try {
    assert.equal(await tcpProbe('127.0.0.1', port, 1000), true);
  } finally {
    await new Promise((r) => server.close(r));
  }
  assert.equal(await tcpProbe('127.0.0.1', port, 1000), false);
});
