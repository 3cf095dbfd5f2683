// A task id derived two ways is two tasks: the task manager records how each task's id was derived and never
// serves one to a request that derives the id another way (issue 16 item 1). A URL's derivation wins over a blob
// digest's, which wins over a content label's; a task stored without a recorded derivation is fetched again. The
// digest a task's identity names is checked before the task counts as finished; a mismatch drops it.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { rmSync } from 'node:fs';
import { BackendFactory } from '../../../src/backend/factory.js';
import { DaemonMetrics } from '../../../src/daemon/metrics.js';
import { TaskManager, type DownloadRequest } from '../../../src/daemon/task-manager.js';
import { Storage } from '../../../src/storage/storage.js';
import { tempDir } from '../../helpers/daemon.js';
import { Origin, serveRanges } from '../backend/origin.js';

const log = { info() {}, warn() {}, debug() {} };
const dir = tempDir('dft-tmid-');
const origin = new Origin();
let storage: Storage;
let backends: BackendFactory;
let tm: TaskManager;

const GOOD = Buffer.from('the bytes the victim URL serves\n'.repeat(100));
const EVIL = Buffer.from('bytes an attacker serves from elsewhere\n'.repeat(100));
const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

before(async () => {
  await origin.listen();
  origin.route('/good', serveRanges(GOOD));
  origin.route('/evil', serveRanges(EVIL));
  storage = await Storage.open({ dir, keep: true, writeBufferSize: 65536, readBufferSize: 65536 }, log);
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
  await origin.close();
  rmSync(dir, { recursive: true, force: true });
});

function req(path: string, identity?: DownloadRequest['identity']): DownloadRequest {
  return { url: `${origin.url}${path}`, requestHeader: {}, disableBackToSource: false, identity };
}

async function download(taskId: string, r: DownloadRequest): Promise<Buffer> {
  const signal = new AbortController().signal;
  const started = await tm.start(taskId, r, signal);
  try {
    for await (const _ of tm.pieces(started, r, signal)) void _;
    await tm.finishIfComplete(started);
    return await storage.content.readPieceBuffer(taskId, 0, started.task.contentLength);
  } finally {
    started.release();
  }
}

test('a content-derived task is not served to a URL request with the same id: it is replaced', async () => {
  const id = '1'.repeat(64);
  assert.deepEqual(await download(id, req('/evil', { derivation: 'content' })), EVIL);
  assert.equal(storage.getTask(id)?.idDerivation, 'content');
  const before = origin.count('/good');
  assert.deepEqual(await download(id, req('/good', { derivation: 'url' })), GOOD);
  assert.ok(origin.count('/good') > before, 'fetched from the URL’s own source');
  assert.equal(storage.getTask(id)?.idDerivation, 'url');
});

test('a URL-derived task is never served to, nor replaced by, a content request with its id', async () => {
  const id = '2'.repeat(64);
  assert.deepEqual(await download(id, req('/good', { derivation: 'url' })), GOOD);
  await assert.rejects(
    download(id, req('/evil', { derivation: 'content' })),
    (e: Error & { code?: string }) => {
      assert.equal(e.code, 'PERMISSION_DENIED');
      assert.match(e.message, /task of a URL; content_for_calculating_task_id cannot name it/);
      return true;
    },
  );
  assert.ok(storage.getTask(id)?.finishedAt, 'the URL’s task is still stored and finished');
  assert.deepEqual(await storage.content.readPieceBuffer(id, 0, GOOD.length), GOOD);
});

test('a blob-digest task is not served to a URL request; a content request cannot take it', async () => {
  const id = sha256(GOOD);
  const blob = { derivation: 'blob-digest' as const, knownDigest: `sha256:${id}` };
  assert.deepEqual(await download(id, req('/good', blob)), GOOD);
  await assert.rejects(download(id, req('/evil', { derivation: 'content' })), { code: 'PERMISSION_DENIED' });
  assert.deepEqual(await download(id, req('/evil', { derivation: 'url' })), EVIL);
});

test('a task stored without a recorded derivation (an older dfdaemon) is fetched again', async () => {
  const id = '3'.repeat(64);
  await storage.prepareTask(id, { contentLength: EVIL.length, pieceLength: EVIL.length, responseHeader: {} });
  async function* bytes() {
    yield EVIL;
  }
  await storage.writePiece(id, { number: 0, offset: 0, length: EVIL.length }, bytes(), { trafficType: 0 });
  storage.finishTask(id);
  const before = origin.count('/good');
  assert.deepEqual(await download(id, req('/good', { derivation: 'url' })), GOOD);
  assert.ok(origin.count('/good') > before);
});

test('the digest a task’s identity names is checked before it is finished; a mismatch drops the task', async () => {
  const id = '4'.repeat(64);
  const wrong = { derivation: 'url' as const, knownDigest: `sha256:${sha256(GOOD)}` };
  await assert.rejects(download(id, req('/evil', wrong)), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'DIGEST_MISMATCH');
    assert.match(e.message, /is not sha256:[0-9a-f]{64}, the digest its URL names/);
    return true;
  });
  assert.equal(storage.getTask(id), undefined, 'dropped, never finished');
  assert.equal(await storage.content.hasTask(id), false);
  assert.deepEqual(await download(id, req('/good', wrong)), GOOD);
  assert.ok(storage.getTask(id)?.finishedAt);
});

test('blob bytes that end like a URL’s id input are never a finished blob task', async () => {
  const forged = Buffer.from('https://victim.example/app.tar.gzSTANDARD');
  origin.route('/forged', serveRanges(forged));
  const id = sha256(forged);
  await assert.rejects(
    download(id, req('/forged', { derivation: 'blob-digest', knownDigest: `sha256:${id}` })),
    (e: Error & { code?: string }) => {
      assert.equal(e.code, 'DIGEST_MISMATCH');
      assert.match(e.message, /ends with "STANDARD"/);
      return true;
    },
  );
  assert.equal(storage.getTask(id), undefined);
});
