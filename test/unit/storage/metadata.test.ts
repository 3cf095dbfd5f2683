import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { MetadataStore } from '../../../src/storage/metadata.js';

let dir: string;
let clock = 1_000_000;
const now = (): number => clock;

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'df-metadata-'));
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const fields = { pieceLength: 4, contentLength: 10, responseHeader: { etag: '"a"' } };
const piece = (taskId: string, number: number) => ({
  taskId,
  number,
  offset: number * 4,
  length: number === 2 ? 2 : 4,
  digest: `crc32:${number}`,
  trafficType: 0,
  costMs: 1.6,
});

test('upsertTask creates a task and updates lengths and header without touching createdAt', () => {
  const db = new MetadataStore(path.join(dir, 'upsert.db'), { now });
  try {
    clock = 1000;
    const t = db.upsertTask('t1', fields);
    assert.equal(t.id, 't1');
    assert.equal(t.pieceLength, 4);
    assert.equal(t.contentLength, 10);
    assert.deepEqual(t.responseHeader, { etag: '"a"' });
    assert.equal(t.createdAt.getTime(), 1000);
    assert.equal(t.finishedAt, undefined);
    assert.equal(t.failedAt, undefined);

    clock = 2000;
    const u = db.upsertTask('t1', { pieceLength: 8, contentLength: 20, responseHeader: {} });
    assert.equal(u.pieceLength, 8);
    assert.equal(u.contentLength, 20);
    assert.deepEqual(u.responseHeader, {});
    assert.equal(u.createdAt.getTime(), 1000);
    assert.equal(u.updatedAt.getTime(), 2000);
    assert.deepEqual(
      db.listTasks().map((x) => x.id),
      ['t1'],
    );
  } finally {
    db.close();
  }
});

test('failTask marks an unfinished task failed; upsert and finish clear the failure; a finished task never fails', () => {
  const db = new MetadataStore(path.join(dir, 'fail.db'), { now });
  try {
    clock = 10;
    db.upsertTask('t', fields);
    clock = 20;
    db.failTask('t');
    assert.equal(db.getTask('t')!.failedAt?.getTime(), 20);
    clock = 30;
    db.upsertTask('t', fields);
    assert.equal(db.getTask('t')!.failedAt, undefined, 'a new download attempt clears failedAt');
    db.failTask('t');
    clock = 40;
    db.finishTask('t');
    const done = db.getTask('t')!;
    assert.equal(done.finishedAt?.getTime(), 40);
    assert.equal(done.failedAt, undefined);
    clock = 50;
    db.failTask('t');
    assert.equal(db.getTask('t')!.failedAt, undefined, 'a finished task is not marked failed');
  } finally {
    db.close();
  }
});

test('pieces: finishPiece records, lists by number, counts bytes; deleteTask removes task and pieces', () => {
  const db = new MetadataStore(path.join(dir, 'pieces.db'), { now });
  try {
    db.upsertTask('a', fields);
    db.upsertTask('b', fields);
    clock = 500;
    db.finishPiece(piece('a', 2));
    const p0 = db.finishPiece({ ...piece('a', 0), parentId: 'peer-1', trafficType: 1 });
    assert.equal(p0.parentId, 'peer-1');
    assert.equal(p0.trafficType, 1);
    assert.equal(p0.costMs, 2, 'cost is rounded to whole ms');
    assert.equal(p0.finishedAt.getTime(), 500);
    db.finishPiece(piece('b', 1));
    assert.deepEqual(
      db.listPieces('a').map((p) => p.number),
      [0, 2],
    );
    assert.deepEqual(db.countPieces('a'), { count: 2, bytes: 6 });
    assert.equal(db.getTask('a')!.updatedAt.getTime(), 500, 'a finished piece touches its task');
    assert.equal(db.getPiece('a', 1), undefined);

    db.deleteTask('a');
    assert.equal(db.getTask('a'), undefined);
    assert.deepEqual(db.listPieces('a'), []);
    assert.deepEqual(db.countPieces('a'), { count: 0, bytes: 0 });
    assert.equal(db.listPieces('b').length, 1, 'other tasks keep their pieces');
  } finally {
    db.close();
  }
});

test('listTasks is least recently used first', () => {
  const db = new MetadataStore(path.join(dir, 'lru.db'), { now });
  try {
    clock = 1;
    db.upsertTask('old', fields);
    clock = 2;
    db.upsertTask('new', fields);
    clock = 3;
    db.touchTask('old');
    assert.deepEqual(
      db.listTasks().map((t) => t.id),
      ['new', 'old'],
    );
  } finally {
    db.close();
  }
});

test('upload counters never go below zero', () => {
  const db = new MetadataStore(path.join(dir, 'upload.db'), { now });
  try {
    db.upsertTask('t', fields);
    db.uploadTaskStarted('t');
    db.uploadTaskStarted('t');
    db.uploadTaskFinished('t');
    db.uploadTaskFailed('t');
    db.uploadTaskFailed('t');
    const t = db.getTask('t')!;
    assert.equal(t.uploadingCount, 0);
    assert.equal(t.uploadedCount, 1);
  } finally {
    db.close();
  }
});

test('rows survive close and reopen; clear removes everything', () => {
  const file = path.join(dir, 'reopen.db');
  const a = new MetadataStore(file, { now });
  a.upsertTask('t', fields);
  a.finishPiece(piece('t', 0));
  a.close();
  a.close(); // idempotent
  const b = new MetadataStore(file, { now });
  try {
    assert.equal(b.getTask('t')?.contentLength, 10);
    assert.equal(b.listPieces('t').length, 1);
    b.clear();
    assert.deepEqual(b.listTasks(), []);
    assert.deepEqual(b.listPieces('t'), []);
  } finally {
    b.close();
  }
});

test('a task records how its id was derived and its known digest; an older database gains the columns', () => {
  const file = path.join(dir, 'old-schema.db');
  // The tasks table as dfdaemon created it before id derivations were recorded.
  const old = new Database(file);
  old.exec(`CREATE TABLE tasks (id TEXT PRIMARY KEY, piece_length INTEGER, content_length INTEGER,
    response_header TEXT NOT NULL DEFAULT '{}', uploading_count INTEGER NOT NULL DEFAULT 0,
    uploaded_count INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
    prefetched_at INTEGER, failed_at INTEGER, finished_at INTEGER);
    INSERT INTO tasks (id, created_at, updated_at) VALUES ('legacy', 1, 1);`);
  old.close();
  const db = new MetadataStore(file, { now });
  try {
    const legacy = db.getTask('legacy')!;
    assert.equal(legacy.idDerivation, undefined);
    assert.equal(legacy.knownDigest, undefined);
    const t = db.upsertTask('t', { ...fields, idDerivation: 'url', knownDigest: `sha256:${'a'.repeat(64)}` });
    assert.equal(t.idDerivation, 'url');
    assert.equal(t.knownDigest, `sha256:${'a'.repeat(64)}`);
    assert.equal(db.upsertTask('t', { ...fields, idDerivation: 'content' }).knownDigest, undefined);
  } finally {
    db.close();
  }
  // Opening again finds the columns there.
  new MetadataStore(file, { now }).close();
});

test('an unopenable database path is an IO error naming the path', () => {
  const bad = path.join(dir, 'no-such-dir', 'x.db');
  assert.throws(
    () => new MetadataStore(bad),
    (e: unknown) => e instanceof Error && (e as { code?: string }).code === 'IO' && e.message.includes(bad),
  );
});
