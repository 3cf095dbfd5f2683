// Replica placement retries (persistent-cache-replicas.ts): the back-off delays, the bound on retries in a row, and
// hosts that failed tried last. The hosts are real DfdaemonUpload servers on port 0 that refuse every placement.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Server, ServerCredentials, status as GrpcStatus, type ServerWritableStream } from '@grpc/grpc-js';
import { pino } from 'pino';
import { Host as HostMessage } from '../../../../src/gen/common.js';
import {
  DfdaemonUploadService,
  type DownloadPersistentCacheTaskRequest,
} from '../../../../src/gen/dfdaemon.js';
import { PersistentCacheTasks } from '../../../../src/scheduler/embedded/persistent-cache.js';
import {
  DEFAULT_REPLICA_RETRY,
  replicaRetryDelayMs,
} from '../../../../src/scheduler/embedded/persistent-cache-replicas.js';
import { Host, Resources } from '../../../../src/scheduler/embedded/resources.js';
import { SqliteSchedulerStore } from '../../../../src/storage/scheduler-store.js';

/** A host's upload server refusing every placement; `asked` lists the hosts asked, in order. */
const asked: string[] = [];
const servers: Server[] = [];

async function refusingHost(id: string): Promise<Host> {
  const server = new Server();
  server.addService(DfdaemonUploadService, {
    downloadPersistentCacheTask: (
      call: ServerWritableStream<DownloadPersistentCacheTaskRequest, unknown>,
    ) => {
      asked.push(id);
      call.emit('error', { code: GrpcStatus.RESOURCE_EXHAUSTED, details: 'no room' });
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (e, p) =>
      e ? reject(e) : resolve(p),
    ),
  );
  servers.push(server);
  return new Host(HostMessage.fromPartial({ id, hostname: id, ip: '127.0.0.1', port, downloadPort: port }));
}

let resources: Resources;
before(async () => {
  resources = new Resources();
  for (const id of ['h1', 'h2']) {
    const host = await refusingHost(id);
    resources.hosts.set(host.id, host);
  }
});
after(() => {
  for (const s of servers) s.forceShutdown();
});

test('delays double from the base up to the cap, jittered ×[0.8, 1.2)', () => {
  const p = DEFAULT_REPLICA_RETRY;
  assert.deepEqual(
    [0, 1, 2, 3, 4, 5, 6].map((n) => replicaRetryDelayMs(n, p, () => 0.5)),
    [1000, 2000, 4000, 8000, 16_000, 30_000, 30_000],
  );
  assert.equal(
    replicaRetryDelayMs(0, p, () => 0),
    800,
  );
  assert.ok(replicaRetryDelayMs(0, p, () => 0.999_999) < 1200);
});

test('a refused placement is retried, on the other host first, and stops after the limit', async () => {
  asked.length = 0;
  const store = new SqliteSchedulerStore(':memory:');
  const tasks = new PersistentCacheTasks({
    resources,
    log: pino({ level: 'silent' }),
    store,
    replicaRetry: { baseMs: 20, maxMs: 40, limit: 3 },
  });
  try {
    const task = tasks.create({
      id: 'refused',
      // Nobody holds it (no importer here): one host per round.
      persistentReplicaCount: 1,
      pieceLength: 4 << 20,
      contentLength: 1,
      pieceCount: 1,
      ttlMs: 60_000,
    });
    task.state = 'Succeeded';
    tasks.replicate(task);
    // 1 placement + 3 retries, then nothing more.
    const until = Date.now() + 5000;
    while (asked.length < 4 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(asked.length, 4, asked.join(', '));
    // The host that failed goes last: the first retry asks the other one.
    assert.notEqual(asked[1], asked[0]);
    assert.equal(task.placementRetries, 3);
  } finally {
    tasks.close();
    store.close();
  }
});
