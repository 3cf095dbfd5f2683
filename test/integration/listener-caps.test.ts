// Connection caps on the listeners that had none (issue 16, item 5): dfdaemon's download socket
// (download.server.maxConnections) and the embedded scheduler (embeddedScheduler.maxConnections; dfscheduler's
// server.maxConnections). Without a cap, local users (the socket is 0777) or any host (the scheduler) could hold
// connections until the daemon ran out of descriptors. With a cap of 2: two clients are served, a third
// connection is closed at once (and counted, and dfget says why), and the first two keep working.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createConnection, type Socket } from 'node:net';
import { once } from 'node:events';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { Metadata, type ServiceError } from '@grpc/grpc-js';
import { downloadClient } from '../../src/cli/daemon-client.js';
import type { DfdaemonDownloadClient } from '../../src/gen/dfdaemon.js';
import type { SchedulerClient } from '../../src/gen/scheduler.js';
import { EmbeddedScheduler } from '../../src/scheduler/embedded/scheduler-server.js';
import {
  dfget,
  metricsText,
  metricValue,
  startDaemon,
  stopDaemon,
  tempDir,
  type DaemonHandle,
} from '../helpers/daemon.js';
import { Origin } from '../helpers/origin.js';
import { announceHost, rpc, schedulerClient } from '../helpers/scheduler-client.js';

/** An idle connection, held open (it counts against the cap like any other). */
async function hold(open: () => Socket): Promise<Socket> {
  const socket = open();
  socket.on('error', () => undefined);
  await once(socket, 'connect');
  return socket;
}

/** Whether the server closes a fresh connection before sending anything (the cap's refusal). */
async function closedAtOnce(open: () => Socket): Promise<boolean> {
  const socket = open();
  socket.on('error', () => undefined);
  const outcome = await Promise.race([
    once(socket, 'data').then(() => 'data'),
    once(socket, 'close').then(() => 'closed'),
    new Promise((r) => setTimeout(() => r('open'), 2000)),
  ]);
  socket.destroy();
  return outcome === 'closed';
}

/** A unary call on the download socket that needs a working connection: StatTask of an unknown task. */
function statUnknown(client: DfdaemonDownloadClient): Promise<number> {
  return new Promise((resolve) =>
    client.statTask({ taskId: 'f'.repeat(64) }, new Metadata(), { deadline: Date.now() + 10_000 }, (err) =>
      resolve((err as ServiceError | null)?.code ?? 0),
    ),
  );
}

describe('the download socket holds at most download.server.maxConnections', () => {
  const origin = new Origin();
  const out = tempDir('dft-socket-cap-out-');
  let d: DaemonHandle;
  let client: DfdaemonDownloadClient;
  let idle: Socket;

  before(async () => {
    await origin.start();
    d = await startDaemon({ downloadServer: 'maxConnections: 2' });
  });

  after(async () => {
    client?.close();
    idle?.destroy();
    if (d) await stopDaemon(d);
    await origin.stop();
    rmSync(out, { recursive: true, force: true });
  });

  test('a third connection is closed at once; the first two keep working; one that leaves makes room', async () => {
    // Two connections: a gRPC client (grpc-js shares one connection among clients of a target) and an idle one.
    client = downloadClient(d.socket);
    assert.equal(await statUnknown(client), 5, 'NOT_FOUND: the call was served');
    idle = await hold(() => createConnection(d.socket));
    assert.equal(await closedAtOnce(() => createConnection(d.socket)), true, 'the third is closed at once');
    const refused = metricValue(
      await metricsText(d),
      'dragonfly_client_connection_refused_total',
      'server="download"',
    );
    assert.ok(refused >= 1, `refusals counted (${refused})`);
    assert.ok(d.logs.some((l) => l.includes('connection refused: download.server.maxConnections reached')));

    // dfget says why instead of waiting 30 s for an answer.
    const started = Date.now();
    const url = origin.add('/capped.bin', { size: 1000, seed: 3 });
    const r = await dfget(d, url, join(out, 'capped'));
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /dfdaemon closed the connection at once: .*download\.server\.maxConnections/);
    assert.ok(Date.now() - started < 15_000, 'it failed at once');

    assert.equal(await statUnknown(client), 5, 'the connection held still works');
    idle.destroy();
    await new Promise((r) => setTimeout(r, 200));
    const ok = await dfget(d, url, join(out, 'after'));
    assert.equal(ok.code, 0, ok.stderr);
  });
});

describe('the embedded scheduler holds at most its maxConnections', () => {
  let scheduler: EmbeddedScheduler;
  let port: number;
  let refused = 0;
  let client: SchedulerClient;
  let idle: Socket;

  before(async () => {
    scheduler = new EmbeddedScheduler({
      ip: '127.0.0.1',
      port: 0,
      log: pino({ level: 'silent' }),
      maxConnections: 2,
      onRefused: () => refused++,
    });
    port = await scheduler.start();
  });

  after(async () => {
    client?.close();
    idle?.destroy();
    await scheduler?.stop();
  });

  test('a third connection is closed at once; the first two keep working', async () => {
    client = schedulerClient(port);
    await announceHost(client, { id: 'host-0' });
    idle = await hold(() => connect({ host: '127.0.0.1', port }));
    assert.equal(await closedAtOnce(() => connect({ host: '127.0.0.1', port })), true);
    assert.equal(refused, 1);
    await announceHost(client, { id: 'host-1' });
    assert.equal((await rpc(client).listHosts({})).hosts.length, 2, 'the connection held still works');
    idle.destroy();
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(await closedAtOnce(() => connect({ host: '127.0.0.1', port })), false, 'room again');
  });
});
