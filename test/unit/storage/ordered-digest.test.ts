// A task's whole-content digest computed as its pieces are stored (storage/ordered-digest.ts) in the hash worker
// thread (storage/hash-worker.ts), against real files: pieces reported in any order give the file's digest; a piece
// never reported gives none; a file shorter than its pieces, a missing file and a closed job are errors the caller
// falls back from; two jobs share the thread; the thread ends when idle and starts again for the next job.

import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DfError } from '../../../src/core/errors.js';
import { pieceRanges } from '../../../src/core/piece.js';
import { HashWorker } from '../../../src/storage/hash-worker.js';
import { OrderedContentDigest } from '../../../src/storage/ordered-digest.js';
import { tempDir } from '../../helpers/daemon.js';

const PIECE = 1024 * 1024;

describe('OrderedContentDigest over the hash worker', () => {
  const dir = tempDir('dft-ordered-digest-');
  const worker = new HashWorker(200);
  after(async () => {
    await worker.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function file(name: string, bytes: Buffer): string {
    const path = join(dir, name);
    writeFileSync(path, bytes);
    return path;
  }

  const sha = (algorithm: string, b: Buffer) =>
    `${algorithm}:${createHash(algorithm).update(b).digest('hex')}`;

  test('pieces stored in any order give the digest of the whole file, sha256 and sha512', async () => {
    const bytes = randomBytes(5 * PIECE + 12_345);
    const path = file('any-order', bytes);
    const pieces = pieceRanges(bytes.length, PIECE);
    for (const algorithm of ['sha256', 'sha512'] as const) {
      const digest = new OrderedContentDigest(pieces, worker.job(path, algorithm));
      for (const n of [3, 0, 5, 1, 4, 2]) digest.pieceStored(n);
      digest.pieceStored(1); // reported twice: hashed once
      // Asked twice (the task's known digest and a download's --digest): one answer for both.
      assert.deepEqual(await Promise.all([digest.digest(), digest.digest()]), [
        sha(algorithm, bytes),
        sha(algorithm, bytes),
      ]);
    }
  });

  test('an empty task has the digest of nothing', async () => {
    const path = file('empty', Buffer.alloc(0));
    const digest = new OrderedContentDigest(pieceRanges(0, PIECE), worker.job(path, 'sha256'));
    assert.equal(await digest.digest(), sha('sha256', Buffer.alloc(0)));
  });

  test('a piece never reported stored: no digest (the caller checks the file itself)', async () => {
    const bytes = randomBytes(3 * PIECE);
    const path = file('gap', bytes);
    const digest = new OrderedContentDigest(pieceRanges(bytes.length, PIECE), worker.job(path, 'sha256'));
    digest.pieceStored(0);
    digest.pieceStored(2);
    assert.equal(await digest.digest(), undefined);
  });

  test('a file shorter than its pieces, a missing file and a closed job reject, naming the cause', async () => {
    const bytes = randomBytes(3 * PIECE);
    const path = file('short', bytes);
    truncateSync(path, 2 * PIECE + 10);
    const short = new OrderedContentDigest(pieceRanges(bytes.length, PIECE), worker.job(path, 'sha256'));
    for (const n of [0, 1, 2]) short.pieceStored(n);
    await assert.rejects(
      short.digest(),
      (e: unknown) => e instanceof DfError && e.code === 'IO' && /content ends at 2097162/.test(e.message),
    );

    const missing = new OrderedContentDigest(pieceRanges(10, PIECE), worker.job(join(dir, 'nope'), 'sha256'));
    missing.pieceStored(0);
    await assert.rejects(missing.digest(), (e: unknown) => e instanceof DfError && /ENOENT/.test(e.message));

    const closed = new OrderedContentDigest(pieceRanges(bytes.length, PIECE), worker.job(path, 'sha256'));
    for (const n of [0, 1, 2]) closed.pieceStored(n);
    closed.close();
    await assert.rejects(closed.digest(), (e: unknown) => e instanceof DfError && e.code === 'UNAVAILABLE');
  });

  test('two jobs share the thread; it ends when idle and starts again for the next job', async () => {
    const a = randomBytes(2 * PIECE + 1);
    const b = randomBytes(3 * PIECE);
    const da = new OrderedContentDigest(pieceRanges(a.length, PIECE), worker.job(file('a', a), 'sha256'));
    const db = new OrderedContentDigest(pieceRanges(b.length, PIECE), worker.job(file('b', b), 'sha256'));
    da.pieceStored(1);
    db.pieceStored(0);
    da.pieceStored(0);
    db.pieceStored(2);
    da.pieceStored(2);
    db.pieceStored(1);
    assert.deepEqual(await Promise.all([da.digest(), db.digest()]), [sha('sha256', a), sha('sha256', b)]);
    assert.equal(worker.running, true);
    await new Promise((r) => setTimeout(r, 600));
    assert.equal(worker.running, false, 'the idle thread ended');
    const again = new OrderedContentDigest(
      pieceRanges(a.length, PIECE),
      worker.job(join(dir, 'a'), 'sha256'),
    );
    for (const n of [2, 1, 0]) again.pieceStored(n);
    assert.equal(await again.digest(), sha('sha256', a));
  });
});
