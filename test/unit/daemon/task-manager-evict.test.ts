// A stored task that GC evicts while a new download of it is starting (after the start decided to reuse it): the
// start notices the task is gone and starts once more from the source instead of failing ("vanished while
// starting", seen in the soak benchmark). And GC sees a task that is starting as busy. A download that starts while
// GC is deleting a task waits for the deletion and fetches the task anew, rather than reusing the task whose file
// is going (ENOENT, seen in the soak benchmark on 2026-12-07).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DownloadRequest } from '../../../src/daemon/task-manager.js';
import { GarbageCollector } from '../../../src/daemon/gc.js';
import { contentSlice } from '../../helpers/origin.js';
import { TaskManagerEnv } from '../../helpers/task-manager.js';

const env = TaskManagerEnv.use();
const { origin } = env;
const download = env.download.bind(env);

test('a task evicted between the reuse check and the start is fetched again, not failed', async () => {
  const size = 64 * 1024;
  const url = origin.add('/evicted', { size, seed: 3 });
  const taskId = 'e'.repeat(64);
  const req: DownloadRequest = { url, requestHeader: {}, disableBackToSource: false };
  assert.ok((await download(taskId, req)).equals(contentSlice(3, 0, size)));
  const statsBefore = origin.requests.length;

  // "GC" evicts the task right after the start decided it was reusable.
  const hasTask = env.storage.content.hasTask.bind(env.storage.content);
  let evicted = false;
  env.storage.content.hasTask = async (id: string) => {
    const r = await hasTask(id);
    if (!evicted) {
      evicted = true;
      assert.equal(env.tm.isBusy(taskId), true, 'a starting task is busy for GC');
      await env.storage.deleteTask(id);
    }
    return r;
  };
  try {
    assert.ok((await download(taskId, req)).equals(contentSlice(3, 0, size)));
  } finally {
    env.storage.content.hasTask = hasTask;
  }
  assert.ok(evicted);
  assert.ok(origin.requests.length > statsBefore, 'fetched from the origin again');
  assert.equal(env.tm.isBusy(taskId), false);
});

test('a download that starts while GC deletes the task waits for the deletion, then fetches the task anew', async () => {
  const size = 64 * 1024;
  const url = origin.add('/gc-race', { size, seed: 5 });
  const taskId = 'd'.repeat(64);
  const req: DownloadRequest = { url, requestHeader: {}, disableBackToSource: false };
  assert.ok((await download(taskId, req)).equals(contentSlice(5, 0, size)));
  const requestsBefore = origin.requests.length;

  // GC's deletion of the content file waits for a gate; the reuse check of a start lets GC go on and waits until
  // the deletion is over, the worst moment for a start that did not wait (it then reuses a task without a file).
  let openGate!: () => void;
  const gate = new Promise<void>((r) => (openGate = r));
  let deletionStarted = false;
  let deletionDone!: () => void;
  const deleted = new Promise<void>((r) => (deletionDone = r));
  const content = env.storage.content;
  const deleteTask = content.deleteTask.bind(content);
  const hasTask = content.hasTask.bind(content);
  content.deleteTask = async (id: string) => {
    if (id !== taskId) return deleteTask(id); // the file's other tasks are past the TTL too
    deletionStarted = true;
    await gate;
    await deleteTask(id);
    deletionDone();
  };
  content.hasTask = async (id: string) => {
    const r = await hasTask(id);
    if (id === taskId && deletionStarted) {
      openGate();
      await deleted;
    }
    return r;
  };
  const gc = new GarbageCollector({
    storage: env.storage,
    isInUse: (id) => env.tm.isBusy(id),
    deleteIdle: (id, deletion) => env.tm.deleteIdle(id, deletion),
    policy: { taskTTL: 1000, diskThreshold: 0, diskHighThresholdPercent: 80, diskLowThresholdPercent: 60 },
    intervalMs: 60_000,
    now: () => Date.now() + 3_600_000,
    statfs: () => Promise.resolve({ total: 1e12, free: 1e12 }),
    log: { info() {}, warn() {} },
  });
  try {
    const pass = gc.runOnce();
    while (!deletionStarted) await new Promise((r) => setImmediate(r));
    assert.equal(env.tm.isBusy(taskId), true, 'a task being deleted is busy');
    const got = download(taskId, req);
    // A start that waits for the deletion never reaches the reuse check before it: open the gate for it.
    setTimeout(openGate, 50);
    assert.ok((await got).equals(contentSlice(5, 0, size)), 'the right bytes, not an error');
    const result = await pass;
    assert.ok(result.evicted.some((e) => e.taskId === taskId));
  } finally {
    content.deleteTask = deleteTask;
    content.hasTask = hasTask;
  }
  assert.ok(origin.requests.length > requestsBefore, 'fetched from the origin again');
  assert.ok(env.storage.getTask(taskId)?.finishedAt, 'stored again, finished');
});
