// A dfscheduler restart between a dfcache import and an export. The scheduler used to keep persistent cache tasks
// in memory only: after a restart `dfcache stat`/`export` on another peer answered NOT_FOUND although two peers
// still held the bytes, and a replica lost afterwards was never replaced. Now it reads its hosts, tasks and peers
// back from server.dataDir (scheduler-store.ts).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../helpers/child-process.js';
import { startDaemon, stopDaemon, tempDir, type DaemonHandle } from '../helpers/daemon.js';
import { dfcache, holds, waitForReplicas, waitForStat } from '../helpers/dfcache.js';
import { sha256File } from '../helpers/files.js';
import { startScheduler, stopScheduler, type SchedulerHandle } from '../helpers/scheduler-process.js';

const MiB = 1024 * 1024;

describe('dfcache across a dfscheduler restart', () => {
  let scheduler: SchedulerHandle;
  let port: number;
  const daemons: DaemonHandle[] = [];
  let work: string;

  before(async () => {
    port = await freePort();
    scheduler = await startScheduler({ port });
    for (let i = 0; i < 4; i++) daemons.push(await startDaemon({ schedulerAddr: scheduler.addr }));
    work = tempDir('dfcache-restart-');
  });
  after(async () => {
    for (const x of daemons) await stopDaemon(x);
    await stopScheduler(scheduler);
    rmSync(work, { recursive: true, force: true });
  });

  test('stat and export on another peer work after the restart, and a lost replica is replaced', async () => {
    const [a, , c] = daemons as [DaemonHandle, DaemonHandle, DaemonHandle];
    const src = join(work, 'model.bin');
    const bytes = randomBytes(5 * MiB + 7);
    writeFileSync(src, bytes);
    const digest = createHash('sha256').update(bytes).digest('hex');
    const r = await dfcache(a, ['import', src, '--no-progress']);
    assert.equal(r.code, 0, r.stderr);
    const id = r.stdout.trim();
    await waitForReplicas(a, id, '2/2');

    await stopScheduler(scheduler, 'SIGTERM', { keepDir: true });
    scheduler = await startScheduler({ port, dir: scheduler.dir });
    assert.ok(
      scheduler.logs.some(
        (l) => /"msg":"scheduler state restored"/.test(l) && /"persistentCacheTasks":1/.test(l),
      ),
      scheduler.logs.join('\n'),
    );

    // The daemons' channels reconnect to the new process on their own (a few seconds at most).
    const s = await waitForStat(c, id);
    assert.equal(s['State'], 'Succeeded');
    assert.equal(s['Persistent replicas'], '2/2');
    const exporter = daemons.find((x) => !holds(x, id))!;
    const out = join(work, 'out.bin');
    const e = await dfcache(exporter, ['export', id, '-O', out, '--no-progress']);
    assert.equal(e.code, 0, e.stderr);
    assert.equal(await sha256File(out), digest);

    // A persistent holder other than the importer leaves: the restarted scheduler knows it held the task and
    // brings the count back (promoting the exporter's cached copy, or placing a new replica).
    const replica = daemons.find((x) => x !== a && x !== exporter && holds(x, id))!;
    await stopDaemon(replica);
    daemons.splice(daemons.indexOf(replica), 1);
    await waitForReplicas(a, id, '2/2');
  });
});
