// TTL expiry of a persistent cache task across a cluster: once past its TTL the task is gone everywhere —
// `dfcache stat` NOT_FOUND on every peer, no local record, every content file deleted.
//
// The shortest TTL there is is 5 minutes: dfcache checks it, and so does the scheduler (Go's validator on
// UploadPersistentCacheTaskStarted, `ttl >= 300s`); upstream's dfdaemon RPC would take 1 minute but the scheduler
// refuses it. Rather than wait 5 minutes, the scheduler and the daemons run under libfaketime (Debian `faketime`),
// all reading one offset file: the test moves their clocks 6 minutes ahead at once, wall clock and monotonic
// clock alike, so the scheduler's TTL timer fires and the daemons' GC (gc.interval 1s) finds the task expired.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DIST, run, startDaemon, stopDaemon, tempDir, type DaemonHandle } from '../helpers/daemon.js';
import { dfcache, holds, waitForReplicas } from '../helpers/dfcache.js';
import { startScheduler, stopScheduler, type SchedulerHandle } from '../helpers/scheduler-process.js';

const MiB = 1024 * 1024;
const DFCTL = join(DIST, 'src/cli/dfctl.js');

/** libfaketime's thread-safe library, wherever the Debian package put it for this architecture. */
function libfaketime(): string {
  for (const arch of readdirSync('/usr/lib')) {
    const lib = join('/usr/lib', arch, 'faketime', 'libfaketimeMT.so.1');
    if (existsSync(lib)) return lib;
  }
  throw new Error('libfaketime not found under /usr/lib/*/faketime: apt-get install faketime');
}

describe('dfcache: a task past its TTL is gone on every peer', () => {
  let scheduler: SchedulerHandle;
  const daemons: DaemonHandle[] = [];
  let work: string;
  let offsetFile: string;

  before(async () => {
    work = tempDir('dfcache-ttl-');
    offsetFile = join(work, 'faketime');
    writeFileSync(offsetFile, '+0\n');
    // Every process reads the offset again at most 1 s after it changes.
    const env = {
      LD_PRELOAD: libfaketime(),
      FAKETIME_TIMESTAMP_FILE: offsetFile,
      FAKETIME_CACHE_DURATION: '1',
    };
    scheduler = await startScheduler({ env });
    for (let i = 0; i < 3; i++) {
      daemons.push(
        await startDaemon({ schedulerAddr: scheduler.addr, env, extraConfig: 'gc:\n  interval: 1s\n' }),
      );
    }
  });
  after(async () => {
    for (const x of daemons) await stopDaemon(x);
    await stopScheduler(scheduler);
    rmSync(work, { recursive: true, force: true });
  });

  test('import, replicate and export with --ttl 5m; 6 minutes later nothing is left', async () => {
    const [a, , c] = daemons as [DaemonHandle, DaemonHandle, DaemonHandle];
    const src = join(work, 'data.bin');
    writeFileSync(src, randomBytes(5 * MiB + 1));
    const r = await dfcache(a, ['import', src, '--ttl', '5m', '--no-progress']);
    assert.equal(r.code, 0, r.stderr);
    const id = r.stdout.trim();
    await waitForReplicas(a, id, '2/2');
    const holder = daemons.find((d) => d !== a && holds(d, id));
    const exporter = daemons.find((d) => d !== a && d !== holder)!;
    const e = await dfcache(exporter, ['export', id, '-O', join(work, 'out.bin'), '--no-progress']);
    assert.equal(e.code, 0, e.stderr);
    assert.deepEqual(
      daemons.map((d) => holds(d, id)),
      [true, true, true],
      'the importer, the replica and the exporter hold it',
    );

    writeFileSync(offsetFile, '+6m\n');
    const gone = async (d: DaemonHandle) => {
      const s = await dfcache(d, ['stat', id]);
      const local = await run([DFCTL, 'persistent-cache-task', 'stat', id, '-e', d.socket]);
      return s.code === 1 && /not found/.test(s.stderr) && local.code === 1 && !holds(d, id);
    };
    const until = Date.now() + 20_000;
    let left: DaemonHandle[] = daemons;
    while (left.length > 0 && Date.now() < until) {
      const still: DaemonHandle[] = [];
      for (const d of left) if (!(await gone(d))) still.push(d);
      left = still;
      if (left.length > 0) await new Promise((res) => setTimeout(res, 250));
    }
    assert.deepEqual(
      left.map((d) => d.hostId),
      [],
      'peers still holding or answering for the task',
    );
    const s = await dfcache(c, ['stat', id]);
    assert.equal(s.stderr, `Error: persistent cache task ${id} not found\n`);
  });
});
