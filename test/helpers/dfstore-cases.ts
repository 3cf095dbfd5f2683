// The dfstore cases, run against s3rver (test/integration/dfstore.test.ts) and MinIO (test/e2e/dfstore-minio.test.ts):
// daemons on loopback with dfscheduler (its own process, so the importer can go away) and a real S3 server; import on A writes the object (a multipart upload) and a second persistent replica is
// placed on another peer; exports on B are byte-exact and read nothing from the store; with A stopped, C still
// exports from the replica; an object no peer holds is exported from the store. Bad input: wrong credentials,
// a missing object, a missing region, an object that exists, a hostile output path — each one clear line, and
// no secret in any output or log.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DIST, run, startDaemon, stopDaemon, tempDir, type DaemonHandle } from './daemon.js';
import type { Operator } from 'opendal';
import { sha256File } from './files.js';
import type { ObjectStoreUnderTest } from './object-store.js';
import { startScheduler, stopScheduler, type SchedulerHandle } from './scheduler-process.js';
import { persistentTaskId } from '../../src/core/task-id.js';

const DFSTORE = join(DIST, 'src/cli/dfstore.js');
const DFCTL = join(DIST, 'src/cli/dfctl.js');
const MiB = 1024 * 1024;
const REGION = 'us-east-1';

/** A store dfstore can use: an S3 server, with the test's own client. */
export type DfstoreStore = ObjectStoreUnderTest & { operator(): Operator };

/** The store's flags, with the region dfstore requires (upstream's dfdaemon refuses a task id without one). */
function storageFlags(flags: string[]): string[] {
  return flags.includes('--storage-region') ? flags : [...flags, '--storage-region', REGION];
}

function flagValue(flags: string[], name: string): string {
  const at = flags.indexOf(name);
  assert.ok(at >= 0 && at + 1 < flags.length, `the store's flags name ${name}`);
  return flags[at + 1]!;
}

function dfstore(d: DaemonHandle, args: string[]) {
  return run([DFSTORE, ...args, '-e', d.socket, '--no-progress'], { timeoutMs: 60_000 });
}

/** Whether the daemon stores the task's content file. */
function holds(d: DaemonHandle, id: string): boolean {
  return existsSync(join(d.storageDir, 'content', 'persistent-tasks', id.slice(0, 3), id));
}

async function waitFor(what: string, f: () => boolean, timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (f()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.fail(`timed out waiting for ${what}`);
}

export function dfstoreCases(store: DfstoreStore): void {
  describe(`dfstore on ${store.server}: import, replicas, export P2P, importer gone, export from the store`, () => {
    const BUCKET = store.bucket;
    const flags = () => storageFlags(store.flags());
    let scheduler: SchedulerHandle;
    const daemons: DaemonHandle[] = [];
    let a: DaemonHandle, b: DaemonHandle, c: DaemonHandle;
    let work: string;
    let bytes: Buffer;
    let digest: string;
    const key = 'run-1/model.bin';
    const url = `s3://${BUCKET}/${key}`;
    let id: string;

    const pieceReads = (k: string) => store.requests.filter((r) => store.isPieceRead(r, k)).length;

    before(async () => {
      await store.start();
      scheduler = await startScheduler();
      for (let i = 0; i < 3; i++) daemons.push(await startDaemon({ schedulerAddr: scheduler.addr }));
      [a, b, c] = daemons as [DaemonHandle, DaemonHandle, DaemonHandle];
      work = tempDir('dfstore-');
      bytes = randomBytes(9 * MiB + 321);
      writeFileSync(join(work, 'model.bin'), bytes);
      digest = createHash('sha256').update(bytes).digest('hex');
      id = persistentTaskId({ url, region: REGION, endpoint: flagValue(flags(), '--storage-endpoint') });
    });
    after(async () => {
      for (const x of daemons) await stopDaemon(x);
      await stopScheduler(scheduler);
      await store.stop();
      rmSync(work, { recursive: true, force: true });
    });

    test('import writes the object in parts and prints the task id; a second replica is placed', async () => {
      const r = await dfstore(a, ['import', join(work, 'model.bin'), '--url', url, ...flags()]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), id, 'the task id is sha256(url, region, endpoint, "PERSISTENT")');
      assert.deepEqual(Buffer.from(await store.operator().read(key)), bytes);
      // 9 MiB in 8 MiB parts (backend.putChunkSize): a multipart upload of two parts.
      assert.equal(
        store.requests.filter((q) => q.method === 'PUT' && q.path === `/${BUCKET}/${key}`).length,
        2,
      );
      await waitFor('a second persistent replica', () => daemons.filter((x) => holds(x, id)).length === 2);
    });

    test('export on B is byte-exact from peers: the store serves no piece', async () => {
      const out = join(work, 'b.bin');
      const r = await dfstore(b, ['export', url, '-O', out, ...flags(), '--digest', `sha256:${digest}`]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(await sha256File(out), digest);
      assert.equal(pieceReads(key), 0);
    });

    test('dfctl persistent-task ls shows the copy B holds, as JSON and as the upstream table', async () => {
      const ls = await run([DFCTL, 'persistent-task', 'ls', '-o', 'json', '-e', b.socket]);
      assert.equal(ls.code, 0, ls.stderr);
      const views = JSON.parse(ls.stdout) as Array<{
        id: string;
        contentLength: number;
        finishedAt?: string;
      }>;
      const v = views.find((x) => x.id === id);
      assert.ok(v, ls.stdout);
      assert.equal(v.contentLength, bytes.length);
      assert.ok(v.finishedAt);
      const table = await run([DFCTL, 'persistent-task', 'ls', '-e', b.socket]);
      assert.equal(table.code, 0, table.stderr);
      assert.match(
        table.stdout,
        /^ID +PERSISTENT +TTL +PIECE LENGTH +CONTENT LENGTH +CREATED +FINISHED +FAILED +UPDATED\n/,
      );
      assert.match(table.stdout, new RegExp(`^${id} +(true|false) +`, 'm'));
    });

    test('the importer gone, C exports (--transfer-from-dfdaemon) from the replica, not the store', async () => {
      await stopDaemon(a);
      daemons.splice(daemons.indexOf(a), 1);
      const out = join(work, 'c.bin');
      const r = await dfstore(c, ['export', url, '-O', out, ...flags(), '--transfer-from-dfdaemon']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(await sha256File(out), digest);
      assert.equal(pieceReads(key), 0);
    });

    test('an object no peer holds is exported from the store, byte-exact', async () => {
      const other = randomBytes(5 * MiB + 7);
      await store.put('direct/data.bin', other);
      const out = join(work, 'direct.bin');
      const r = await dfstore(b, ['export', `s3://${BUCKET}/direct/data.bin`, '-O', out, ...flags()]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(readFileSync(out), other);
      assert.ok(pieceReads('direct/data.bin') >= 2, 'each piece a ranged read of the object');
    });

    test('importing to an object that exists is ALREADY_EXISTS', async () => {
      const r = await dfstore(b, ['import', join(work, 'model.bin'), '--url', url, ...flags()]);
      assert.equal(r.code, 1);
      assert.match(
        r.stderr,
        new RegExp(`^Error: persistent task ${id} already exists: ${url} is in the store\\n$`),
      );
    });

    test('a missing object is NOT_FOUND in one line', async () => {
      const out = join(work, 'missing.bin');
      const r = await dfstore(b, ['export', `s3://${BUCKET}/no/such.bin`, '-O', out, ...flags()]);
      assert.equal(r.code, 1);
      assert.match(
        r.stderr,
        /^Error: .*s3:\/\/models\/no\/such\.bin.*NOT_FOUND: no such object in the s3 store.*\n$/,
      );
      assert.equal(existsSync(out), false);
    });

    test('wrong credentials: one permission line naming the flags, and the secret nowhere', async () => {
      const wrong = store.wrongCredentials();
      const wrongFlags = storageFlags(wrong.flags);
      const r = await dfstore(b, [
        'import',
        join(work, 'model.bin'),
        '--url',
        `s3://${BUCKET}/denied.bin`,
        ...wrongFlags,
      ]);
      assert.equal(r.code, 1);
      assert.match(
        r.stderr,
        /^Error: .*permission denied by the s3 store \(HTTP 403\): check --storage-access-key-id.*\n$/,
      );
      // An object no peer holds (a copy held here would be served without asking the store, as upstream does).
      await store.put('denied/x.bin', Buffer.from('x'));
      const e = await dfstore(b, [
        'export',
        `s3://${BUCKET}/denied/x.bin`,
        '-O',
        join(work, 'denied.bin'),
        ...wrongFlags,
      ]);
      assert.equal(e.code, 1);
      assert.match(e.stderr, /^Error: .*permission denied by the s3 store/);
      for (const d of [...daemons, scheduler]) {
        const log = d.logs.join('\n');
        for (const secret of [...wrong.secrets, store.secret])
          assert.ok(!log.includes(secret), 'no secret in the log');
      }
      for (const secret of wrong.secrets) assert.ok(!(r.stderr + e.stderr).includes(secret));
    });

    test('a missing --storage-region or --storage-endpoint is refused before dfdaemon is asked', async () => {
      const r = await dfstore(b, [
        'export',
        url,
        '-O',
        join(work, 'x'),
        '--storage-endpoint',
        'http://127.0.0.1:9',
      ]);
      assert.equal(r.code, 1);
      assert.equal(r.stderr, 'Error: missing object storage region: set --storage-region\n');
      const i = await dfstore(b, [
        'import',
        join(work, 'model.bin'),
        '--url',
        url,
        '--storage-region',
        'us-east-1',
      ]);
      assert.equal(i.code, 1);
      assert.equal(i.stderr, 'Error: missing object storage endpoint: set --storage-endpoint\n');
      const h = await dfstore(b, ['import', join(work, 'model.bin'), '--url', 'https://example.com/x']);
      assert.equal(h.code, 1);
      assert.match(h.stderr, /^Error: url https:\/\/example\.com\/x is not an object storage URL/);
    });

    test("an output path through a symlink into dfdaemon's storage is refused, and nothing is written there", async () => {
      const dir = join(work, 'hostile');
      mkdirSync(dir);
      symlinkSync(b.storageDir, join(dir, 'link'));
      const r = await dfstore(b, ['export', url, '-O', join(dir, 'link', 'evil.bin'), ...flags()]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /^Error: output path .* is inside dfdaemon's storage directory/);
      assert.equal(existsSync(join(b.storageDir, 'evil.bin')), false);
    });
  });
}
