// object-storage.ts against a real S3 server (s3rver): stat tells size and ETag, a piece is exactly its range
// (streamed from a presigned GET), a piece of another version is SOURCE_CHANGED, listing is recursive, and a
// remote caller cannot point the daemon at a loopback endpoint; put (dfstore import) is a concurrent multipart upload.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ObjectStorageBackend } from '../../../src/backend/object-storage.js';
import { validatorOf } from '../../../src/core/validator.js';
import { S3rverStore, S3RVER_KEY } from '../../helpers/s3rver.js';

const store = new S3rverStore('b');
const backend = new ObjectStorageBackend('s3', {
  maxRetries: 0,
  enableCacheTemporaryRedirect: false,
  cacheTemporaryRedirectTTLMs: 0,
  requestHeader: {},
});
const data = randomBytes(300_000);
const base = { taskId: 't', requestHeader: {}, timeoutMs: 10_000 };
const options = () => ({
  endpoint: store.endpoint,
  accessKeyId: S3RVER_KEY,
  accessKeySecret: S3RVER_KEY,
});

before(async () => {
  await store.start();
  await store.put('dir/obj.bin', data);
  await store.put('dir/sub/deeper/x.txt', Buffer.from('x'));
});
after(async () => {
  await backend.close();
  await store.stop();
});

async function read(body: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const p of body) parts.push(p);
  return Buffer.concat(parts);
}

test('stat tells the length and the ETag; a piece is exactly its range', async () => {
  const stat = await backend.stat({ ...base, url: 's3://b/dir/obj.bin', objectStorage: options() });
  assert.equal(stat.contentLength, data.length);
  assert.match(stat.responseHeader.etag!, /^"[0-9a-f]+"$/);
  const res = await backend.get({
    ...base,
    pieceNumber: 1,
    url: 's3://b/dir/obj.bin',
    range: { start: 100_000, length: 50_000 },
    validator: validatorOf(stat.responseHeader),
    objectStorage: options(),
  });
  assert.deepEqual(await read(res.body), data.subarray(100_000, 150_000));
});

test('a piece of another version than the stat saw is SOURCE_CHANGED (s3rver ignores If-Match)', async () => {
  await assert.rejects(
    backend.get({
      ...base,
      pieceNumber: 0,
      url: 's3://b/dir/obj.bin',
      range: { start: 0, length: 10 },
      validator: { etag: '"0123456789abcdef0123456789abcdef"' },
      objectStorage: options(),
    }),
    (e: Error & { code?: string }) => e.code === 'SOURCE_CHANGED',
  );
});

test('a directory is listed recursively with sizes; stat of a directory points at --recursive', async () => {
  const entries = await backend.listEntries({ ...base, url: 's3://b/dir/', objectStorage: options() });
  const files = entries.filter((e) => !e.isDir).map((e) => [e.url, e.contentLength]);
  assert.deepEqual(files.sort(), [
    ['s3://b/dir/obj.bin', data.length],
    ['s3://b/dir/sub/deeper/x.txt', 1],
  ]);
  await assert.rejects(
    backend.stat({ ...base, url: 's3://b/dir/', objectStorage: options() }),
    /s3:\/\/b\/dir\/ is a directory .*dfget --recursive/,
  );
});

test('on a remote caller behalf, a loopback endpoint is refused before any request', async () => {
  const before = store.requests.length;
  await assert.rejects(
    backend.stat({ ...base, url: 's3://b/dir/obj.bin', objectStorage: options(), remoteCaller: true }),
    /loopback address: a remote caller may not make dfdaemon connect there/,
  );
  assert.equal(store.requests.length, before);
});

test('a slow store answers TIMEOUT within the request bound', async () => {
  store.beforeRequest = () => new Promise((r) => setTimeout(r, 2000));
  try {
    await assert.rejects(
      backend.stat({ ...base, timeoutMs: 200, url: 's3://b/dir/obj.bin', objectStorage: options() }),
      (e: Error & { code?: string }) => e.code === 'TIMEOUT',
    );
  } finally {
    store.beforeRequest = undefined;
  }
});

test('put writes a file as the object in concurrent parts (a multipart upload), byte-exact', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dft-put-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // S3's smallest part is 5 MiB: three parts, the last one short.
  const chunkSize = 5 * 1024 * 1024;
  const bytes = randomBytes(2 * chunkSize + 12_345);
  const path = join(dir, 'f.bin');
  writeFileSync(path, bytes);
  const from = store.requests.length;
  await backend.put({
    taskId: 't',
    url: 's3://b/put/f.bin',
    path,
    chunkSize,
    concurrentChunkCount: 2,
    timeoutMs: 30_000,
    objectStorage: options(),
  });
  const parts = store.requests.slice(from).filter((r) => r.method === 'PUT');
  assert.equal(parts.length, 3, 'one PUT per part');
  assert.deepEqual(Buffer.from(await store.operator().read('put/f.bin')), bytes);
  assert.equal(await backend.exists({ ...base, url: 's3://b/put/f.bin', objectStorage: options() }), true);
  assert.equal(
    await backend.exists({ ...base, url: 's3://b/put/none.bin', objectStorage: options() }),
    false,
  );
});

test('put with a wrong key id is one permission line naming the flags, without the secret', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dft-put-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'f.bin');
  writeFileSync(path, 'x');
  await assert.rejects(
    backend.put({
      taskId: 't',
      url: 's3://b/put/denied.bin',
      path,
      chunkSize: 5 * 1024 * 1024,
      concurrentChunkCount: 2,
      timeoutMs: 30_000,
      objectStorage: { ...options(), accessKeyId: 'WRONGKEYID4242', accessKeySecret: 'hidden-secret-99' },
    }),
    (e: Error) => {
      assert.match(e.message, /^put s3:\/\/b\/put\/denied\.bin: permission denied by the s3 store/);
      assert.doesNotMatch(e.message, /hidden-secret-99|\n/);
      return true;
    },
  );
});
