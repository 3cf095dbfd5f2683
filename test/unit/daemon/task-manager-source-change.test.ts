// The task manager when the origin changes under a run (SOURCE_CHANGED): the run fails, the task is dropped before
// anyone can start it again, and the next start fetches the new version whole. And a stored partial task is kept
// only while a new stat names the same version.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DfError } from '../../../src/core/errors.js';
import type { DownloadRequest } from '../../../src/daemon/task-manager.js';
import { contentSlice, type OriginFile } from '../../helpers/origin.js';
import { TaskManagerEnv } from '../../helpers/task-manager.js';

const env = TaskManagerEnv.use();
const { origin } = env;
const download = env.download.bind(env);
const SIZE = 64 * 1024;
const PIECE = 16 * 1024;

async function settled(taskId: string): Promise<void> {
  for (let i = 0; env.tm.isBusy(taskId); i++) {
    assert.ok(i < 400, 'the run settles');
    await new Promise((r) => setTimeout(r, 10));
  }
}

function switchAt(at: number, to: Pick<OriginFile, 'seed' | 'headers'>): OriginFile['beforeAnswer'] {
  let pieces = 0;
  return (r, f) => {
    if (r.range && r.range !== 'bytes=0-0' && ++pieces === at) Object.assign(f, to);
  };
}

test('a changed origin fails the run with SOURCE_CHANGED, drops the task, and the next start gets all of v2', async () => {
  const url = origin.add('/flip', {
    size: SIZE,
    seed: 1,
    headers: { etag: '"1"' },
    beforeAnswer: switchAt(3, { seed: 2, headers: { etag: '"2"' } }),
  });
  const taskId = 'f'.repeat(64);
  const req: DownloadRequest = { url, requestHeader: {}, disableBackToSource: false, pieceLength: PIECE };
  await assert.rejects(
    download(taskId, req),
    (e: unknown) => e instanceof DfError && e.code === 'SOURCE_CHANGED',
  );
  // Dropped, and busy until it is: a start meanwhile waits for the eviction.
  const next = download(taskId, req);
  assert.ok((await next).equals(contentSlice(2, 0, SIZE)));
  assert.equal(env.storage.getTask(taskId)?.responseHeader['etag'], '"2"');
  assert.equal(env.tm.isBusy(taskId), false);
});

test('evictTask drops a stored task; a resumed partial task keeps its pieces only for the same version', async () => {
  const url = origin.add('/partial', { size: SIZE, seed: 3, headers: { etag: '"3"' } });
  const taskId = 'a'.repeat(64);
  const req: DownloadRequest = { url, requestHeader: {}, disableBackToSource: false, pieceLength: PIECE };
  await download(taskId, req, 2);
  // The pieces still in flight when the request went away finish and are kept.
  await settled(taskId);
  const kept = env.storage.listPieces(taskId).length;
  assert.ok(kept >= 2 && kept <= 4, `kept ${kept}`);

  // Same version: the resume stats the origin and keeps what it has.
  const before = origin.pieceRequests('/partial').length;
  assert.ok((await download(taskId, req)).equals(contentSlice(3, 0, SIZE)));
  assert.equal(origin.pieceRequests('/partial').length - before, 4 - kept);

  await env.tm.evictTask(taskId, new DfError('DIGEST_MISMATCH', 'test'));
  assert.equal(env.storage.getTask(taskId), undefined);
  assert.deepEqual(env.storage.listPieces(taskId), []);
  assert.equal(await env.storage.content.hasTask(taskId), false);

  // A partial task of v3 whose origin moved to v4: every piece comes again.
  await download(taskId, req, 2);
  await settled(taskId);
  Object.assign(origin.files.get('/partial')!, { seed: 4, headers: { etag: '"4"' } });
  const before2 = origin.pieceRequests('/partial').length;
  assert.ok((await download(taskId, req)).equals(contentSlice(4, 0, SIZE)));
  assert.equal(origin.pieceRequests('/partial').length - before2, 4);
});
