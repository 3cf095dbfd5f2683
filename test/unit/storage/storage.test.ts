import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pieceDigest } from '../../../src/core/digest.js';
import { DfError } from '../../../src/core/errors.js';
import { OutputFile } from '../../../src/daemon/output-file.js';
import { Storage, type StorageOptions } from '../../../src/storage/storage.js';

const isCode = (code: string) => (e: unknown) => e instanceof DfError && e.code === code;
const MiB = 1 << 20;

async function* chunks(...parts: Buffer[]): AsyncGenerator<Buffer> {
  for (const p of parts) yield p;
}

/** `data` in chunks of `size` bytes. */
async function* chunked(data: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

function pattern(length: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) b[i] = (i * 7 + seed) & 0xff;
  return b;
}

let root: string;
before(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'df-storage-'));
});
after(() => fs.rmSync(root, { recursive: true, force: true }));

let n = 0;
const options = (over: Partial<StorageOptions> = {}): StorageOptions => ({
  dir: path.join(root, `s${n++}`),
  keep: true,
  writeBufferSize: 4096,
  readBufferSize: 4096,
  ...over,
});
const header = {};

test('a piece is recorded only after its bytes are written', async () => {
  const s = await Storage.open(options());
  try {
    await s.prepareTask('task-a', { contentLength: 8, pieceLength: 4, responseHeader: { a: 'b' } });
    async function* observed(): AsyncGenerator<Buffer> {
      yield Buffer.from('ab');
      assert.equal(s.getPiece('task-a', 1), undefined, 'no row while the bytes are still streaming');
      yield Buffer.from('cd');
    }
    const p = await s.writePiece('task-a', { number: 1, offset: 4, length: 4 }, observed(), {
      trafficType: 1,
      parentId: 'parent-1',
    });
    assert.equal(p.digest, pieceDigest(Buffer.from('abcd')));
    assert.equal(p.parentId, 'parent-1');
    assert.equal(p.trafficType, 1);
    assert.deepEqual(s.getPiece('task-a', 1), p);
    assert.deepEqual(await s.content.readPieceBuffer('task-a', 4, 4), Buffer.from('abcd'));
    assert.deepEqual(s.getTask('task-a')?.responseHeader, { a: 'b' });
  } finally {
    s.close();
  }
});

test('a short or overlong source fails and leaves no piece row', async () => {
  const s = await Storage.open(options());
  try {
    await s.prepareTask('t', { contentLength: 8, pieceLength: 4, responseHeader: header });
    const piece = { number: 0, offset: 0, length: 4 };
    await assert.rejects(
      s.writePiece('t', piece, chunks(Buffer.from('abc')), { trafficType: 0 }),
      isCode('BACKEND'),
    );
    assert.equal(s.getPiece('t', 0), undefined);
    await assert.rejects(
      s.writePiece('t', piece, chunks(Buffer.from('abc'), Buffer.from('de')), { trafficType: 0 }),
      isCode('BACKEND'),
    );
    assert.equal(s.getPiece('t', 0), undefined);
    assert.deepEqual(s.listPieces('t'), []);
  } finally {
    s.close();
  }
});

test('expected digest: a match is stored, a mismatch or an empty digest is DIGEST_MISMATCH with no row', async () => {
  const s = await Storage.open(options());
  try {
    await s.prepareTask('t', { contentLength: 12, pieceLength: 4, responseHeader: header });
    const data = Buffer.from('wxyz');
    await assert.rejects(
      s.writePiece('t', { number: 0, offset: 0, length: 4 }, chunks(data), {
        trafficType: 1,
        parentId: 'p',
        expectedDigest: pieceDigest(Buffer.from('WXYZ')),
      }),
      isCode('DIGEST_MISMATCH'),
    );
    assert.equal(s.getPiece('t', 0), undefined);
    await assert.rejects(
      s.writePiece('t', { number: 1, offset: 4, length: 4 }, chunks(data), {
        trafficType: 1,
        parentId: 'p',
        expectedDigest: '',
      }),
      isCode('DIGEST_MISMATCH'),
    );
    assert.equal(s.getPiece('t', 1), undefined);
    const ok = await s.writePiece('t', { number: 2, offset: 8, length: 4 }, chunks(data), {
      trafficType: 1,
      parentId: 'p',
      expectedDigest: pieceDigest(data),
    });
    assert.equal(ok.number, 2);
    assert.deepEqual(
      s.listPieces('t').map((p) => p.number),
      [2],
    );
  } finally {
    s.close();
  }
});

test('task lifecycle through the facade: finish, fail, delete', async () => {
  const s = await Storage.open(options());
  try {
    await s.prepareTask('t', { contentLength: 4, pieceLength: 4, responseHeader: header });
    s.failTask('t');
    assert.ok(s.getTask('t')?.failedAt);
    await s.writePiece('t', { number: 0, offset: 0, length: 4 }, chunks(Buffer.from('1234')), {
      trafficType: 0,
    });
    s.finishTask('t');
    assert.ok(s.getTask('t')?.finishedAt);
    assert.equal(s.getTask('t')?.failedAt, undefined);
    await s.deleteTask('t');
    assert.equal(s.getTask('t'), undefined);
    assert.deepEqual(s.listPieces('t'), []);
    assert.equal(await s.content.hasTask('t'), false);
    assert.deepEqual(s.listTasks(), []);
  } finally {
    s.close();
  }
});

test('reopen with keep: true keeps tasks and pieces; keep: false wipes them', async () => {
  const o = options();
  const a = await Storage.open(o);
  await a.prepareTask('kept', { contentLength: 4, pieceLength: 4, responseHeader: header });
  await a.writePiece('kept', { number: 0, offset: 0, length: 4 }, chunks(Buffer.from('keep')), {
    trafficType: 0,
  });
  a.finishTask('kept');
  a.close();

  const b = await Storage.open(o);
  try {
    assert.ok(b.getTask('kept')?.finishedAt);
    assert.equal(b.listPieces('kept').length, 1);
    assert.deepEqual(await b.content.readPieceBuffer('kept', 0, 4), Buffer.from('keep'));
  } finally {
    b.close();
  }

  const c = await Storage.open({ ...o, keep: false });
  try {
    assert.deepEqual(c.listTasks(), []);
    assert.deepEqual(c.listPieces('kept'), []);
    assert.equal(await c.content.hasTask('kept'), false);
  } finally {
    c.close();
  }
});

test('a task whose content file vanished is dropped on open', async () => {
  const o = options();
  const a = await Storage.open(o);
  await a.prepareTask('gone', { contentLength: 4, pieceLength: 4, responseHeader: header });
  await a.writePiece('gone', { number: 0, offset: 0, length: 4 }, chunks(Buffer.from('gone')), {
    trafficType: 0,
  });
  await a.prepareTask('here', { contentLength: 4, pieceLength: 4, responseHeader: header });
  a.finishTask('gone');
  a.close();
  fs.rmSync(a.content.taskPath('gone'));

  const warned: object[] = [];
  const b = await Storage.open(o, { info: () => undefined, warn: (obj) => warned.push(obj) });
  try {
    assert.equal(b.getTask('gone'), undefined);
    assert.deepEqual(b.listPieces('gone'), []);
    assert.ok(b.getTask('here'));
    assert.deepEqual(warned, [{ taskId: 'gone' }]);
  } finally {
    b.close();
  }
});

test('prepareTask keeps pieces when the lengths are the same and drops them when they changed', async () => {
  const s = await Storage.open(options());
  try {
    await s.prepareTask('t', { contentLength: 8, pieceLength: 4, responseHeader: header });
    await s.writePiece('t', { number: 0, offset: 0, length: 4 }, chunks(Buffer.from('aaaa')), {
      trafficType: 0,
    });
    // No validator before or after: nothing tells the versions apart, the pieces stay.
    await s.prepareTask('t', { contentLength: 8, pieceLength: 4, responseHeader: { 'x-other': '1' } });
    assert.equal(s.listPieces('t').length, 1);
    assert.deepEqual(await s.content.readPieceBuffer('t', 0, 4), Buffer.from('aaaa'));

    s.finishTask('t');
    const changed = await s.prepareTask('t', { contentLength: 6, pieceLength: 4, responseHeader: header });
    assert.equal(changed.contentLength, 6);
    assert.equal(changed.finishedAt, undefined, 'a task with new content is not finished');
    assert.deepEqual(s.listPieces('t'), []);
    assert.equal(fs.statSync(s.content.taskPath('t')).size, 6);
    assert.deepEqual(await s.content.readPieceBuffer('t', 0, 6), Buffer.alloc(6), 'old bytes are gone');

    await s.writePiece('t', { number: 0, offset: 0, length: 4 }, chunks(Buffer.from('bbbb')), {
      trafficType: 0,
    });
    await s.prepareTask('t', { contentLength: 6, pieceLength: 2, responseHeader: header });
    assert.deepEqual(s.listPieces('t'), [], 'a new piece length drops pieces too');
  } finally {
    s.close();
  }
});

test('prepareTask keeps pieces of the same ETag / Last-Modified and drops them when the validator changed', async () => {
  const s = await Storage.open(options());
  const piece = async () => {
    await s.writePiece('v', { number: 0, offset: 0, length: 4 }, chunks(Buffer.from('aaaa')), {
      trafficType: 0,
    });
  };
  try {
    await s.prepareTask('v', {
      contentLength: 8,
      pieceLength: 4,
      responseHeader: { etag: '"1"', date: 'a' },
    });
    await piece();
    await s.prepareTask('v', {
      contentLength: 8,
      pieceLength: 4,
      responseHeader: { ETag: '"1"', date: 'b' },
    });
    assert.equal(s.listPieces('v').length, 1, 'same ETag: kept');

    await s.prepareTask('v', { contentLength: 8, pieceLength: 4, responseHeader: { etag: '"2"' } });
    assert.deepEqual(s.listPieces('v'), [], 'new ETag: dropped');
    assert.deepEqual(await s.content.readPieceBuffer('v', 0, 4), Buffer.alloc(4), 'old bytes are gone');

    await piece();
    await s.prepareTask('v', { contentLength: 8, pieceLength: 4, responseHeader: {} });
    assert.deepEqual(s.listPieces('v'), [], 'the ETag went away: dropped');

    const lm = 'Mon, 02 Jun 2025 10:00:00 GMT';
    await s.prepareTask('v', { contentLength: 8, pieceLength: 4, responseHeader: { 'last-modified': lm } });
    await piece();
    await s.prepareTask('v', { contentLength: 8, pieceLength: 4, responseHeader: { 'last-modified': lm } });
    assert.equal(s.listPieces('v').length, 1, 'same Last-Modified: kept');
    await s.prepareTask('v', {
      contentLength: 8,
      pieceLength: 4,
      responseHeader: { 'last-modified': 'Mon, 02 Jun 2025 10:00:01 GMT' },
    });
    assert.deepEqual(s.listPieces('v'), [], 'new Last-Modified: dropped');

    await piece();
    fs.rmSync(s.content.taskPath('v'));
    await s.prepareTask('v', { contentLength: 8, pieceLength: 4, responseHeader: { 'last-modified': lm } });
    assert.deepEqual(s.listPieces('v'), [], 'content file gone: its pieces are dropped');
  } finally {
    s.close();
  }
});

test('createTask refuses content larger than the free space with NO_SPACE and records nothing', async () => {
  const s = await Storage.open(options());
  try {
    const huge = 2 ** 52; // far beyond any test machine's disk
    await assert.rejects(
      s.prepareTask('huge', { contentLength: huge, pieceLength: 4 * MiB, responseHeader: header }),
      (e: unknown) =>
        isCode('NO_SPACE')(e) && /not enough disk space for task huge/.test((e as Error).message),
    );
    assert.equal(s.getTask('huge'), undefined);
    assert.equal(await s.content.hasTask('huge'), false);
  } finally {
    s.close();
  }
});

test('ENOSPC during a piece write (content file on /dev/full) is NO_SPACE with no piece row', async (t) => {
  if (!fs.existsSync('/dev/full')) {
    t.skip('/dev/full is not available on this platform');
    return;
  }
  const s = await Storage.open(options());
  try {
    await s.prepareTask('full', { contentLength: 4096, pieceLength: 4096, responseHeader: header });
    fs.rmSync(s.content.taskPath('full'));
    fs.symlinkSync('/dev/full', s.content.taskPath('full'));
    await assert.rejects(
      s.writePiece('full', { number: 0, offset: 0, length: 4096 }, chunked(pattern(4096, 1), 1024), {
        trafficType: 0,
      }),
      (e: unknown) => isCode('NO_SPACE')(e) && /no space left on device/.test((e as Error).message),
    );
    assert.equal(s.getPiece('full', 0), undefined);
  } finally {
    s.close();
  }
});

// A real full filesystem: an 8 MiB tmpfs. Needs root and a kernel that lets us mount (not every container does).
let mountDir: string | undefined;
let mounted = false;
function tryMount(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root to mount a tmpfs';
  mountDir = fs.mkdtempSync(path.join(os.tmpdir(), 'df-storage-tmpfs-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', mountDir], { stdio: 'pipe' });
    mounted = true;
    return undefined;
  } catch (e) {
    return `cannot mount a tmpfs: ${String((e as { stderr?: Buffer }).stderr ?? e).trim()}`;
  }
}
after(() => {
  if (mounted) execFileSync('umount', [mountDir!]);
  if (mountDir) fs.rmSync(mountDir, { recursive: true, force: true });
});

test('full disk on a real 8 MiB tmpfs: NO_SPACE up front and mid-write, earlier pieces intact', async (t) => {
  const why = tryMount();
  if (why) {
    t.skip(why);
    return;
  }
  const s = await Storage.open({
    dir: mountDir!,
    keep: true,
    writeBufferSize: 64 * 1024,
    readBufferSize: 64 * 1024,
  });
  try {
    // A task stored while there is room.
    const earlier = pattern(MiB, 3);
    await s.prepareTask('earlier', { contentLength: MiB, pieceLength: MiB, responseHeader: header });
    const stored = await s.writePiece(
      'earlier',
      { number: 0, offset: 0, length: MiB },
      chunked(earlier, 64 * 1024),
      {
        trafficType: 0,
      },
    );

    // 16 MiB cannot fit in 8 MiB: refused before a byte is written.
    await assert.rejects(
      s.prepareTask('big', { contentLength: 16 * MiB, pieceLength: 4 * MiB, responseHeader: header }),
      (e: unknown) => isCode('NO_SPACE')(e) && /need 16777216 bytes/.test((e as Error).message),
    );
    assert.equal(s.getTask('big'), undefined);

    // A 4 MiB task fits when created (the file is sparse), then another file takes the space, leaving about
    // 1 MiB: the piece write runs out of space part way through.
    await s.prepareTask('late', { contentLength: 4 * MiB, pieceLength: 4 * MiB, responseHeader: header });
    const st = fs.statfsSync(mountDir!);
    const filler = path.join(mountDir!, 'filler');
    const fillBytes = st.bavail * st.bsize - MiB;
    assert.ok(fillBytes > 0, `tmpfs has only ${st.bavail * st.bsize} bytes free`);
    const copyTo = path.join(mountDir!, 'copy-of-earlier');
    fs.writeFileSync(copyTo, 'old');
    fs.writeFileSync(filler, Buffer.alloc(fillBytes, 1));
    await assert.rejects(
      s.writePiece(
        'late',
        { number: 0, offset: 0, length: 4 * MiB },
        chunked(pattern(4 * MiB, 5), 64 * 1024),
        {
          trafficType: 0,
        },
      ),
      (e: unknown) => isCode('NO_SPACE')(e) && /no space left on device/.test((e as Error).message),
    );
    assert.equal(s.getPiece('late', 0), undefined);

    // The earlier task is unharmed: same row, same bytes.
    assert.deepEqual(s.getPiece('earlier', 0), stored);
    const back = await s.content.readPieceBuffer('earlier', 0, MiB);
    assert.equal(pieceDigest(back), stored.digest);
    assert.ok(back.equals(earlier));

    // A copy out of the task that runs out of space leaves the old file and no temporary file.
    // (The output sits beside content/ on the one small mount: the storage-directory check is pointed at content/.)
    const out = await OutputFile.open({
      path: copyTo,
      caller: { kind: 'internal' },
      overwrite: true,
      storageDir: path.join(mountDir!, 'content'),
    });
    await assert.rejects(out.copy(s.content.taskPath('earlier')), isCode('NO_SPACE'));
    await out.close();
    assert.equal(fs.readFileSync(copyTo, 'utf8'), 'old');
    assert.deepEqual(
      fs.readdirSync(mountDir!).filter((f) => f.includes('.dfget-')),
      [],
    );

    // With the space back, the same piece is written and recorded.
    fs.rmSync(filler);
    const retried = await s.writePiece(
      'late',
      { number: 0, offset: 0, length: 4 * MiB },
      chunked(pattern(4 * MiB, 5), 64 * 1024),
      {
        trafficType: 0,
      },
    );
    assert.equal(retried.digest, pieceDigest(pattern(4 * MiB, 5)));
  } finally {
    s.close();
  }
});
