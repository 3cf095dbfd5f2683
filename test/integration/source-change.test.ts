// An origin whose object changes under a download (issue 16, item 2): the output is entirely one version — the new
// one, or a clear error — never pieces of both; a partial task is checked against the origin before it is resumed;
// a --digest mismatch drops the task; the proxy never serves a mixed task under the old ETag.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import {
  Origin,
  contentSha256,
  contentSlice,
  type OriginFile,
  type OriginRequest,
} from '../helpers/origin.js';
import { dfget, startDaemon, stopDaemon, tempDir, type DaemonHandle } from '../helpers/daemon.js';
import { curl } from '../helpers/curl.js';
import { sha256File } from '../helpers/files.js';

const MiB = 1024 * 1024;
/** 10 pieces of 4 MiB: big enough for the P2P flow and several pieces in flight. */
const SIZE = 40 * MiB;
const PIECES = 10;
const DATE_1 = 'Mon, 02 Jun 2025 10:00:00 GMT';
const DATE_2 = 'Tue, 03 Jun 2025 11:30:00 GMT';

const isPiece = (r: OriginRequest) => r.method === 'GET' && !!r.range && r.range !== 'bytes=0-0';
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Switches the file to `to` (bytes and headers) when its `at`-th piece request (1-based) is about to be answered. */
function switchAt(at: number, to: Pick<OriginFile, 'seed' | 'headers'>): OriginFile['beforeAnswer'] {
  let pieces = 0;
  return (r, f) => {
    if (isPiece(r) && ++pieces === at) Object.assign(f, to);
  };
}

/** A new version (seed and ETag) every `every` piece requests: no download can finish. */
function switchEvery(every: number): OriginFile['beforeAnswer'] {
  let pieces = 0;
  return (r, f) => {
    if (isPiece(r) && ++pieces % every === 0) {
      f.seed++;
      f.headers = { etag: `"v${f.seed}"` };
    }
  };
}

/** Answers the first `n` piece requests; holds every later one (until the daemon that asked is gone). */
function holdAfter(n: number): OriginFile['beforeAnswer'] {
  let pieces = 0;
  return (r) => (isPiece(r) && ++pieces > n ? new Promise<void>(() => undefined) : undefined);
}

function storedPieces(d: DaemonHandle): number {
  const db = new Database(join(d.storageDir, 'metadata', 'dfdaemon.db'), { readonly: true });
  try {
    return (db.prepare('SELECT COUNT(*) AS n FROM pieces').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

async function until(what: string, cond: () => boolean, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('an origin that changes during a download', () => {
  const origin = new Origin();
  let daemon: DaemonHandle;
  let out: string;

  before(async () => {
    await origin.start();
    daemon = await startDaemon();
    out = tempDir('dft-out-');
  });

  after(async () => {
    await stopDaemon(daemon);
    await origin.stop();
    rmSync(out, { recursive: true, force: true });
  });

  test('(a) new ETag mid-download, origin honours If-Match: the output is entirely the new version', async () => {
    const url = origin.add('/etag-412', {
      size: SIZE,
      seed: 101,
      headers: { etag: '"v1"' },
      beforeAnswer: switchAt(4, { seed: 102, headers: { etag: '"v2"' } }),
    });
    const file = join(out, 'etag-412');
    const r = await dfget(daemon, url, file);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await sha256File(file), contentSha256(102, SIZE), 'entirely v2');
    const pieces = origin.pieceRequests('/etag-412');
    assert.ok(
      pieces.some((p) => p.headers['if-match'] === '"v1"'),
      'pieces asked If-Match: "v1"',
    );
    assert.ok(
      pieces.every((p) => p.headers['if-match'] !== undefined),
      'every piece request is conditional',
    );
    // The stored task is v2 only: a cache hit gives the same bytes.
    const again = join(out, 'etag-412-again');
    assert.equal((await dfget(daemon, url, again)).code, 0);
    assert.equal(await sha256File(again), contentSha256(102, SIZE));
  });

  test('(a) new ETag mid-download, origin ignores If-Match: the answers’ ETag gives it away', async () => {
    const url = origin.add('/etag-ignored', {
      size: SIZE,
      seed: 111,
      headers: { etag: '"v1"' },
      ignorePreconditions: true,
      beforeAnswer: switchAt(4, { seed: 112, headers: { etag: '"v2"' } }),
    });
    const file = join(out, 'etag-ignored');
    const r = await dfget(daemon, url, file);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await sha256File(file), contentSha256(112, SIZE), 'entirely v2');
  });

  test('(a) an origin that keeps changing: a clear error, no output, exit 1', async () => {
    const url = origin.add('/etag-unstable', {
      size: SIZE,
      seed: 121,
      headers: { etag: '"v121"' },
      beforeAnswer: switchEvery(3),
    });
    const file = join(out, 'etag-unstable');
    const r = await dfget(daemon, url, file);
    assert.equal(r.code, 1);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /^Error: source changed during the download: .*etag-unstable/);
    assert.equal(existsSync(file), false, 'no output');
  });

  test('(d) Last-Modified only, origin honours If-Unmodified-Since: entirely the new version', async () => {
    const url = origin.add('/lm-412', {
      size: SIZE,
      seed: 131,
      headers: { 'last-modified': DATE_1 },
      beforeAnswer: switchAt(4, { seed: 132, headers: { 'last-modified': DATE_2 } }),
    });
    const file = join(out, 'lm-412');
    const r = await dfget(daemon, url, file);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await sha256File(file), contentSha256(132, SIZE), 'entirely v2');
    const pieces = origin.pieceRequests('/lm-412');
    assert.ok(pieces.some((p) => p.headers['if-unmodified-since'] === DATE_1));
    assert.ok(pieces.every((p) => p.headers['if-match'] === undefined));
  });

  test('(d) Last-Modified only, origin ignores the precondition: the answers’ Last-Modified gives it away', async () => {
    const url = origin.add('/lm-ignored', {
      size: SIZE,
      seed: 141,
      headers: { 'last-modified': DATE_1 },
      ignorePreconditions: true,
      beforeAnswer: switchAt(4, { seed: 142, headers: { 'last-modified': DATE_2 } }),
    });
    const file = join(out, 'lm-ignored');
    const r = await dfget(daemon, url, file);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await sha256File(file), contentSha256(142, SIZE), 'entirely v2');
  });

  test('(e) an origin without any validator still works; piece requests are unconditional', async () => {
    const url = origin.add('/no-validator', { size: SIZE, seed: 151 });
    const file = join(out, 'no-validator');
    const r = await dfget(daemon, url, file);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await sha256File(file), contentSha256(151, SIZE));
    const pieces = origin.pieceRequests('/no-validator');
    assert.equal(pieces.length, PIECES);
    for (const p of pieces) {
      assert.equal(p.headers['if-match'], undefined);
      assert.equal(p.headers['if-unmodified-since'], undefined);
    }
  });

  for (const mode of ['hard-link', 'transfer'] as const) {
    test(`(c) a --digest mismatch drops the task: the next dfget fetches from the origin (${mode} mode)`, async () => {
      const path = `/digest-${mode}`;
      const size = 9 * MiB;
      // No validator: only dropping the task can make the next dfget ask the origin again.
      const url = origin.add(path, { size, seed: 161 });
      const extra = mode === 'transfer' ? ['--transfer-from-dfdaemon'] : [];
      const bad = await dfget(daemon, url, join(out, `digest-${mode}`), [
        ...extra,
        '--digest',
        `sha256:${contentSha256(162, size)}`,
      ]);
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /digest mismatch/);
      assert.equal(existsSync(join(out, `digest-${mode}`)), false);

      origin.files.get(path)!.seed = 162;
      const before = origin.pieceRequests(path).length;
      const file = join(out, `digest-${mode}-again`);
      const r = await dfget(daemon, url, file, extra);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(origin.pieceRequests(path).length - before, 3, 'every piece fetched again');
      assert.equal(await sha256File(file), contentSha256(162, size), 'the fresh bytes');
    });
  }

  test('the proxy never serves a mixed task, nor the old ETag after a change', async () => {
    const path = '/proxied';
    const url = origin.add(path, {
      size: SIZE,
      seed: 171,
      headers: { etag: '"v1"' },
      beforeAnswer: switchAt(4, { seed: 172, headers: { etag: '"v2"' } }),
    });
    const proxy = `http://127.0.0.1:${daemon.proxyPort}`;
    const args = ['-x', proxy, '-H', 'X-Dragonfly-Use-P2P: true', url];
    const v1 = contentSlice(171, 0, SIZE);
    const v2 = contentSlice(172, 0, SIZE);

    // The first answer went out with v1's headers before the change: it is cut short, a prefix of v1 only.
    const first = await curl(args);
    if (first.code === 0 && first.body.length === SIZE) {
      assert.equal(first.headers['etag'], '"v2"');
      assert.equal(sha(first.body), sha(v2));
    } else {
      assert.ok(first.body.length < SIZE, `a cut answer: ${first.body.length} bytes, curl ${first.code}`);
      assert.ok(first.body.equals(v1.subarray(0, first.body.length)), 'a prefix of v1');
    }
    // The task was dropped: the next request gets v2 whole, under v2's ETag.
    const second = await curl(args);
    assert.equal(second.code, 0, second.stderr);
    assert.equal(second.status, 200);
    assert.equal(second.headers['etag'], '"v2"');
    assert.equal(sha(second.body), sha(v2));
  });
});

describe('a partial task left by kill -9 is checked before it is resumed', () => {
  /** Starts a download, lets `kept` pieces finish, kills dfdaemon with -9; returns the daemon's dir. */
  async function partialTask(origin: Origin, path: string, url: string, kept: number): Promise<string> {
    const dir = tempDir();
    const out = tempDir('dft-out-');
    const file = origin.files.get(path)!;
    file.beforeAnswer = holdAfter(kept);
    let daemon: DaemonHandle | undefined;
    try {
      daemon = await startDaemon({ dir });
      const d = daemon;
      const first = dfget(d, url, join(out, 'partial'));
      await until(`${kept} pieces stored`, () => storedPieces(d) >= kept);
      await stopDaemon(d, { keepDir: true, signal: 'SIGKILL' });
      assert.notEqual((await first).code, 0);
      assert.equal(storedPieces(d), kept);
      return dir;
    } catch (e) {
      if (daemon) await stopDaemon(daemon);
      rmSync(dir, { recursive: true, force: true });
      throw e;
    } finally {
      file.beforeAnswer = undefined;
      rmSync(out, { recursive: true, force: true });
    }
  }

  for (const validator of ['etag', 'last-modified'] as const) {
    test(`(b) the origin changed meanwhile (${validator}): the output is entirely the new version`, async () => {
      const origin = new Origin();
      await origin.start();
      const out = tempDir('dft-out-');
      const v1: Record<string, string> =
        validator === 'etag' ? { etag: '"v1"' } : { 'last-modified': DATE_1 };
      const v2: Record<string, string> =
        validator === 'etag' ? { etag: '"v2"' } : { 'last-modified': DATE_2 };
      const url = origin.add('/resumed', { size: SIZE, seed: 201, headers: v1 });
      const dir = await partialTask(origin, '/resumed', url, 4);
      Object.assign(origin.files.get('/resumed')!, { seed: 202, headers: v2 });
      const daemon = await startDaemon({ dir });
      try {
        const before = origin.pieceRequests('/resumed').length;
        const r = await dfget(daemon, url, join(out, 'resumed'));
        assert.equal(r.code, 0, r.stderr);
        assert.equal(await sha256File(join(out, 'resumed')), contentSha256(202, SIZE), 'entirely v2');
        assert.equal(origin.pieceRequests('/resumed').length - before, PIECES, 'every piece fetched again');
      } finally {
        await stopDaemon(daemon);
        await origin.stop();
        rmSync(out, { recursive: true, force: true });
      }
    });
  }

  test('(e) an origin without any validator: the resume stats it and keeps the pieces', async () => {
    const origin = new Origin();
    await origin.start();
    const out = tempDir('dft-out-');
    const url = origin.add('/plain', { size: SIZE, seed: 211 });
    const dir = await partialTask(origin, '/plain', url, 4);
    const daemon = await startDaemon({ dir });
    try {
      const before = origin.requests.length;
      const r = await dfget(daemon, url, join(out, 'plain'));
      assert.equal(r.code, 0, r.stderr);
      assert.equal(await sha256File(join(out, 'plain')), contentSha256(211, SIZE));
      const after = origin.requests.slice(before);
      assert.equal(
        after.filter((q) => q.range === 'bytes=0-0').length,
        1,
        'the resume stats the origin once',
      );
      assert.equal(after.filter(isPiece).length, PIECES - 4, 'only the missing pieces');
    } finally {
      await stopDaemon(daemon);
      await origin.stop();
      rmSync(out, { recursive: true, force: true });
    }
  });
});
