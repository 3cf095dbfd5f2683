// dfcache across several daemons on loopback with dfscheduler (the embedded scheduler as its own process, so the
// importer can go away while the scheduler stays): import on A places a second persistent replica on another
// peer; exports on B and C are byte-exact and come from peers (no origin exists at all); A stopped, the replica
// count is restored on another host and D still exports; rm deletes the task on every peer.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DIST, run, startDaemon, stopDaemon, tempDir, type DaemonHandle } from '../helpers/daemon.js';
import { dfcache, holds, stat, waitForReplicas } from '../helpers/dfcache.js';
import { sha256File } from '../helpers/files.js';
import { startScheduler, stopScheduler, type SchedulerHandle } from '../helpers/scheduler-process.js';
import { createHash } from 'node:crypto';

const DFCTL = join(DIST, 'src/cli/dfctl.js');
const MiB = 1024 * 1024;

describe('dfcache: import, replicas, export P2P, importer gone, rm everywhere', () => {
  let scheduler: SchedulerHandle;
  const daemons: DaemonHandle[] = [];
  let a: DaemonHandle, b: DaemonHandle, c: DaemonHandle, d: DaemonHandle;
  let work: string;
  let src: string;
  let digest: string;
  let id: string;

  before(async () => {
    scheduler = await startScheduler();
    for (let i = 0; i < 4; i++) daemons.push(await startDaemon({ schedulerAddr: scheduler.addr }));
    [a, b, c, d] = daemons as [DaemonHandle, DaemonHandle, DaemonHandle, DaemonHandle];
    work = tempDir('dfcache-');
    src = join(work, 'model.bin');
    const bytes = randomBytes(9 * MiB + 123);
    writeFileSync(src, bytes);
    digest = createHash('sha256').update(bytes).digest('hex');
  });
  after(async () => {
    for (const x of daemons) await stopDaemon(x);
    await stopScheduler(scheduler);
    rmSync(work, { recursive: true, force: true });
  });

  test('import prints the task id; the scheduler places a second persistent replica', async () => {
    const r = await dfcache(a, ['import', src, '--no-progress', '--ttl', '10m']);
    assert.equal(r.code, 0, r.stderr);
    id = r.stdout.trim();
    assert.match(id, /^[0-9a-f]{64}$/);
    await waitForReplicas(a, id, '2/2');
    const s = await stat(b, id);
    assert.equal(s['Size'], `9.0 MiB (${9 * MiB + 123} bytes)`);
    assert.equal(s['State'], 'Succeeded');
    assert.equal(daemons.filter((x) => holds(x, id)).length, 2, 'the importer and one replica hold it');
  });

  test('export on B (hard link / copy) and C (--transfer-from-dfdaemon) is byte-exact', async () => {
    const outB = join(work, 'b.bin');
    const rb = await dfcache(b, ['export', id, '-O', outB, '--no-progress', '--digest', `sha256:${digest}`]);
    assert.equal(rb.code, 0, rb.stderr);
    assert.equal(await sha256File(outB), digest);
    const outC = join(work, 'c.bin');
    const rc = await dfcache(c, ['export', id, '-O', outC, '--no-progress', '--transfer-from-dfdaemon']);
    assert.equal(rc.code, 0, rc.stderr);
    assert.equal(await sha256File(outC), digest);
  });

  test('an empty file imports and exports (no pieces; the scheduler answers EmptyPersistentCacheTaskResponse)', async () => {
    const empty = join(work, 'empty');
    writeFileSync(empty, '');
    const r = await dfcache(a, ['import', empty, '--no-progress', '--persistent-replica-count', '1']);
    assert.equal(r.code, 0, r.stderr);
    const out = join(work, 'empty.out');
    const e = await dfcache(c, ['export', r.stdout.trim(), '-O', out, '--no-progress']);
    assert.equal(e.code, 0, e.stderr);
    assert.equal(readFileSync(out).length, 0);
  });

  test('importing the same file again is ALREADY_EXISTS, and the stored task stays', async () => {
    const again = await dfcache(a, ['import', src, '--no-progress', '--ttl', '10m']);
    assert.equal(again.code, 1);
    assert.match(again.stderr, new RegExp(`^Error: persistent cache task ${id} already exists\\n$`, 'm'));
    assert.equal((await stat(b, id))['State'], 'Succeeded');
  });

  test('the importer stops: the replica count is restored on another host, and D still exports', async () => {
    await stopDaemon(a);
    daemons.splice(daemons.indexOf(a), 1);
    await waitForReplicas(b, id, '2/2');
    const outD = join(work, 'd.bin');
    const r = await dfcache(d, ['export', id, '-O', outD, '--no-progress']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await sha256File(outD), digest);
  });

  test('an export to an existing output fails without --overwrite; an unknown id is NOT_FOUND', async () => {
    const out = join(work, 'exists.bin');
    writeFileSync(out, 'keep me');
    const r = await dfcache(b, ['export', id, '-O', out, '--no-progress']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^Error: output path .* already exists \(use --overwrite to replace it\)\n$/);
    const unknown = await dfcache(b, ['export', 'f'.repeat(64), '-O', join(work, 'none'), '--no-progress']);
    assert.equal(unknown.code, 1);
    assert.equal(unknown.stderr, `Error: persistent cache task ${'f'.repeat(64)} not found\n`);
  });

  test('dfctl persistent-cache-task ls and stat show the copy a peer holds', async () => {
    const ls = await run([DFCTL, 'persistent-cache-task', 'ls', '-o', 'json', '-e', b.socket]);
    assert.equal(ls.code, 0, ls.stderr);
    const views = JSON.parse(ls.stdout) as Array<{
      id: string;
      contentLength: number;
      ttl: string;
      finishedAt?: string;
    }>;
    const v = views.find((x) => x.id === id);
    assert.ok(v, ls.stdout);
    assert.equal(v.contentLength, 9 * MiB + 123);
    assert.equal(v.ttl, '10m');
    assert.ok(v.finishedAt);
    const table = await run([DFCTL, 'persistent-cache-task', 'ls', '-e', b.socket]);
    assert.match(
      table.stdout,
      /^ID +PERSISTENT +TTL +PIECE LENGTH +CONTENT LENGTH +CREATED +FINISHED +FAILED +UPDATED\n/,
    );
    assert.match(table.stdout, new RegExp(`^${id} +(true|false) +10m +4 MiB +9\\.0 MiB `, 'm'));
    const st = await run([DFCTL, 'persistent-cache-task', 'stat', id, '-e', b.socket]);
    assert.equal(st.code, 0, st.stderr);
    assert.match(st.stdout, new RegExp(`^ID: +${id}$`, 'm'));
    const none = await run([DFCTL, 'persistent-cache-task', 'stat', 'e'.repeat(64), '-e', b.socket]);
    assert.equal(none.code, 1);
    assert.equal(none.stderr, `Error: persistent cache task ${'e'.repeat(64)} not found\n`);
  });

  test('rm deletes the task on every peer holding it', async () => {
    assert.ok(daemons.some((x) => holds(x, id)));
    const r = await dfcache(b, ['rm', id]);
    assert.equal(r.code, 0, r.stderr);
    const until = Date.now() + 10_000;
    while (daemons.some((x) => holds(x, id)) && Date.now() < until)
      await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(
      daemons.filter((x) => holds(x, id)).map((x) => x.hostId),
      [],
    );
    const s = await dfcache(c, ['stat', id]);
    assert.equal(s.code, 1);
    assert.match(s.stderr, /not found/);
    assert.deepEqual(
      readdirSync(join(c.storageDir, 'content', 'persistent-cache-tasks')).filter((f) =>
        f.startsWith('.import'),
      ),
      [],
    );
  });
});

describe('dfcache: the importer killed (SIGKILL, no goodbye to the scheduler)', () => {
  let scheduler: SchedulerHandle;
  const daemons: DaemonHandle[] = [];

  before(async () => {
    scheduler = await startScheduler();
    for (let i = 0; i < 3; i++) daemons.push(await startDaemon({ schedulerAddr: scheduler.addr }));
  });
  after(async () => {
    for (const x of daemons) await stopDaemon(x);
    await stopScheduler(scheduler);
  });

  test('an export on another peer still works from the replica, the dead importer among its parents', async () => {
    const [a, , c] = daemons as [DaemonHandle, DaemonHandle, DaemonHandle];
    const work = tempDir('dfcache-kill-');
    const src = join(work, 'data.bin');
    const bytes = randomBytes(6 * MiB + 5);
    writeFileSync(src, bytes);
    const r = await dfcache(a, ['import', src, '--no-progress']);
    assert.equal(r.code, 0, r.stderr);
    const id = r.stdout.trim();
    await waitForReplicas(a, id, '2/2');
    await stopDaemon(a, { signal: 'SIGKILL' });
    daemons.splice(daemons.indexOf(a), 1);
    // The scheduler still counts the importer (it said nothing): the export must get past a parent that is gone.
    const out = join(work, 'out.bin');
    const holder = daemons.find((x) => holds(x, id));
    const exporter = holder === c ? daemons.find((x) => x !== c)! : c;
    const e = await dfcache(exporter, ['export', id, '-O', out, '--no-progress']);
    assert.equal(e.code, 0, e.stderr);
    assert.equal(await sha256File(out), createHash('sha256').update(bytes).digest('hex'));
    rmSync(work, { recursive: true, force: true });
  });
});
