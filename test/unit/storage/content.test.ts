import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pieceDigest } from '../../../src/core/digest.js';
import { DfError } from '../../../src/core/errors.js';
import { ContentStore } from '../../../src/storage/content.js';
import { sendFileRange } from '../../../src/core/range-sender.js';

const isCode = (code: string) => (e: unknown) => e instanceof DfError && e.code === code;

async function* chunks(...parts: Array<Buffer | Uint8Array>): AsyncGenerator<Buffer | Uint8Array> {
  for (const p of parts) yield p;
}

let dir: string;
let store: ContentStore;

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'df-content-'));
  // A small write buffer so that one piece takes several coalesced writes.
  store = new ContentStore({ dir: path.join(dir, 'storage'), writeBufferSize: 5, readBufferSize: 3 });
  await store.init();
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

test('createTask makes a sparse file of the content length under tasks/{id[0..3]}/{id}', async () => {
  const p = await store.createTask('abcdef', 100);
  assert.equal(p, path.join(dir, 'storage', 'content', 'tasks', 'abc', 'abcdef'));
  assert.equal(fs.statSync(p).size, 100);
  assert.equal(await store.hasTask('abcdef'), true);
  assert.equal(await store.hasTask('nothere'), false);
});

test('createTask keeps the bytes of an existing file of the same length', async () => {
  await store.createTask('keep01', 8);
  await store.writePiece('keep01', 0, 8, chunks(Buffer.from('12345678')));
  await store.createTask('keep01', 8);
  assert.equal(fs.readFileSync(store.taskPath('keep01'), 'utf8'), '12345678');
});

test('writePiece streams chunks to the offset and returns length and crc32 digest', async () => {
  await store.createTask('write1', 20);
  const data = Buffer.from('hello, dragonfly!');
  const w = await store.writePiece(
    'write1',
    3,
    data.length,
    chunks(data.subarray(0, 2), data.subarray(2, 9), new Uint8Array(data.subarray(9))),
  );
  assert.deepEqual(w, { length: data.length, digest: pieceDigest(data) });
  const file = fs.readFileSync(store.taskPath('write1'));
  assert.deepEqual(file.subarray(3, 3 + data.length), data);
  assert.deepEqual(file.subarray(0, 3), Buffer.alloc(3));
  assert.deepEqual(await store.readPieceBuffer('write1', 3, data.length), data);
  const read: Buffer[] = [];
  const out = new Writable({ write: (c: Buffer, _e, cb) => (read.push(Buffer.from(c)), cb()) });
  const fh = await store.openFile('write1');
  try {
    // readBufferSize 3: the piece goes out in several reads of the store's reused buffers.
    assert.equal(await sendFileRange(fh, 3, data.length, out, store.readBuffers), data.length);
  } finally {
    await fh.close();
  }
  assert.deepEqual(Buffer.concat(read), data);
});

test('writePiece keeps a chunk only until it asks for the next: a source that reuses one buffer stores right', async () => {
  // As the HTTP agent does: every chunk is the same buffer, refilled once the reader asks for more.
  const data = Buffer.from('the quick brown fox jumps over the lazy dog');
  async function* reused(): AsyncGenerator<Buffer> {
    const buf = Buffer.alloc(3);
    for (let at = 0; at < data.length; at += 3) {
      const n = data.copy(buf, 0, at, at + 3);
      yield buf.subarray(0, n);
      buf.fill(0x58); // scribbled as soon as the reader comes back
    }
  }
  await store.createTask('reuse1', data.length);
  const w = await store.writePiece('reuse1', 0, data.length, reused());
  assert.deepEqual(w, { length: data.length, digest: pieceDigest(data) });
  assert.deepEqual(fs.readFileSync(store.taskPath('reuse1')), data);
});

test('writePiece fails on a short source and on an overlong one, without writing past the piece', async () => {
  await store.createTask('short1', 12);
  await assert.rejects(store.writePiece('short1', 0, 6, chunks(Buffer.from('abc'))), (e: unknown) => {
    return isCode('BACKEND')(e) && /after 3 of 6 bytes/.test((e as Error).message);
  });
  await assert.rejects(
    store.writePiece('short1', 0, 6, chunks(Buffer.from('abcd'), Buffer.from('efgh'))),
    (e: unknown) => isCode('BACKEND')(e) && /more than its 6 bytes/.test((e as Error).message),
  );
  // The overlong chunk is rejected before it is written: the next piece's bytes are untouched.
  assert.deepEqual(fs.readFileSync(store.taskPath('short1')).subarray(6), Buffer.alloc(6));
});

test('writePiece to a task without a content file is an IO error', async () => {
  await assert.rejects(store.writePiece('missing', 0, 1, chunks(Buffer.from('x'))), isCode('IO'));
});

test('a source error is passed through as the write error', async () => {
  await store.createTask('srcerr', 4);
  async function* failing(): AsyncGenerator<Buffer> {
    yield Buffer.from('ab');
    throw new DfError('TIMEOUT', 'origin stalled');
  }
  await assert.rejects(store.writePiece('srcerr', 0, 4, failing()), isCode('TIMEOUT'));
});

test('sealTask makes the content read-only with the finish time; checkSealed sees an edit or a truncation', async () => {
  await store.createTask('seal01', 4);
  await store.writePiece('seal01', 0, 4, chunks(Buffer.from('data')));
  const finishedAt = new Date(Date.now() - 60_000);
  store.sealTask('seal01', finishedAt);
  const p = store.taskPath('seal01');
  assert.equal(fs.statSync(p).mode & 0o777, 0o444);
  assert.equal(await store.checkSealed('seal01', 4, finishedAt), undefined);
  // Made writable again (chmod by its owner): sealed again, the bytes being unchanged.
  fs.chmodSync(p, 0o644);
  assert.equal(await store.checkSealed('seal01', 4, finishedAt), undefined);
  assert.equal(fs.statSync(p).mode & 0o777, 0o444);
  // Edited in place through a hard link (root writes a 0444 file): modified after it finished.
  const out = path.join(dir, 'seal01-output');
  fs.linkSync(p, out);
  fs.chmodSync(out, 0o644);
  fs.writeFileSync(out, 'DATA');
  assert.match(
    (await store.checkSealed('seal01', 4, finishedAt)) ?? '',
    /modified at .* after the task finished/,
  );
  fs.truncateSync(out, 2);
  assert.match((await store.checkSealed('seal01', 4, finishedAt)) ?? '', /2 bytes, not 4/);
});

test('deleteTask removes the file and is idempotent; clear removes all content', async () => {
  await store.createTask('del001', 4);
  await store.deleteTask('del001');
  assert.equal(await store.hasTask('del001'), false);
  await store.deleteTask('del001');
  await store.createTask('del002', 4);
  await store.clear();
  assert.equal(await store.hasTask('del002'), false);
  assert.deepEqual(fs.readdirSync(store.tasksDir), []);
});

test('writePiece whose content file cannot be opened ends the source at once instead of leaving it unread', async () => {
  let closed = false;
  // An endless body, as a source response whose reader never comes would be: only its own cleanup ends it.
  async function* endless(): AsyncGenerator<Buffer> {
    try {
      for (;;) {
        await new Promise((r) => setImmediate(r));
        yield Buffer.alloc(4);
      }
    } finally {
      closed = true;
    }
  }
  await assert.rejects(store.writePiece('never-created', 0, 8, endless()), (e: unknown) => {
    assert.ok(e instanceof DfError);
    assert.match(e.message, /open content of task never-created/);
    return true;
  });
  for (let i = 0; i < 50 && !closed; i++) await new Promise((r) => setImmediate(r));
  assert.equal(closed, true, 'the source was ended');
});
