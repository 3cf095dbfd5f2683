// PersistentCacheStore (dfcache import/export storage): the import staged and committed under a file-content id
// (the known-answer vector), hard link vs copy, piece digests, a file that changes while it is imported, a
// hard-linked file edited after the import (never served), TTL expiry, and pieces from a parent checked against
// their digest.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pieceDigest } from '../../../src/core/digest.js';
import { DfError } from '../../../src/core/errors.js';
import { DiskSpace } from '../../../src/storage/disk-space.js';
import { PersistentCacheStore } from '../../../src/storage/persistent-cache-store.js';

const isCode = (code: string) => (e: unknown) => e instanceof DfError && e.code === code;

let root: string;
before(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'df-pcstore-'));
});
after(() => fs.rmSync(root, { recursive: true, force: true }));

let n = 0;
async function openStore(o: { now?: () => number; keep?: boolean; dir?: string } = {}) {
  const dir = o.dir ?? path.join(root, `s${n++}`);
  const space = new DiskSpace({
    contentDir: path.join(dir, 'content'),
    reservePath: path.join(dir, 'reserve'),
    reserveBytes: 0,
  });
  const store = await PersistentCacheStore.open({
    dir,
    keep: o.keep ?? true,
    writeBufferSize: 4096,
    readBufferSize: 4096,
    space,
    now: o.now,
  });
  return { store, dir };
}

function file(name: string, content: string | Buffer): string {
  const p = path.join(root, `${n++}-${name}`);
  fs.writeFileSync(p, content);
  return p;
}

const FIELDS = { persistent: true, persistentReplicaCount: 2, ttlMs: 60 * 60 * 1000 };

test('known answer: "This is a test file", tag1, app1, piece length 1024 → the upstream task id', async () => {
  const { store } = await openStore();
  try {
    const src = file('vector', 'This is a test file');
    const staged = await store.stage({
      path: src,
      pieceLength: 1024,
      idFields: { tag: 'tag1', application: 'app1', pieceLength: 1024 },
    });
    assert.equal(staged.taskId, '7160a071a9acea5ac341e770c14d0211c38a4b15b3bbe2c5f848a706fd47419e');
    await store.discard(staged);
  } finally {
    store.close();
  }
});

test('a hard-linked import shares the inode; its pieces carry digests computed in the same pass', async () => {
  const { store } = await openStore();
  try {
    const data = Buffer.alloc(10_000, 7);
    const src = file('linked', data);
    const staged = await store.stage({ path: src, pieceLength: 4096, idFields: {} });
    assert.equal(staged.mode, 'link');
    const t = await store.commit(staged, FIELDS);
    assert.equal(fs.statSync(store.content.taskPath(t.id)).ino, fs.statSync(src).ino);
    const pieces = store.metadata.listPieces(t.id);
    assert.deepEqual(
      pieces.map((p) => [p.number, p.offset, p.length, p.digest]),
      [
        [0, 0, 4096, pieceDigest(data.subarray(0, 4096))],
        [1, 4096, 4096, pieceDigest(data.subarray(4096, 8192))],
        [2, 8192, 1808, pieceDigest(data.subarray(8192))],
      ],
    );
    assert.ok(t.finishedAt);
  } finally {
    store.close();
  }
});

test('with a given id the hard link is not read at import; digests are computed before a piece is served', async () => {
  const { store } = await openStore();
  try {
    const data = Buffer.from('abcdefgh');
    const src = file('lazy', data);
    const staged = await store.stage({ path: src, pieceLength: 4, taskId: 'a'.repeat(64), idFields: {} });
    const t = await store.commit(staged, FIELDS);
    assert.deepEqual(
      store.metadata.listPieces(t.id).map((p) => p.digest),
      ['', ''],
    );
    const served = await store.servablePiece(t.id, 1);
    assert.equal(served.digest, pieceDigest(data.subarray(4)));
    assert.equal(store.metadata.getPiece(t.id, 1)?.digest, served.digest);
  } finally {
    store.close();
  }
});

// An export of a fresh hard-linked import was 1.3 × a dfget of the same bytes: the parent read every piece twice on
// the request path (once for its CRC-32 in a buffer of its own, once to send it). fillDigests computes them after the
// import, in one pass.
test('fillDigests computes the digests a hard-linked import left empty, in one pass; not for a file edited since', async () => {
  const { store } = await openStore();
  try {
    const data = Buffer.from('abcdefghij');
    const t = await store.commit(
      await store.stage({ path: file('fill', data), pieceLength: 4, taskId: 'b'.repeat(64), idFields: {} }),
      FIELDS,
    );
    assert.equal(await store.fillDigests(t.id), 3);
    assert.deepEqual(
      store.metadata.listPieces(t.id).map((p) => p.digest),
      [data.subarray(0, 4), data.subarray(4, 8), data.subarray(8)].map((b) => pieceDigest(b)),
    );
    assert.equal(await store.fillDigests(t.id), 0, 'nothing left to compute');

    const src = file('fill-edited', data);
    const edited = await store.commit(
      await store.stage({ path: src, pieceLength: 4, taskId: 'c'.repeat(64), idFields: {} }),
      FIELDS,
    );
    fs.writeFileSync(src, 'ABCDEFGHIJ');
    assert.equal(await store.fillDigests(edited.id), 0);
    assert.deepEqual(
      store.metadata.listPieces(edited.id).map((p) => p.digest),
      ['', '', ''],
    );
    assert.equal(await store.fillDigests('d'.repeat(64)), 0, 'an unknown task');
  } finally {
    store.close();
  }
});

test('copy mode (no hard link): the content is a copy, and editing the source later changes nothing stored', async () => {
  const { store } = await openStore();
  try {
    const src = file('copied', 'hello world');
    const staged = await store.stage({ path: src, pieceLength: 4, idFields: {}, hardLink: false });
    assert.equal(staged.mode, 'copy');
    const t = await store.commit(staged, FIELDS);
    fs.writeFileSync(src, 'HELLO WORLD');
    assert.equal(fs.readFileSync(store.content.taskPath(t.id), 'utf8'), 'hello world');
    assert.equal((await store.servablePiece(t.id, 0)).digest, pieceDigest(Buffer.from('hell')));
  } finally {
    store.close();
  }
});

test('a hard-linked file edited after the import is never served (DIGEST_MISMATCH), and the task is marked failed', async () => {
  const { store } = await openStore();
  try {
    const src = file('edited', 'original bytes');
    const t = await store.commit(await store.stage({ path: src, pieceLength: 4, idFields: {} }), FIELDS);
    fs.appendFileSync(src, ' and more');
    await assert.rejects(store.servablePiece(t.id, 0), (e: unknown) => {
      assert.ok(isCode('DIGEST_MISMATCH')(e));
      assert.match((e as Error).message, /modified after the import/);
      return true;
    });
    assert.ok(store.metadata.get(t.id)?.failedAt);
  } finally {
    store.close();
  }
});

test('a file that changes while it is imported fails the import and leaves nothing behind', async () => {
  const { store } = await openStore();
  try {
    // Large enough that the pass takes several reads, each of which yields to the event loop: the file grows once
    // the copy's temporary file exists, i.e. while it is being read.
    const src = file('growing', Buffer.alloc(24 << 20, 1));
    const staging = store.stage({ path: src, pieceLength: 4 << 20, idFields: {}, hardLink: false });
    while (!fs.readdirSync(store.content.tasksDir).some((f) => f.startsWith('.import-'))) {
      await new Promise((r) => setImmediate(r));
    }
    fs.appendFileSync(src, 'more');
    await assert.rejects(staging, (e: unknown) => {
      assert.ok(isCode('SOURCE_CHANGED')(e), String(e));
      assert.match((e as Error).message, /changed while being imported/);
      return true;
    });
    const left = fs.readdirSync(store.content.tasksDir);
    assert.deepEqual(left, []);
  } finally {
    store.close();
  }
});

test('an import of an id already stored keeps the stored task until the new one is committed', async () => {
  const { store } = await openStore();
  try {
    const src = file('twice', 'same bytes');
    const first = await store.commit(await store.stage({ path: src, pieceLength: 4, idFields: {} }), FIELDS);
    const second = await store.stage({ path: src, pieceLength: 4, idFields: {}, hardLink: false });
    assert.equal(second.taskId, first.id);
    await store.discard(second);
    assert.ok((await store.get(first.id))?.finishedAt);
    assert.equal(fs.readFileSync(store.content.taskPath(first.id), 'utf8'), 'same bytes');
  } finally {
    store.close();
  }
});

test('TTL: a task past created_at + ttl is gone for readers and deleted by deleteExpired; not before', async () => {
  let now = Date.parse('2026-01-01T00:00:00Z');
  const { store } = await openStore({ now: () => now });
  try {
    const src = file('ttl', 'short lived');
    const t = await store.commit(
      await store.stage({ path: src, pieceLength: 4, idFields: {}, hardLink: false }),
      {
        ...FIELDS,
        ttlMs: 5 * 60 * 1000,
      },
    );
    now += 5 * 60 * 1000 - 1;
    assert.deepEqual(await store.deleteExpired(), []);
    assert.ok(await store.get(t.id));
    now += 1;
    assert.deepEqual(await store.deleteExpired(), [{ taskId: t.id, bytes: 11 }]);
    assert.equal(await store.get(t.id), undefined);
    assert.equal(fs.existsSync(store.content.taskPath(t.id)), false);
  } finally {
    store.close();
  }
});

test('a piece from a parent is stored only when it matches the digest the parent sent', async () => {
  const { store } = await openStore();
  try {
    const id = 'b'.repeat(64);
    await store.startDownload({ id, ...FIELDS, pieceLength: 4, contentLength: 8, pieceCount: 2 });
    async function* body(s: string) {
      yield Buffer.from(s);
    }
    const span = { number: 0, offset: 0, length: 4 };
    await assert.rejects(
      store.writePiece(id, span, body('abcd'), {
        parentId: 'p',
        expectedDigest: pieceDigest(Buffer.from('xxxx')),
        trafficType: 1,
      }),
      isCode('DIGEST_MISMATCH'),
    );
    assert.equal(store.metadata.getPiece(id, 0), undefined);
    const ok = await store.writePiece(id, span, body('abcd'), {
      parentId: 'p',
      expectedDigest: pieceDigest(Buffer.from('abcd')),
      trafficType: 1,
    });
    assert.equal(ok.parentId, 'p');
  } finally {
    store.close();
  }
});

// Found by test/interop/rust/dfcache.test.ts: the Rust dfdaemon serves the pieces of a hard-linked import with an
// empty digest; refusing them ("came without a digest") made every export of a Rust-imported task fail here.
test('a piece from a parent that sends no digest (a Rust hard-linked import) is stored with the digest computed here', async () => {
  const { store } = await openStore();
  try {
    const id = 'c'.repeat(64);
    await store.startDownload({ id, ...FIELDS, pieceLength: 4, contentLength: 4, pieceCount: 1 });
    async function* body() {
      yield Buffer.from('wxyz');
    }
    const piece = await store.writePiece(id, { number: 0, offset: 0, length: 4 }, body(), {
      parentId: 'rust',
      expectedDigest: '',
      trafficType: 1,
    });
    assert.equal(piece.digest, pieceDigest(Buffer.from('wxyz')));
    assert.equal(store.metadata.getPiece(id, 0)?.digest, pieceDigest(Buffer.from('wxyz')));
  } finally {
    store.close();
  }
});

test('keep: false wipes persistent cache tasks on open; keep: true keeps them', async () => {
  const first = await openStore();
  const src = file('kept', 'kept bytes');
  const t = await first.store.commit(
    await first.store.stage({ path: src, pieceLength: 4, idFields: {}, hardLink: false }),
    FIELDS,
  );
  first.store.close();
  const again = await openStore({ dir: first.dir, keep: true });
  assert.ok(await again.store.get(t.id));
  again.store.close();
  const wiped = await openStore({ dir: first.dir, keep: false });
  assert.equal(await wiped.store.get(t.id), undefined);
  wiped.store.close();
});
