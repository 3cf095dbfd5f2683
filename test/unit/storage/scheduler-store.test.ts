// The embedded scheduler's store (storage/scheduler-store.ts): a second EmbeddedScheduler on the same file knows the first
// one's hosts and persistent cache tasks (state, counts, created_at, TTL), drops what cannot have survived (peers of
// streams that ended, tasks past their TTL), and a deleted task or host stays deleted.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { SchedulerClient } from '../../../src/gen/scheduler.js';
import type { PersistentCacheTask } from '../../../src/gen/common.js';
import type { Empty } from '../../../src/gen/google/protobuf/empty.js';
import { unary } from '../../../src/cli/daemon-client.js';
import { pino } from 'pino';
import { EmbeddedScheduler } from '../../../src/scheduler/embedded/scheduler-server.js';
import { SqliteSchedulerStore } from '../../../src/storage/scheduler-store.js';
import { tempDir } from '../../helpers/daemon.js';
import { announceHost, rpc, schedulerClient } from '../../helpers/scheduler-client.js';

const MiB = 1024 * 1024;
let dir: string;
let path: string;

before(() => {
  dir = tempDir('scheduler-store-');
  path = join(dir, 'scheduler.db');
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** Runs `f` against a scheduler on `path`, stopped afterwards. */
async function withScheduler(f: (c: SchedulerClient, s: EmbeddedScheduler) => Promise<void>): Promise<void> {
  const s = new EmbeddedScheduler({
    ip: '127.0.0.1',
    port: 0,
    log: pino({ level: 'silent' }),
    store: new SqliteSchedulerStore(path),
  });
  const c = schedulerClient(await s.start());
  try {
    await f(c, s);
  } finally {
    c.close();
    await s.stop();
  }
}

const upload = (c: SchedulerClient, taskId: string, ttlSeconds = 3600) => ({
  started: () =>
    unary<Empty>((cb) =>
      c.uploadPersistentCacheTaskStarted(
        {
          hostId: 'importer',
          taskId,
          peerId: `${taskId}-peer`,
          persistentReplicaCount: 1,
          tag: 'tag1',
          application: 'app1',
          pieceLength: 4 * MiB,
          contentLength: 5 * MiB,
          pieceCount: 2,
          ttl: { seconds: ttlSeconds, nanos: 0 },
        },
        cb,
      ),
    ),
  finished: () =>
    unary<PersistentCacheTask>((cb) =>
      c.uploadPersistentCacheTaskFinished({ hostId: 'importer', taskId, peerId: `${taskId}-peer` }, cb),
    ),
});

const stat = (c: SchedulerClient, taskId: string) =>
  unary<PersistentCacheTask>((cb) => c.statPersistentCacheTask({ hostId: 'importer', taskId }, cb));

test('hosts and persistent cache tasks come back after a restart; deletions stay', async () => {
  let before: PersistentCacheTask | undefined;
  await withScheduler(async (c) => {
    await announceHost(c, { id: 'importer', hostname: 'importer', port: 4100 }, 300_000);
    await announceHost(c, { id: 'leaver', hostname: 'leaver', port: 4101 });
    await rpc(c).deleteHost({ hostId: 'leaver' });
    for (const id of ['kept', 'deleted']) {
      await upload(c, id).started();
      await upload(c, id).finished();
    }
    await upload(c, 'uploading').started();
    await unary<Empty>((cb) => c.deletePersistentCacheTask({ hostId: 'importer', taskId: 'deleted' }, cb));
    before = await stat(c, 'kept');
  });
  await withScheduler(async (c, s) => {
    const hosts = (await rpc(c).listHosts({})).hosts;
    assert.deepEqual(
      hosts.map((h) => [h.id, h.port]),
      [['importer', 4100]],
    );
    assert.equal(s.resources.hosts.get('importer')?.intervalMs, 300_000);
    const kept = await stat(c, 'kept');
    assert.deepEqual(kept, before);
    assert.equal(kept.state, 'Succeeded');
    assert.equal(kept.currentPersistentReplicaCount, 1);
    assert.equal(kept.tag, 'tag1');
    // An upload in flight across the restart can still finish.
    assert.equal((await stat(c, 'uploading')).state, 'Uploading');
    assert.equal((await upload(c, 'uploading').finished()).state, 'Succeeded');
    await assert.rejects(stat(c, 'deleted'), /NOT_FOUND: persistent cache task deleted not found/);
  });
});

test('a task past its TTL while the scheduler was down is not restored, and leaves the store', async () => {
  const store = new SqliteSchedulerStore(path);
  store.saveTask({
    id: 'expired',
    persistentReplicaCount: 1,
    pieceLength: 4 * MiB,
    contentLength: 1,
    pieceCount: 1,
    ttlMs: 300_000,
    state: 'Succeeded',
    createdAt: new Date(Date.now() - 300_001),
    updatedAt: new Date(),
  });
  store.savePeer({
    id: 'gone-peer',
    taskId: 'kept',
    hostId: 'importer',
    persistent: false,
    state: 'Running',
    createdAt: new Date(),
    updatedAt: new Date(),
  });
  store.close();
  await withScheduler(async (c, s) => {
    await assert.rejects(stat(c, 'expired'), /NOT_FOUND/);
    assert.deepEqual(
      [...s.persistentCacheTasks.get('kept')!.peers.keys()],
      ['kept-peer'],
      'a peer whose stream ended with the last run is dropped',
    );
  });
  const after = new SqliteSchedulerStore(path);
  try {
    assert.deepEqual(
      after.tasks().map((t) => t.id),
      ['kept', 'uploading'],
    );
    assert.deepEqual(
      after.peers().map((p) => p.id),
      ['kept-peer', 'uploading-peer'],
    );
  } finally {
    after.close();
  }
});
