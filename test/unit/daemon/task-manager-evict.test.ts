// A stored task that GC evicts while a new download of it is starting (after the start decided to reuse it): the
// start notices the task is gone and starts once more from the source instead of failing ("vanished while
// starting", seen in the soak benchmark). And GC sees a task that is starting as busy.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { BackendFactory } from '../../../src/backend/factory.js';
import { DaemonMetrics } from '../../../src/daemon/metrics.js';
import { TaskManager, type DownloadRequest } from '../../../src/daemon/task-manager.js';
import { Storage } from '../../../src/storage/storage.js';
import { Origin, contentSlice } from '../../helpers/origin.js';
import { tempDir } from '../../helpers/daemon.js';

const log = { info() {}, warn() {}, debug() {} };
const origin = new Origin();
const dir = tempDir('dft-tm-');
let storage: Storage;
let backends: BackendFactory;
let tm: TaskManager;

before(async () => {
  await origin.start();
  storage = await Storage.open(
    { dir, keep: true, writeBufferSize: 64 * 1024, readBufferSize: 64 * 1024 },
    log,
  );
  backends = new BackendFactory({
    maxRetries: 0,
    requestHeader: {},
    enableCacheTemporaryRedirect: false,
    cacheTemporaryRedirectTTLMs: 0,
  });
  tm = new TaskManager({
    storage,
    backends,
    metrics: new DaemonMetrics({ gitVersion: 't', gitCommit: '', buildTime: '' }),
    concurrentPieceCount: 2,
    pieceTimeoutMs: 10_000,
    maxRetries: 0,
    log,
  });
});

after(async () => {
  tm.close();
  await backends.close();
  storage.close();
  await origin.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function download(taskId: string, req: DownloadRequest): Promise<Buffer> {
  const signal = new AbortController().signal;
  const started = await tm.start(taskId, req, signal);
  try {
    for await (const _ of tm.pieces(started, req, signal)) void _;
    await tm.finishIfComplete(started);
    return await storage.content.readPieceBuffer(taskId, 0, started.task.contentLength);
  } finally {
    started.release();
  }
}

test('a task evicted between the reuse check and the start is fetched again, not failed', async () => {
  const size = 64 * 1024;
  const url = origin.add('/evicted', { size, seed: 3 });
  const taskId = 'e'.repeat(64);
  const req: DownloadRequest = { url, requestHeader: {}, disableBackToSource: false };
  assert.ok((await download(taskId, req)).equals(contentSlice(3, 0, size)));
  const statsBefore = origin.requests.length;

  // "GC" evicts the task right after the start decided it was reusable.
  const hasTask = storage.content.hasTask.bind(storage.content);
  let evicted = false;
  storage.content.hasTask = async (id: string) => {
    const r = await hasTask(id);
    if (!evicted) {
      evicted = true;
      assert.equal(tm.isBusy(taskId), true, 'a starting task is busy for GC');
      await storage.deleteTask(id);
    }
    return r;
  };
  try {
    assert.ok((await download(taskId, req)).equals(contentSlice(3, 0, size)));
  } finally {
    storage.content.hasTask = hasTask;
  }
  assert.ok(evicted);
  assert.ok(origin.requests.length > statsBefore, 'fetched from the origin again');
  assert.equal(tm.isBusy(taskId), false);
});
