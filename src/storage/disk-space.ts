// Disk space for downloads, and room to free it on a full disk (issue 16, item 9).
//
// Reservations. A download is admitted only when the filesystem can hold what it has still to write, beside what
// the downloads already admitted have still to write: each task's reservation is its content length less what its
// content file already holds, shrinks as its pieces are written, and is released when its run ends. Checking free
// space alone (as upstream does, and as we did) let two downloads that each fit fill the disk together, and both
// failed.
//
// The metadata reserve. Deleting a task must work on a full disk, or a full disk wedges the daemon: SQLite (WAL)
// needs new pages to record even a delete. Content files are deleted first, but that frees nothing while a dfget
// output is a hard link to the content. So a small file of random bytes (compression cannot shrink it) is kept
// beside the database; when a metadata write that frees space, or records a failure, finds the disk full, the
// file is deleted and the write tried again. It is written again once there is room, and downloads never count
// its space as free.

import { randomFillSync } from 'node:crypto';
import { existsSync, unlinkSync } from 'node:fs';
import { open, rename, statfs, unlink } from 'node:fs/promises';
import { DfError } from '../core/errors.js';

/**
 * Size of the metadata reserve file: WAL room for a few hundred changed pages, several deletes of tasks with
 * thousands of pieces each; once SQLite checkpoints, it writes the WAL from its start again, in space it has.
 */
export const METADATA_RESERVE_BYTES = 1024 * 1024;

export interface DiskSpaceOptions {
  /** A directory on the content filesystem (statfs). */
  contentDir: string;
  /** The metadata reserve file, beside the database. */
  reservePath: string;
  reserveBytes?: number;
  /** Bytes available to us on the filesystem of `dir`; default statfs(2) bavail × bsize. */
  freeBytes?: (dir: string) => Promise<number>;
  log?: { info(o: object, m: string): void; warn(o: object, m: string): void };
}

export class DiskSpace {
  readonly reserveBytes: number;
  private readonly o: DiskSpaceOptions;
  private readonly freeBytes: (dir: string) => Promise<number>;
  /** Bytes each admitted download has still to write. */
  private readonly outstanding = new Map<string, number>();
  private ensuring?: Promise<boolean>;

  constructor(o: DiskSpaceOptions) {
    this.o = o;
    this.reserveBytes = o.reserveBytes ?? METADATA_RESERVE_BYTES;
    this.freeBytes =
      o.freeBytes ??
      (async (dir) => {
        const s = await statfs(dir);
        return s.bavail * s.bsize;
      });
  }

  /** Bytes the admitted downloads have still to write, all together. */
  get reserved(): number {
    let n = 0;
    for (const v of this.outstanding.values()) n += v;
    return n;
  }

  /** Bytes a task has still to write under its reservation (0 without one). */
  reservedFor(taskId: string): number {
    return this.outstanding.get(taskId) ?? 0;
  }

  /**
   * Admits a download of `taskId` that has `need` bytes still to write, or throws NO_SPACE before anything is
   * written. Replaces an earlier reservation of the task. The space of a missing metadata reserve is not free.
   */
  async reserve(taskId: string, need: number): Promise<void> {
    const free = await this.freeBytes(this.o.contentDir);
    // From here on synchronous: a concurrent reserve() sees this one's bytes.
    const others = this.reserved - this.reservedFor(taskId);
    const held = this.hasReserve() ? 0 : this.reserveBytes;
    const available = free - others - held;
    if (need > available) {
      throw new DfError(
        'NO_SPACE',
        `not enough disk space for task ${taskId}: need ${need} bytes, ${Math.max(0, free)} free` +
          (others > 0 ? ` of which ${others} are reserved by downloads in progress` : '') +
          (held > 0 ? ` and ${held} kept for the metadata` : '') +
          ` under ${this.o.contentDir}`,
      );
    }
    this.outstanding.set(taskId, Math.max(0, need));
  }

  /** `bytes` of the task's content were written: its reservation shrinks by as much. */
  written(taskId: string, bytes: number): void {
    const left = this.outstanding.get(taskId);
    if (left !== undefined) this.outstanding.set(taskId, Math.max(0, left - bytes));
  }

  /** The task's download ended (or the task was deleted): its reservation goes. */
  release(taskId: string): void {
    this.outstanding.delete(taskId);
  }

  hasReserve(): boolean {
    return existsSync(this.o.reservePath);
  }

  /**
   * Deletes the metadata reserve so that a metadata write can use its space; false if there was none. Synchronous,
   * so that a synchronous SQLite call can be tried again at once.
   */
  releaseReserve(why: string): boolean {
    try {
      unlinkSync(this.o.reservePath);
    } catch {
      return false;
    }
    this.o.log?.warn(
      { bytes: this.reserveBytes, why, path: this.o.reservePath },
      'disk full: released the metadata reserve',
    );
    return true;
  }

  /**
   * Writes the metadata reserve if it is missing and the disk has room for it beside the downloads' reservations.
   * Resolves whether the reserve exists afterwards; never rejects.
   */
  ensureReserve(): Promise<boolean> {
    // One at a time, each after the one before: a check that started before space was freed must not answer for
    // a call made after.
    const next = (this.ensuring ?? Promise.resolve(false)).then(() => this.writeReserve());
    this.ensuring = next;
    void next.finally(() => {
      if (this.ensuring === next) this.ensuring = undefined;
    });
    return next;
  }

  private async writeReserve(): Promise<boolean> {
    if (this.hasReserve()) return true;
    const tmp = `${this.o.reservePath}.tmp`;
    try {
      const free = await this.freeBytes(this.o.contentDir);
      if (free - this.reserved < this.reserveBytes * 2) return false;
      const fh = await open(tmp, 'w', 0o600);
      try {
        const chunk = randomFillSync(Buffer.allocUnsafe(64 * 1024));
        for (let at = 0; at < this.reserveBytes; at += chunk.length) {
          await fh.write(chunk, 0, Math.min(chunk.length, this.reserveBytes - at), at);
        }
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, this.o.reservePath);
      this.o.log?.info({ bytes: this.reserveBytes, path: this.o.reservePath }, 'metadata reserve written');
      return true;
    } catch (e) {
      await unlink(tmp).catch(() => undefined);
      this.o.log?.warn({ err: (e as Error).message }, 'could not write the metadata reserve');
      return false;
    }
  }
}

/** Whether `e` (or what caused it) is a full disk: ENOSPC, or SQLite's SQLITE_FULL. */
export function isDiskFull(e: unknown): boolean {
  for (let c: unknown = e; c instanceof Error; c = c.cause) {
    const code = (c as { code?: unknown }).code;
    if (code === 'ENOSPC' || code === 'SQLITE_FULL' || code === 'NO_SPACE') return true;
  }
  return false;
}
