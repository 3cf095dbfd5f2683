// A stored task that GC evicts while a new download of it is starting (after the start decided to reuse it): the
// start notices the task is gone and starts once more from the source instead of failing ("vanished while
// starting", seen in the soak benchmark). And GC sees a task that is starting as busy.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DownloadRequest } from '../../../src/daemon/task-manager.js';
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
