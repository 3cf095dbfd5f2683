// s3:// end to end against a real S3-compatible server (s3rver): dfget → dfdaemon → opendal (stat, listing,
// presigned ranged GETs) — a multi-piece object byte-exact, P2P (a second peer takes it from the first, counted at
// the store), a missing object, wrong credentials (never logged), an object that changes between pieces, and a
// recursive download of a prefix with nested "directories".

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, rmSync, symlinkSync, existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { dfget, startDaemon, stopDaemon, tempDir, type DaemonHandle } from '../helpers/daemon.js';
import { startScheduler, stopScheduler, type SchedulerHandle } from '../helpers/scheduler-process.js';
import { S3rverStore, S3RVER_KEY } from '../helpers/s3rver.js';
import { downloadClient } from '../../src/cli/common.js';
import type { ListTaskEntriesRequest, ListTaskEntriesResponse } from '../../src/gen/dfdaemon.js';

const MiB = 1024 * 1024;
const BUCKET = 'models';
/** s3rver ignores the secret; a distinctive one shows whether any log line carries it. */
const SECRET = 'secret-7f3a9c-never-logged';
/** A seed fetches on the scheduler's behalf (a remote caller): the loopback store must be allowed. */
const SEED = 'seedPeer:\n  enable: true\n  type: super\nsecurity:\n  allowedPrivateSources: [127.0.0.1]\n';

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

function files(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
      else out.push(relative(dir, join(d, e.name)));
    }
  };
  walk(dir);
  return out.sort();
}

describe('s3:// through opendal against s3rver', () => {
  const store = new S3rverStore([BUCKET]);
  let scheduler: SchedulerHandle;
  let seed: DaemonHandle;
  const peers: DaemonHandle[] = [];
  const out = tempDir('dft-s3-out-');
  const flags = () => [...store.flags().slice(0, 6), '--storage-access-key-secret', SECRET];

  before(async () => {
    await store.start();
    scheduler = await startScheduler();
    seed = await startDaemon({ schedulerAddr: scheduler.addr, extraConfig: SEED });
    for (let i = 0; i < 2; i++) peers.push(await startDaemon({ schedulerAddr: scheduler.addr }));
  });

  after(async () => {
    for (const p of peers) await stopDaemon(p);
    await stopDaemon(seed);
    await stopScheduler(scheduler);
    await store.stop();
    rmSync(out, { recursive: true, force: true });
  });

  test('a 5-piece object arrives byte-exact; a second peer takes it from peers, not from the store', async () => {
    const data = randomBytes(18 * MiB);
    await store.put(BUCKET, 'llm/weights.bin', data);
    const url = `s3://${BUCKET}/llm/weights.bin`;

    const first = await dfget(peers[0]!, url, join(out, 'w0'), flags());
    assert.equal(first.code, 0, first.stderr);
    assert.equal(sha256(readFileSync(join(out, 'w0'))), sha256(data));
    const reads = store.pieceReads(BUCKET, 'llm/weights.bin');
    assert.equal(reads.length, 5, 'each of the 5 pieces read from the store once');
    assert.equal(new Set(reads.map((r) => r.range)).size, 5);

    const second = await dfget(peers[1]!, url, join(out, 'w1'), flags());
    assert.equal(second.code, 0, second.stderr);
    assert.equal(sha256(readFileSync(join(out, 'w1'))), sha256(data));
    assert.equal(
      store.pieceReads(BUCKET, 'llm/weights.bin').length,
      5,
      'the second peer read nothing from the store',
    );

    for (const d of [seed, ...peers]) {
      for (const line of d.logs) assert.ok(!line.includes(SECRET), `a log line carries the secret: ${line}`);
    }
  });

  test('a missing object is NOT_FOUND in one line', async () => {
    const r = await dfget(peers[0]!, `s3://${BUCKET}/no/such.bin`, join(out, 'missing'), flags());
    assert.equal(r.code, 1);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, /s3:\/\/models\/no\/such\.bin: NOT_FOUND: no such object in the s3 store/);
    assert.equal(existsSync(join(out, 'missing')), false);
  });

  test('wrong credentials are a permission error naming s3, and neither key reaches a log line', async () => {
    await store.put(BUCKET, 'private.bin', randomBytes(1024));
    const badId = 'WRONGKEYID4242';
    const badSecret = 'wrong-secret-4242';
    const args = ['--storage-endpoint', store.endpoint, '--storage-access-key-id', badId];
    const r = await dfget(peers[0]!, `s3://${BUCKET}/private.bin`, join(out, 'denied'), [
      ...args,
      '--storage-access-key-secret',
      badSecret,
    ]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /permission denied by the s3 store \(HTTP 403\): check --storage-access-key-id/);
    for (const text of [r.stderr, r.stdout, ...peers[0]!.logs, ...seed.logs]) {
      assert.ok(!text.includes(badSecret) && !text.includes(badId), `credential in: ${text}`);
    }
  });

  test('an object that changes between pieces fails the download; no output, never a mix', async () => {
    const key = 'changing.bin';
    await store.put(BUCKET, key, randomBytes(10 * MiB));
    // Every time the second piece is asked for, the object is replaced first: each attempt sees a new ETag.
    // s3rver writes an object in place, so the other requests for it wait for the replacement to finish (a real
    // store swaps versions atomically; a half-written file would answer 416, not a new version).
    let replacing: Promise<void> | undefined;
    store.beforeRequest = async (r) => {
      // The replacement's own PUT goes through.
      if (r.path !== `/${BUCKET}/${key}` || r.method === 'PUT') return;
      if (r.method === 'GET' && r.range?.startsWith(`bytes=${4 * MiB}-`)) {
        replacing = store.put(BUCKET, key, randomBytes(10 * MiB));
      }
      await replacing;
    };
    try {
      // A daemon on its own (no scheduler): pieces come from the store in order.
      const alone = await startDaemon();
      try {
        const r = await dfget(alone, `s3://${BUCKET}/${key}`, join(out, 'changing'), flags());
        assert.equal(r.code, 1, r.stderr);
        assert.match(r.stderr, /source changed during the download/);
        assert.equal(existsSync(join(out, 'changing')), false);
      } finally {
        await stopDaemon(alone);
      }
    } finally {
      store.beforeRequest = undefined;
    }
  });

  test('dfget -r downloads a prefix with nested directories; --include-files narrows it', async () => {
    const tree: Record<string, Buffer> = {
      'ds/a.txt': randomBytes(100),
      'ds/train/part-0.bin': randomBytes(5 * MiB),
      'ds/train/deep/part-1.bin': randomBytes(2000),
      'ds/eval/x.json': randomBytes(10),
      'other/not-me.txt': randomBytes(10),
    };
    for (const [k, v] of Object.entries(tree)) await store.put(BUCKET, k, v);

    const all = join(out, 'tree-all');
    mkdirSync(all);
    const r = await dfget(peers[0]!, `s3://${BUCKET}/ds`, all, ['-r', ...flags()]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(files(all), ['a.txt', 'eval/x.json', 'train/deep/part-1.bin', 'train/part-0.bin']);
    for (const f of files(all)) assert.equal(sha256(readFileSync(join(all, f))), sha256(tree[`ds/${f}`]!), f);

    const some = join(out, 'tree-some');
    mkdirSync(some);
    const r2 = await dfget(peers[1]!, `s3://${BUCKET}/ds/`, some, [
      '--include-files',
      'train/**',
      '--include-files',
      'a.txt',
      ...flags(),
    ]);
    assert.equal(r2.code, 0, r2.stderr);
    assert.deepEqual(files(some), ['a.txt', 'train/deep/part-1.bin', 'train/part-0.bin']);
  });

  test('a directory download refuses hostile patterns, too many files and a symlink in the output tree', async () => {
    const dir = join(out, 'hostile');
    mkdirSync(dir);
    for (const bad of ['../etc/passwd', '/abs', 'a/./b', 'x/[oops']) {
      const r = await dfget(peers[0]!, `s3://${BUCKET}/ds/`, dir, ['-I', bad, ...flags()]);
      assert.equal(r.code, 1, bad);
      assert.match(r.stderr, /^Error: invalid --include-files/, bad);
      assert.equal(r.stderr.trim().split('\n').length, 1);
    }
    const few = await dfget(peers[0]!, `s3://${BUCKET}/ds/`, dir, ['--max-files', '2', ...flags()]);
    assert.equal(few.code, 1);
    assert.match(few.stderr, /holds 4 files to download, more than --max-files 2/);

    const elsewhere = tempDir('dft-s3-elsewhere-');
    symlinkSync(elsewhere, join(dir, 'train'));
    try {
      const r = await dfget(peers[0]!, `s3://${BUCKET}/ds/`, dir, [
        '--max-concurrent-requests',
        '1',
        ...flags(),
      ]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /train is a symlink: a directory download never writes through it/);
      assert.deepEqual(readdirSync(elsewhere), [], 'nothing written through the symlink');
    } finally {
      rmSync(elsewhere, { recursive: true, force: true });
    }
  });

  test('ListTaskEntries on the download socket lists a prefix; a bad timeout is INVALID_ARGUMENT', async () => {
    await store.put(BUCKET, 'list/one.bin', randomBytes(7));
    await store.put(BUCKET, 'list/nested/two.bin', randomBytes(9));
    const client = downloadClient(peers[0]!.socket);
    const call = (r: Partial<ListTaskEntriesRequest>) =>
      new Promise<ListTaskEntriesResponse>((ok, fail) =>
        client.listTaskEntries(
          {
            taskId: '',
            url: `s3://${BUCKET}/list/`,
            requestHeader: {},
            certificateChain: [],
            objectStorage: { endpoint: store.endpoint, accessKeyId: S3RVER_KEY, accessKeySecret: SECRET },
            ...r,
          },
          (e, res) => (e ? fail(e) : ok(res)),
        ),
      );
    try {
      const res = await call({});
      const got = res.entries.filter((e) => !e.isDir).map((e) => [e.url, e.contentLength]);
      assert.deepEqual(got.sort(), [
        [`s3://${BUCKET}/list/nested/two.bin`, 9],
        [`s3://${BUCKET}/list/one.bin`, 7],
      ]);
      await assert.rejects(
        call({ timeout: { seconds: -1, nanos: 0 } }),
        /INVALID_ARGUMENT: timeout must be positive/,
      );
    } finally {
      client.close();
    }
  });
});
