// Garbage collection of tasks (spec §8; upstream dragonfly-client/src/gc/mod.rs), one pass every gc.interval:
//   1. TTL: a task not used for gc.policy.taskTTL (updatedAt + taskTTL passed) is evicted.
//   2. Disk pressure: usage% = used/total, where total/used are the filesystem of storage.dir (statfs) or, when
//      gc.policy.diskThreshold > 0, the threshold and the bytes of OUR content files only (so other programs'
//      files on a shared disk never trigger eviction — upstream client#1184). If usage% ≥ high, free
//      total × (usage% − low)/100 bytes from the tasks not in use: unfinished ones first, then finished ones,
//      least recently used first within each.
// A task in use (a download running here, or an upload counted in its record) is never evicted. Upstream evicts
// for disk space only tasks finished, failed, or created more than 24 h ago (`need_evict`), since it cannot tell
// a download in progress from one that stopped; we can (isInUse knows every download of this daemon), and an
// unfinished task nobody downloads must go too: a download that failed on a full disk could not even record its
// failure, and such tasks kept the disk full. Deleting works on a full disk (Storage.deleteTask). The first pass
// runs at start, so a daemon restarted on a full disk frees it at once. Each evicted task is deleted locally
// and, best effort, from the scheduler (DeleteTask). Unlike upstream, a TTL of 0 disables the TTL pass instead of
// evicting everything.

import { readdir, stat, statfs as fsStatfs } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Metadata } from '@grpc/grpc-js';
import type { GcPolicyConfig } from '../config/dfdaemon.js';
import type { SchedulerClient } from '../gen/scheduler.js';
import { SCHEDULER_REQUEST_TIMEOUT_MS } from '../scheduler/channel-options.js';
import type { Storage, TaskRecord } from '../storage/storage.js';
import type { DaemonMetrics } from './metrics.js';

export type EvictReason = 'ttl' | 'disk';

export interface EvictedTask {
  taskId: string;
  /** Bytes the task's content took (allocated blocks over statfs; file size under diskThreshold). */
  bytes: number;
  reason: EvictReason;
}

export interface GcResult {
  evicted: EvictedTask[];
}

export interface DiskSpace {
  /** Bytes of the filesystem. */
  total: number;
  /** Bytes available to us (statfs bavail). */
  free: number;
}

export interface GcLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export type GcPolicy = Pick<
  GcPolicyConfig,
  'taskTTL' | 'diskThreshold' | 'diskHighThresholdPercent' | 'diskLowThresholdPercent'
>;

export interface GarbageCollectorOptions {
  storage: Storage;
  /** True while the task must not be evicted (a download runs). Records with uploadingCount > 0 count too. */
  isInUse: (taskId: string) => boolean;
  /**
   * Runs `deletion` unless the task is in use, so that a download of the task that starts meanwhile waits for it
   * (TaskManager.deleteIdle) instead of reusing a task whose file is being deleted; resolves false, having run
   * nothing, when it is in use. Without it the deletion runs after the isInUse check.
   */
  deleteIdle?: (taskId: string, deletion: () => Promise<void>) => Promise<boolean>;
  policy: GcPolicy;
  /** gc.interval */
  intervalMs: number;
  /** Space of the filesystem holding `dir`; default statfs(2). */
  statfs?: (dir: string) => Promise<DiskSpace>;
  now?: () => number;
  /** Tells the scheduler the task is gone from this peer; errors are logged, never fatal. */
  deleteFromScheduler?: (taskId: string) => Promise<void>;
  metrics?: DaemonMetrics;
  /**
   * Persistent cache tasks (dfcache): never evicted for disk space, only once past their own TTL (each pass deletes
   * those). Their bytes count in the disk usage all the same.
   */
  persistentCache?: { deleteExpired(): Promise<Array<{ taskId: string; bytes: number }>> };
  log: GcLogger;
}

/**
 * A `deleteFromScheduler` that sends Scheduler.DeleteTask{hostId, taskId} to the task's scheduler (none
 * configured or usable: nothing to tell). Rejects on a gRPC error; the collector logs it.
 */
export function schedulerTaskDeleter(o: {
  schedulerFor: (taskId: string) => SchedulerClient | undefined;
  hostId: () => string;
  timeoutMs?: number;
}): (taskId: string) => Promise<void> {
  return (taskId) => {
    const client = o.schedulerFor(taskId);
    if (!client) return Promise.resolve();
    const deadline = Date.now() + (o.timeoutMs ?? SCHEDULER_REQUEST_TIMEOUT_MS);
    return new Promise((resolve, reject) => {
      client.deleteTask({ hostId: o.hostId(), taskId }, new Metadata(), { deadline }, (err) =>
        err ? reject(err) : resolve(),
      );
    });
  };
}

export async function defaultStatfs(dir: string): Promise<DiskSpace> {
  const s = await fsStatfs(dir);
  return { total: s.blocks * s.bsize, free: s.bavail * s.bsize };
}

interface Usage {
  /** 'fs': statfs of storage.dir; 'threshold': diskThreshold and our own content bytes. */
  base: 'fs' | 'threshold';
  total: number;
  used: number;
}

export class GarbageCollector {
  private readonly o: GarbageCollectorOptions;
  private readonly now: () => number;
  private readonly statfs: (dir: string) => Promise<DiskSpace>;
  private timer?: NodeJS.Timeout;
  private running?: Promise<GcResult>;

  constructor(options: GarbageCollectorOptions) {
    this.o = options;
    this.now = options.now ?? Date.now;
    this.statfs = options.statfs ?? defaultStatfs;
  }

  /** Runs a pass now and then every intervalMs (the timer does not keep the process alive). Idempotent. */
  start(): void {
    if (this.timer) return;
    const pass = () =>
      this.runOnce().catch((e: unknown) => this.o.log.warn({ err: (e as Error).message }, 'gc pass failed'));
    this.timer = setInterval(pass, this.o.intervalMs);
    this.timer.unref();
    void pass();
  }

  /** Stops the timer; a pass in flight finishes on its own. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One pass (TTL, then disk pressure). Calls while a pass runs share that pass. */
  runOnce(): Promise<GcResult> {
    this.running ??= this.pass().finally(() => (this.running = undefined));
    return this.running;
  }

  private get contentDir(): string {
    return this.o.storage.content.tasksDir;
  }

  private inUse(task: TaskRecord): boolean {
    if (this.o.isInUse(task.id)) return true;
    // Re-read: the record in hand may predate an upload that started since.
    const fresh = this.o.storage.getTask(task.id);
    return (fresh?.uploadingCount ?? task.uploadingCount) > 0;
  }

  private async pass(): Promise<GcResult> {
    const started = this.now();
    const evicted: EvictedTask[] = [];
    const skippedInUse: string[] = [];
    const usage = await this.usage();

    // 1. TTL.
    const ttl = this.o.policy.taskTTL;
    if (ttl > 0) {
      for (const task of this.o.storage.listTasks()) {
        if (task.updatedAt.getTime() + ttl >= started) continue;
        if (this.inUse(task)) {
          skippedInUse.push(task.id);
          continue;
        }
        const bytes = await this.taskBytes(task.id, usage?.base ?? 'fs');
        if ((await this.evict(task, bytes, 'ttl')) === 'evicted') {
          evicted.push({ taskId: task.id, bytes, reason: 'ttl' });
        }
      }
    }

    for (const gone of (await this.o.persistentCache?.deleteExpired()) ?? []) {
      this.o.metrics?.gcEvicted('ttl', gone.bytes);
      this.o.log.info(
        { taskId: gone.taskId, bytes: gone.bytes },
        'deleted persistent cache task past its TTL',
      );
      evicted.push({ ...gone, reason: 'ttl' });
    }

    // 2. Disk pressure. Bytes the TTL pass freed count against the need.
    let need = 0;
    let usagePercent: number | undefined;
    if (usage && usage.total > 0) {
      const used = Math.max(0, usage.used - evicted.reduce((n, e) => n + e.bytes, 0));
      usagePercent = (used * 100) / usage.total;
      const { diskHighThresholdPercent: high, diskLowThresholdPercent: low } = this.o.policy;
      if (usagePercent >= high) {
        need = Math.ceil(used - (usage.total * low) / 100);
        this.o.log.info(
          { base: usage.base, total: usage.total, used, usagePercent: round(usagePercent), high, low, need },
          `disk usage ${round(usagePercent)}% is at or above the high threshold ${high}%; evicting tasks`,
        );
      }
    }
    let freedForDisk = 0;
    const failed: Array<{ task: TaskRecord; bytes: number }> = [];
    if (need > 0) {
      const gone = new Set(evicted.map((e) => e.taskId));
      // Unfinished tasks first (a failed or abandoned download serves no dfget as it is), then finished ones;
      // least recently used first within each (listTasks' order; the sort is stable).
      const candidates = this.o.storage
        .listTasks()
        .sort((a, b) => Number(a.finishedAt !== undefined) - Number(b.finishedAt !== undefined));
      for (const task of candidates) {
        if (freedForDisk >= need) break;
        if (gone.has(task.id)) continue;
        if (this.inUse(task)) {
          skippedInUse.push(task.id);
          continue;
        }
        const bytes = await this.taskBytes(task.id, usage!.base);
        // An empty finished task frees nothing and still serves; an unfinished one is dropped.
        if (bytes === 0 && task.finishedAt) continue;
        const result = await this.evict(task, bytes, 'disk');
        if (result === 'evicted') {
          evicted.push({ taskId: task.id, bytes, reason: 'disk' });
          freedForDisk += bytes;
        } else if (result === 'in use') skippedInUse.push(task.id);
        else failed.push({ task, bytes });
      }
      // A delete that failed for want of space (a task whose content freed nothing, tried before others freed
      // some) is tried once more now that the others are gone.
      for (const { task, bytes } of failed.splice(0)) {
        const result = await this.evict(task, bytes, 'disk');
        if (result === 'evicted') {
          evicted.push({ taskId: task.id, bytes, reason: 'disk' });
          freedForDisk += bytes;
        } else if (result === 'failed') failed.push({ task, bytes });
      }
      const failedDeletes = failed.length;
      if (freedForDisk < need) {
        const inUse = new Set(skippedInUse).size;
        this.o.log.warn(
          { need, freed: freedForDisk, inUse, failed: failedDeletes },
          `gc could not free enough space: ${inUse} tasks are in use (being downloaded or uploaded)` +
            (failedDeletes > 0 ? `, ${failedDeletes} could not be deleted` : '') +
            ', and no other task of ours holds space',
        );
      }
    }
    // A reserve released to delete on a full disk is written again once there is room.
    void this.o.storage.space.ensureReserve();

    const sum = (r: EvictReason) => evicted.filter((e) => e.reason === r).reduce((n, e) => n + e.bytes, 0);
    this.o.log.info(
      {
        evicted: evicted.length,
        freedBytes: sum('ttl') + sum('disk'),
        ttl: { tasks: evicted.filter((e) => e.reason === 'ttl').length, bytes: sum('ttl') },
        disk: { tasks: evicted.filter((e) => e.reason === 'disk').length, bytes: sum('disk'), need },
        usagePercent: usagePercent === undefined ? undefined : round(usagePercent),
        base: usage?.base,
        skippedInUse: skippedInUse.length,
        costMs: this.now() - started,
      },
      evicted.length > 0
        ? `gc freed ${sum('ttl') + sum('disk')} bytes from ${evicted.length} tasks`
        : 'gc pass freed nothing',
    );
    return { evicted };
  }

  private async evict(
    task: TaskRecord,
    bytes: number,
    reason: EvictReason,
  ): Promise<'evicted' | 'in use' | 'failed'> {
    // Last check right before the delete: a download may have started while we awaited.
    if (this.inUse(task)) return 'in use';
    try {
      const deletion = (): Promise<void> => this.o.storage.deleteTask(task.id);
      if (this.o.deleteIdle) {
        if (!(await this.o.deleteIdle(task.id, deletion))) return 'in use';
      } else await deletion();
    } catch (e) {
      this.o.log.warn({ taskId: task.id, reason, err: (e as Error).message }, 'gc could not delete task');
      return 'failed';
    }
    this.o.metrics?.gcEvicted(reason, bytes);
    this.o.log.info(
      { taskId: task.id, bytes, reason, updatedAt: task.updatedAt.toISOString() },
      reason === 'ttl' ? 'evicted task past its TTL' : 'evicted task for disk space',
    );
    if (this.o.deleteFromScheduler) {
      await this.o
        .deleteFromScheduler(task.id)
        .catch((e: unknown) =>
          this.o.log.warn(
            { taskId: task.id, err: (e as Error).message },
            'could not delete evicted task from the scheduler',
          ),
        );
    }
    return 'evicted';
  }

  /**
   * The filesystem's figures (also published as the disk gauges), or diskThreshold and our content bytes.
   * Undefined when they cannot be read; the disk pass is then skipped.
   */
  private async usage(): Promise<Usage | undefined> {
    let fs: DiskSpace | undefined;
    try {
      fs = await this.statfs(this.o.storage.content.tasksDir);
      this.o.metrics?.disk(fs.total, Math.max(0, fs.total - fs.free));
    } catch (e) {
      this.o.log.warn({ dir: this.contentDir, err: (e as Error).message }, 'gc could not statfs storage dir');
    }
    const threshold = this.o.policy.diskThreshold;
    if (threshold > 0) {
      try {
        return { base: 'threshold', total: threshold, used: await this.contentBytes() };
      } catch (e) {
        this.o.log.warn({ dir: this.contentDir, err: (e as Error).message }, 'gc could not measure content');
        return undefined;
      }
    }
    return fs ? { base: 'fs', total: fs.total, used: Math.max(0, fs.total - fs.free) } : undefined;
  }

  /**
   * Sum of the sizes of the files under content/ (tasks/ and persistent-cache-tasks/, `{id[0..3]}/{id}`): our bytes
   * and nobody else's.
   */
  async contentBytes(): Promise<number> {
    let total = 0;
    const walk = async (dir: string): Promise<void> => {
      const entries = await readdir(dir, { withFileTypes: true }).catch((e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT') return [];
        throw e;
      });
      for (const entry of entries) {
        const p = join(dir, entry.name);
        if (entry.isDirectory()) await walk(p);
        else if (entry.isFile()) total += (await stat(p).catch(() => undefined))?.size ?? 0;
      }
    };
    await walk(dirname(this.contentDir));
    return total;
  }

  /** What deleting the task gives back: its file size (threshold base) or its allocated blocks (filesystem). */
  private async taskBytes(taskId: string, base: Usage['base']): Promise<number> {
    const s = await stat(this.o.storage.content.taskPath(taskId)).catch(() => undefined);
    if (!s) return 0;
    return base === 'threshold' ? s.size : s.blocks * 512;
  }
}

const round = (n: number): number => Math.round(n * 100) / 100;
