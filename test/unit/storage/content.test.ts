import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pieceDigest } from '../../../src/core/digest.js';
import { DfError } from '../../../src/core/errors.js';
import { ContentStore } from '../../../src/storage/content.js';

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
  for await (const c of store.readPiece('write1', 3, data.length)) read.push(c as Buffer);
  assert.deepEqual(Buffer.concat(read), data);
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

test('hardLinkTask links; an existing link to the same file is fine; another file there is ALREADY_EXISTS', async () => {
  await store.createTask('link01', 4);
  await store.writePiece('link01', 0, 4, chunks(Buffer.from('data')));
  const to = path.join(dir, 'linked');
  await store.hardLinkTask('link01', to);
  assert.equal(fs.statSync(to).ino, fs.statSync(store.taskPath('link01')).ino);
  assert.equal(await store.isSameFile('link01', to), true);
  await store.hardLinkTask('link01', to); // already this content: ok

  const other = path.join(dir, 'other');
  fs.writeFileSync(other, 'data');
  await assert.rejects(store.hardLinkTask('link01', other), isCode('ALREADY_EXISTS'));
  assert.equal(await store.isSameFile('link01', other), false);
  assert.equal(fs.readFileSync(other, 'utf8'), 'data', 'the existing file is left alone');
  assert.equal(await store.isSameFile('link01', path.join(dir, 'nothing')), false);
});

const leftovers = (d: string): string[] => fs.readdirSync(d).filter((f) => f.includes('.dfget-'));

test('copyTask replaces an existing file atomically (a reader of the old file keeps the old bytes)', async () => {
  await store.createTask('copy01', 6);
  await store.writePiece('copy01', 0, 6, chunks(Buffer.from('newnew')));
  const outDir = fs.mkdtempSync(path.join(dir, 'copy-'));
  const to = path.join(outDir, 'out');
  fs.writeFileSync(to, 'old content');
  const oldFd = fs.openSync(to, 'r');
  try {
    await store.copyTask('copy01', to);
    assert.equal(fs.readFileSync(to, 'utf8'), 'newnew');
    // rename(2) swapped the directory entry; the old inode was never truncated or rewritten.
    const buf = Buffer.alloc(32);
    const n = fs.readSync(oldFd, buf, 0, 32, 0);
    assert.equal(buf.subarray(0, n).toString(), 'old content');
  } finally {
    fs.closeSync(oldFd);
  }
  assert.equal(await store.isSameFile('copy01', to), false);
  assert.deepEqual(leftovers(outDir), []);
});

test('copyTask failures leave neither a partial file nor a temporary one', async () => {
  await store.createTask('copy02', 6);
  const outDir = fs.mkdtempSync(path.join(dir, 'copyfail-'));

  // Missing parent directory: nothing can be created.
  await assert.rejects(store.copyTask('copy02', path.join(outDir, 'no', 'out')), isCode('IO'));

  // Destination is a non-empty directory: the copy into the temporary file succeeds, the rename fails,
  // and the temporary file must be removed.
  const asDir = path.join(outDir, 'isdir');
  fs.mkdirSync(asDir);
  fs.writeFileSync(path.join(asDir, 'x'), 'x');
  await assert.rejects(store.copyTask('copy02', asDir), (e: unknown) => e instanceof DfError);
  assert.deepEqual(leftovers(outDir), []);

  // Missing task content.
  await assert.rejects(store.copyTask('nosuchtask', path.join(outDir, 'out2')), isCode('IO'));
  assert.equal(fs.existsSync(path.join(outDir, 'out2')), false);
  assert.deepEqual(leftovers(outDir), []);
});

test('copyTask into a read-only directory fails and leaves nothing there', async (t) => {
  await store.createTask('copy03', 6);
  const ro = fs.mkdtempSync(path.join(dir, 'ro-'));
  let mounted = false;
  if (process.getuid?.() === 0) {
    // Root ignores directory permissions; a read-only mount stops it (EROFS).
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', ro], { stdio: 'pipe' });
      mounted = true;
    } catch (e) {
      t.skip(`root ignores directory permissions and a read-only tmpfs cannot be mounted: ${String(e)}`);
      return;
    }
  } else {
    fs.chmodSync(ro, 0o555);
  }
  try {
    await assert.rejects(
      store.copyTask('copy03', path.join(ro, 'out')),
      (e: unknown) => e instanceof DfError,
    );
    assert.deepEqual(fs.readdirSync(ro), []);
  } finally {
    if (mounted) execFileSync('umount', [ro]);
    else fs.chmodSync(ro, 0o755);
  }
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
