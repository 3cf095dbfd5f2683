// A replica placement that fails mid-way is retried by the scheduler on its own. The peer placed as the second
// replica is killed (SIGKILL) while it fetches the task; before, the task then stayed at 1/2 replicas until the next
// trigger (an import, a holder's host leaving), which might never come — the dead host stays announced for two
// announce intervals. Now another host takes the replica within seconds (persistent-cache-replicas.ts).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startDaemon, stopDaemon, tempDir, type DaemonHandle } from '../helpers/daemon.js';
import { dfcache, holds, waitForReplicas } from '../helpers/dfcache.js';
import { startScheduler, stopScheduler, type SchedulerHandle } from '../helpers/scheduler-process.js';

const MiB = 1024 * 1024;

/** The hosts the scheduler asked to fetch a replica of `taskId`, in order. */
function placements(scheduler: SchedulerHandle, taskId: string): string[] {
  return scheduler.logs
    .filter((l) => l.includes('"msg":"placing a persistent cache task replica"') && l.includes(taskId))
    .map((l) => (JSON.parse(l) as { host: string }).host);
}

describe('dfcache: a replica peer killed mid-download', () => {
  let scheduler: SchedulerHandle;
  const daemons: DaemonHandle[] = [];
  let work: string;

  before(async () => {
    scheduler = await startScheduler();
    // The importer serves at 4 MiB/s: a replica of 16 MiB takes about 4 s, time to kill it half-way.
    daemons.push(await startDaemon({ schedulerAddr: scheduler.addr, upload: 'bandwidthLimit: 4MiB' }));
    for (let i = 0; i < 3; i++) daemons.push(await startDaemon({ schedulerAddr: scheduler.addr }));
    work = tempDir('dfcache-retry-');
  });
  after(async () => {
    for (const x of daemons) await stopDaemon(x);
    await stopScheduler(scheduler);
    rmSync(work, { recursive: true, force: true });
  });

  test('another peer takes the replica within seconds', async () => {
    const a = daemons[0]!;
    const src = join(work, 'data.bin');
    writeFileSync(src, randomBytes(16 * MiB));
    const r = await dfcache(a, ['import', src, '--no-progress']);
    assert.equal(r.code, 0, r.stderr);
    const id = r.stdout.trim();

    const until = Date.now() + 10_000;
    while (placements(scheduler, id).length === 0 && Date.now() < until) {
      await new Promise((res) => setTimeout(res, 20));
    }
    const [first] = placements(scheduler, id);
    const victim = daemons.find((d) => d.hostId === first);
    assert.ok(victim, `placed on ${first}, not one of the test's daemons`);
    await new Promise((res) => setTimeout(res, 1000));
    await stopDaemon(victim, { signal: 'SIGKILL' });
    daemons.splice(daemons.indexOf(victim), 1);

    // Within 20 s: the first retry comes after about 1 s, and the new replica fetches for about 4.
    await waitForReplicas(a, id, '2/2', 20_000);
    const [, second] = placements(scheduler, id);
    assert.ok(second && second !== first, `placements: ${placements(scheduler, id).join(', ')}`);
    assert.ok(
      daemons.some((d) => d.hostId === second && holds(d, id)),
      'the second replica holds the task',
    );
  });
});
