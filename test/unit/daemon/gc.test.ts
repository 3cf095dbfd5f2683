import { afterEach, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  GarbageCollector,
  schedulerTaskDeleter,
  type DiskSpace,
  type GcPolicy,
} from '../../../src/daemon/gc.js';
import type { SchedulerClient } from '../../../src/gen/scheduler.js';
import { DaemonMetrics } from '../../../src/daemon/metrics.js';
import { PersistentCacheStore } from '../../../src/storage/persistent-cache-store.js';
import { Storage } from '../../../src/storage/storage.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const HOUR = 3600_000;
const DAY = 24 * HOUR;

interface Logged {
  level: 'info' | 'warn';
  obj: object;
  msg: string;
}

class Clock {
  t = Date.UTC(2025, 0, 1);
  now = (): number => this.t;
}

let dir: string;
let clock: Clock;
let storage: Storage;
let logs: Logged[];
const log = {
  info: (obj: object, msg: string) => logs.push({ level: 'info', obj, msg }),
  warn: (obj: object, msg: string) => logs.push({ level: 'warn', obj, msg }),
};

async function* once(buf: Buffer): AsyncGenerator<Buffer> {
  yield buf;
}

/** A task with `size` real bytes written, at the clock's current time; finished unless told otherwise. */
async function addTask(
  s: Storage,
  id: string,
  size: number,
  state: 'finished' | 'failed' | 'running' = 'finished',
): Promise<void> {
  await s.prepareTask(id, { contentLength: size, pieceLength: size || 1, responseHeader: {} });
  if (size > 0)
    await s.writePiece(id, { number: 0, offset: 0, length: size }, once(randomBytes(size)), {
      trafficType: 0,
    });
  if (state === 'finished') s.finishTask(id);
  if (state === 'failed') s.failTask(id);
}

const policy = (p: Partial<GcPolicy> = {}): GcPolicy => ({
  taskTTL: 30 * DAY,
  diskThreshold: 0,
  diskHighThresholdPercent: 80,
  diskLowThresholdPercent: 60,
  ...p,
});

const ids = (s: Storage): string[] => s.listTasks().map((t) => t.id);
const allocated = (s: Storage, id: string): number => fs.statSync(s.content.taskPath(id)).blocks * 512;

beforeEach(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'df-gc-'));
  clock = new Clock();
  logs = [];
  storage = await Storage.open({
    dir,
    keep: true,
    writeBufferSize: 64 * KiB,
    readBufferSize: 64 * KiB,
    now: clock.now,
  });
});
afterEach(() => {
  storage.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('TTL: tasks whose updatedAt + taskTTL passed are evicted, locally and from the scheduler', async () => {
  await addTask(storage, 'old1', 100);
  clock.t += HOUR;
  await addTask(storage, 'old2', 100, 'failed');
  clock.t += 10 * DAY;
  await addTask(storage, 'young', 100);
  clock.t += 30 * DAY - 1; // young is 1 ms short of its TTL; old1 and old2 are past theirs.
  const fromScheduler: string[] = [];
  const gc = new GarbageCollector({
    storage,
    isInUse: () => false,
    policy: policy(),
    intervalMs: 1000,
    statfs: async () => ({ total: 100 * MiB, free: 90 * MiB }),
    now: clock.now,
    deleteFromScheduler: async (id) => {
      fromScheduler.push(id);
      if (id === 'old2') throw new Error('scheduler unavailable');
    },
    log,
  });
  const r = await gc.runOnce();
  assert.deepEqual(
    r.evicted.map((e) => [e.taskId, e.reason]),
    [
      ['old1', 'ttl'],
      ['old2', 'ttl'],
    ],
  );
  assert.deepEqual(ids(storage), ['young']);
  assert.equal(fs.existsSync(storage.content.taskPath('old1')), false);
  assert.deepEqual(fromScheduler, ['old1', 'old2']);
  // The scheduler's failure is logged, not fatal; the pass logs what it freed and why.
  assert.ok(logs.some((l) => l.level === 'warn' && /scheduler/.test(l.msg)));
  assert.ok(
    logs.some(
      (l) => l.msg === 'evicted task past its TTL' && (l.obj as { taskId: string }).taskId === 'old1',
    ),
  );
  assert.ok(logs.some((l) => /^gc freed \d+ bytes from 2 tasks$/.test(l.msg)));
  // Nothing more to do on the next pass.
  assert.deepEqual((await gc.runOnce()).evicted, []);
  assert.ok(logs.some((l) => l.msg === 'gc pass freed nothing'));
});

test('disk pressure over statfs: frees total×(usage−low)/100 least recently used first, skipping tasks in use', async () => {
  const names = ['t0', 't1', 't2', 't3', 't4', 't5', 't6', 't7'];
  for (const n of names) {
    await addTask(storage, n, 64 * KiB, n === 't2' ? 'running' : 'finished');
    clock.t += 1000;
  }
  // t1 is being uploaded and t3's download runs: neither may go. t2 is unfinished, but nobody downloads it (its
  // download stopped without even recording a failure, as on a full disk): it goes, least recently used first.
  storage.metadata.uploadTaskStarted('t1');
  clock.t += 1000;
  storage.metadata.touchTask('t0'); // t0 is now the most recently used.
  const bytes = Object.fromEntries(names.map((n) => [n, allocated(storage, n)]));
  const total = 1 * MiB;
  // usage 90 %, high 80, low 60: free ⌈total × 30/100⌉ = 314573 bytes, i.e. five tasks of 64 KiB.
  const statfs = async (): Promise<DiskSpace> => ({ total, free: total / 10 });
  const gc = new GarbageCollector({
    storage,
    isInUse: (id) => id === 't3',
    policy: policy(),
    intervalMs: 1000,
    statfs,
    now: clock.now,
    log,
  });
  const r = await gc.runOnce();
  const need = Math.ceil(total * 0.9 - total * 0.6);
  const expected: string[] = [];
  let freed = 0;
  for (const n of ['t2', 't4', 't5', 't6', 't7', 't0']) {
    if (freed >= need) break;
    expected.push(n);
    freed += bytes[n]!;
  }
  assert.deepEqual(
    r.evicted.map((e) => e.taskId),
    expected,
  );
  assert.ok(expected.length >= 4, `evicted ${expected.length}`);
  for (const e of r.evicted) {
    assert.equal(e.reason, 'disk');
    assert.equal(e.bytes, bytes[e.taskId]);
  }
  for (const kept of ['t1', 't3']) assert.ok(ids(storage).includes(kept), kept);
  assert.ok(logs.some((l) => /disk usage 90% is at or above the high threshold 80%/.test(l.msg)));
});

test('disk pressure below the high threshold evicts nothing; unfinished downloads older than 24 h are evictable', async () => {
  await addTask(storage, 'stale', 64 * KiB, 'running');
  clock.t += 2 * DAY;
  await addTask(storage, 'done', 64 * KiB);
  const usage = { total: 1 * MiB, free: Math.round(0.21 * MiB) }; // 79 %
  const gc = new GarbageCollector({
    storage,
    isInUse: () => false,
    policy: policy(),
    intervalMs: 1000,
    statfs: async () => usage,
    now: clock.now,
    log,
  });
  assert.deepEqual((await gc.runOnce()).evicted, []);
  usage.free = Math.floor(0.2 * MiB); // 80 %: need 20 % of 1 MiB; the stale download goes first, then the finished task.
  const r = await gc.runOnce();
  assert.deepEqual(
    r.evicted.map((e) => e.taskId),
    ['stale', 'done'],
  );
});

test('diskThreshold: other files on the disk do not count; our own content over the threshold does', async () => {
  const metrics = new DaemonMetrics({ gitVersion: 'test', gitCommit: '', buildTime: '' });
  // A big unrelated file next to our content, and a filesystem that looks nearly full.
  fs.writeFileSync(path.join(dir, 'someone-elses.bin'), randomBytes(4 * MiB));
  for (const n of ['a', 'b', 'c']) {
    await addTask(storage, n, 100 * KiB);
    clock.t += 1000;
  }
  const gc = new GarbageCollector({
    storage,
    isInUse: () => false,
    policy: policy({ diskThreshold: 1 * MiB }),
    intervalMs: 1000,
    statfs: async () => ({ total: 10 * MiB, free: 0.5 * MiB }), // 95 % of the filesystem used
    now: clock.now,
    metrics,
    log,
  });
  assert.equal(await gc.contentBytes(), 300 * KiB);
  assert.deepEqual((await gc.runOnce()).evicted, [], '300 KiB of ours is 29 % of the 1 MiB threshold');
  assert.deepEqual(ids(storage), ['a', 'b', 'c']);

  // Our own content grows to 900 KiB (88 %): free 900 KiB − 60 % of 1 MiB = 285.6 KiB → a, b, c (LRU).
  for (const n of ['d', 'e', 'f', 'g', 'h', 'i']) {
    await addTask(storage, n, 100 * KiB);
    clock.t += 1000;
  }
  const r = await gc.runOnce();
  assert.deepEqual(
    r.evicted.map((e) => [e.taskId, e.bytes, e.reason]),
    [
      ['a', 100 * KiB, 'disk'],
      ['b', 100 * KiB, 'disk'],
      ['c', 100 * KiB, 'disk'],
    ],
  );
  assert.equal(await gc.contentBytes(), 600 * KiB);
  assert.ok(fs.existsSync(path.join(dir, 'someone-elses.bin')));

  // Metrics: the disk gauges show the filesystem (as upstream), the counters what GC evicted.
  const m = await metrics.text();
  assert.match(m, new RegExp(`^dragonfly_client_disk_space_total ${10 * MiB}$`, 'm'));
  assert.match(m, new RegExp(`^dragonfly_client_disk_usage_space_total ${9.5 * MiB}$`, 'm'));
  assert.match(m, /^dragonfly_client_gc_evicted_tasks_total\{reason="disk"\} 3$/m);
  assert.match(
    m,
    new RegExp(`^dragonfly_client_gc_evicted_bytes_total\\{reason="disk"\\} ${300 * KiB}$`, 'm'),
  );
});

test('metrics: TTL evictions are counted under reason="ttl"', async () => {
  const metrics = new DaemonMetrics({ gitVersion: 'test', gitCommit: '', buildTime: '' });
  await addTask(storage, 'x', 4 * KiB);
  await addTask(storage, 'y', 8 * KiB);
  clock.t += 2 * DAY;
  const gc = new GarbageCollector({
    storage,
    isInUse: () => false,
    policy: policy({ taskTTL: DAY, diskThreshold: 1 * MiB }),
    intervalMs: 1000,
    statfs: async () => ({ total: 2000, free: 500 }),
    now: clock.now,
    metrics,
    log,
  });
  const r = await gc.runOnce();
  assert.deepEqual(
    r.evicted.map((e) => [e.taskId, e.bytes, e.reason]),
    [
      ['x', 4 * KiB, 'ttl'],
      ['y', 8 * KiB, 'ttl'],
    ],
  );
  const m = await metrics.text();
  assert.match(m, /^dragonfly_client_gc_evicted_tasks_total\{reason="ttl"\} 2$/m);
  assert.match(m, new RegExp(`^dragonfly_client_gc_evicted_bytes_total\\{reason="ttl"\\} ${12 * KiB}$`, 'm'));
  assert.match(m, /^dragonfly_client_disk_space_total 2000$/m);
  assert.match(m, /^dragonfly_client_disk_usage_space_total 1500$/m);
});

test('in-use tasks (uploading, downloading) are untouched by the TTL and disk passes', async () => {
  await addTask(storage, 'uploading', 64 * KiB);
  storage.metadata.uploadTaskStarted('uploading');
  await addTask(storage, 'downloading', 64 * KiB, 'running');
  await addTask(storage, 'late', 64 * KiB);
  clock.t += 60 * DAY;
  const active = new Set(['downloading']);
  const gc = new GarbageCollector({
    storage,
    isInUse: (id) => active.has(id),
    policy: policy(),
    intervalMs: 1000,
    statfs: async () => {
      active.add('late'); // a download of `late` starts as the pass begins
      return { total: 1 * MiB, free: 0 };
    },
    now: clock.now,
    log,
  });
  const r = await gc.runOnce();
  assert.deepEqual(r.evicted, []);
  assert.deepEqual(ids(storage).sort(), ['downloading', 'late', 'uploading']);
  assert.ok(
    logs.some(
      (l) =>
        l.level === 'warn' &&
        l.msg ===
          'gc could not free enough space: 3 tasks are in use (being downloaded or uploaded), and no other task of ours holds space',
    ),
  );
});

test('start() runs passes on the interval with an unref-ed timer; stop() ends them; runOnce calls share a pass', async () => {
  let calls = 0;
  const gc = new GarbageCollector({
    storage,
    isInUse: () => false,
    policy: policy(),
    intervalMs: 20,
    statfs: async () => {
      calls++;
      return { total: 100, free: 100 };
    },
    log,
  });
  const [a, b] = [gc.runOnce(), gc.runOnce()];
  assert.equal(a, b);
  await a;
  assert.equal(calls, 1);
  gc.start();
  gc.start();
  await new Promise((r) => setTimeout(r, 110));
  gc.stop();
  const seen = calls;
  assert.ok(seen >= 3, `passes: ${seen}`);
  await new Promise((r) => setTimeout(r, 60));
  assert.equal(calls, seen);
});

test("schedulerTaskDeleter sends DeleteTask{hostId, taskId} to the task's scheduler, and nothing without one", async () => {
  const sent: unknown[] = [];
  const client = {
    deleteTask: (req: unknown, _md: unknown, opts: { deadline: number }, cb: (err: Error | null) => void) => {
      sent.push(req);
      assert.ok(opts.deadline > Date.now());
      cb((req as { taskId: string }).taskId === 'bad' ? new Error('UNAVAILABLE') : null);
    },
  } as unknown as SchedulerClient;
  const del = schedulerTaskDeleter({
    schedulerFor: (id) => (id === 'none' ? undefined : client),
    hostId: () => 'host-1',
  });
  await del('t1');
  await del('none');
  await assert.rejects(del('bad'), /UNAVAILABLE/);
  assert.deepEqual(sent, [
    { hostId: 'host-1', taskId: 't1' },
    { hostId: 'host-1', taskId: 'bad' },
  ]);
});

function tryTmpfs(): { mnt?: string; reason?: string } {
  if (process.platform !== 'linux') return { reason: 'tmpfs needs Linux' };
  if (process.getuid?.() !== 0) return { reason: 'mounting a tmpfs needs root' };
  const mnt = fs.mkdtempSync(path.join(os.tmpdir(), 'df-gc-tmpfs-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=32m', 'tmpfs', mnt], { stdio: 'pipe' });
    return { mnt };
  } catch (e) {
    fs.rmSync(mnt, { recursive: true, force: true });
    return { reason: `mount -t tmpfs failed: ${String((e as Error).message).split('\n')[0]}` };
  }
}

test('high/low watermarks on a real 32 MiB tmpfs (statfs)', async (t) => {
  const tmpfs = tryTmpfs();
  if (!tmpfs.mnt) {
    t.skip(tmpfs.reason);
    return;
  }
  const mnt = tmpfs.mnt;
  let s: Storage | undefined;
  try {
    s = await Storage.open({
      dir: mnt,
      keep: true,
      writeBufferSize: 256 * KiB,
      readBufferSize: 256 * KiB,
      now: clock.now,
    });
    // 7 × 4 MiB = 28 MiB of 32 MiB: 87.5 % (plus the metadata db) ≥ 80 %.
    for (let i = 0; i < 7; i++) {
      await addTask(s, `big${i}`, 4 * MiB);
      clock.t += 1000;
    }
    const gc = new GarbageCollector({
      storage: s,
      isInUse: (id) => id === 'big0',
      policy: policy(),
      intervalMs: 1000,
      now: clock.now,
      log,
    });
    const r = await gc.runOnce();
    // Need ≈ 28 MiB − 19.2 MiB = 8.8+ MiB → three tasks, oldest first, skipping big0 (in use).
    assert.deepEqual(
      r.evicted.map((e) => e.taskId),
      ['big1', 'big2', 'big3'],
    );
    for (const e of r.evicted) assert.equal(e.bytes, 4 * MiB);
    const st = fs.statfsSync(mnt);
    const usage = 100 - (st.bavail * 100) / st.blocks;
    assert.ok(usage < 60, `usage after the pass ${usage}%`);
    assert.deepEqual((await gc.runOnce()).evicted, [], 'below the low watermark now');
  } finally {
    s?.close();
    execFileSync('umount', [mnt]);
    fs.rmSync(mnt, { recursive: true, force: true });
  }
});

test('persistent cache tasks: never evicted for disk space, deleted past their own TTL, their bytes counted', async () => {
  const cache = await PersistentCacheStore.open({
    dir,
    keep: true,
    writeBufferSize: 64 * KiB,
    readBufferSize: 64 * KiB,
    space: storage.space,
    now: clock.now,
  });
  try {
    const src = path.join(dir, 'imported');
    fs.writeFileSync(src, randomBytes(MiB));
    const staged = await cache.stage({ path: src, pieceLength: 4 * MiB, idFields: {}, hardLink: false });
    const pc = await cache.commit(staged, { persistent: true, persistentReplicaCount: 1, ttlMs: HOUR });
    await addTask(storage, 'standard', 100 * KiB);
    const gc = new GarbageCollector({
      storage,
      persistentCache: cache,
      isInUse: () => false,
      // Our content (1 MiB imported + 100 KiB) over a 1 MiB threshold: pressure, and only the standard task goes.
      policy: policy({ diskThreshold: 1 * MiB }),
      intervalMs: 1000,
      now: clock.now,
      log,
    });
    assert.equal(await gc.contentBytes(), MiB + 100 * KiB);
    const first = await gc.runOnce();
    assert.deepEqual(
      first.evicted.map((e) => [e.taskId, e.reason]),
      [['standard', 'disk']],
    );
    assert.ok(await cache.get(pc.id), 'the persistent cache task stays before its TTL');
    clock.t += HOUR;
    const second = await gc.runOnce();
    assert.deepEqual(second.evicted, [{ taskId: pc.id, bytes: MiB, reason: 'ttl' }]);
    assert.equal(fs.existsSync(cache.content.taskPath(pc.id)), false);
  } finally {
    cache.close();
  }
});
