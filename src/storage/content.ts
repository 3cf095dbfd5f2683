// Task content files: one file a task at `{dir}/content/tasks/{id[0..3]}/{id}`, pieces written at their
// offsets, as upstream (dragonfly-client-storage/src/content_linux.rs). Bytes stream through: a piece is never
// held whole in memory; writes are coalesced up to `writeBufferSize` so a piece costs a few large pwrites.

import { randomUUID } from 'node:crypto';
import { createReadStream, type ReadStream } from 'node:fs';
import { copyFile, link, mkdir, open, rename, rm, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Crc32 } from '../core/digest.js';
import { DfError, toDfError } from '../core/errors.js';

/** Chunks gathered for one pwritev, below the kernel's IOV_MAX (1024). */
const MAX_IOVECS = 256;

export interface WrittenPiece {
  length: number;
  digest: string;
}

/** A content file open for reading. */
export interface ContentReader {
  /** Fills `target` with the bytes at `offset`; fails if the file ends first. */
  read(offset: number, target: Buffer): Promise<void>;
  close(): Promise<void>;
}

export interface ContentStoreOptions {
  /** storage.dir */
  dir: string;
  /** storage.writeBufferSize, bytes */
  writeBufferSize: number;
  /** storage.readBufferSize, bytes */
  readBufferSize: number;
}

export class ContentStore {
  readonly tasksDir: string;
  private readonly writeBufferSize: number;
  private readonly readBufferSize: number;

  constructor(options: ContentStoreOptions) {
    this.tasksDir = join(options.dir, 'content', 'tasks');
    this.writeBufferSize = options.writeBufferSize;
    this.readBufferSize = options.readBufferSize;
  }

  async init(): Promise<void> {
    await mkdir(this.tasksDir, { recursive: true });
  }

  taskPath(taskId: string): string {
    return join(this.tasksDir, taskId.slice(0, 3), taskId);
  }

  /**
   * Creates the task file with its final size (sparse), or keeps an existing one: pieces already written by an
   * earlier run stay where they are. Whether the disk can hold the content is decided before (Storage.reserveSpace,
   * as upstream checks free space in download_started).
   */
  async createTask(taskId: string, contentLength: number): Promise<string> {
    const path = this.taskPath(taskId);
    try {
      await mkdir(dirname(path), { recursive: true });
      const existing = await stat(path).catch(() => undefined);
      if (existing && existing.size === contentLength) return path;
      const fh = await open(path, existing ? 'r+' : 'w');
      try {
        await fh.truncate(contentLength);
      } finally {
        await fh.close();
      }
      return path;
    } catch (e) {
      throw toDfError(e, `create content of task ${taskId}`);
    }
  }

  /** Bytes the task's content file takes on disk (its allocated blocks; a sparse file takes what was written). */
  async allocatedBytes(taskId: string): Promise<number> {
    const s = await stat(this.taskPath(taskId)).catch(() => undefined);
    return s ? s.blocks * 512 : 0;
  }

  async hasTask(taskId: string): Promise<boolean> {
    return stat(this.taskPath(taskId)).then(
      () => true,
      () => false,
    );
  }

  /**
   * Streams `source` into the task file at `offset`, computing the CRC-32 as bytes pass. Fails if the source
   * yields more or fewer than `length` bytes. The caller records the piece as finished only after this
   * resolves, so a crash mid-write leaves the piece missing, never wrong.
   */
  async writePiece(
    taskId: string,
    offset: number,
    length: number,
    source: AsyncIterable<Buffer | Uint8Array>,
  ): Promise<WrittenPiece> {
    const crc = new Crc32();
    let fh;
    try {
      fh = await open(this.taskPath(taskId), 'r+');
    } catch (e) {
      throw toDfError(e, `open content of task ${taskId}`);
    }
    let written = 0;
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    // The chunks go to the kernel as they are (one pwritev), not copied into one buffer first: a copy of every
    // byte costs as much CPU as the CRC and doubles the garbage the network chunks already make.
    const flush = async (): Promise<void> => {
      if (pendingBytes === 0) return;
      const bufs = pending;
      const total = pendingBytes;
      pending = [];
      pendingBytes = 0;
      let done = (await fh.writev(bufs, offset + written)).bytesWritten;
      // A short write (rare on regular files): write the rest buffer by buffer.
      let skip = done;
      for (const b of bufs) {
        if (done >= total) break;
        if (skip >= b.length) {
          skip -= b.length;
          continue;
        }
        let at = skip;
        skip = 0;
        while (at < b.length) {
          const { bytesWritten } = await fh.write(b, at, b.length - at, offset + written + done);
          at += bytesWritten;
          done += bytesWritten;
        }
      }
      written += total;
    };
    try {
      for await (const chunk of source) {
        const b = Buffer.isBuffer(chunk)
          ? chunk
          : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
        if (written + pendingBytes + b.length > length) {
          throw new DfError('BACKEND', `piece at offset ${offset} got more than its ${length} bytes`, {
            retryable: true,
          });
        }
        crc.update(b);
        pending.push(b);
        pendingBytes += b.length;
        if (pendingBytes >= this.writeBufferSize || pending.length >= MAX_IOVECS) await flush();
      }
      await flush();
    } catch (e) {
      throw toDfError(e, `write piece of task ${taskId} at offset ${offset}`);
    } finally {
      await fh.close();
    }
    if (written !== length) {
      throw new DfError('BACKEND', `piece at offset ${offset} ended after ${written} of ${length} bytes`, {
        retryable: true,
      });
    }
    return { length: written, digest: crc.digest() };
  }

  /** A stream of `length` bytes at `offset` of the task file. */
  readPiece(taskId: string, offset: number, length: number): ReadStream {
    return createReadStream(this.taskPath(taskId), {
      start: offset,
      end: offset + length - 1,
      highWaterMark: this.readBufferSize,
    });
  }

  /** Reads a piece into one buffer. */
  async readPieceBuffer(taskId: string, offset: number, length: number): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(length);
    await this.readInto(taskId, offset, buf);
    return buf;
  }

  /** Fills `target` with the task's bytes at `offset`. */
  async readInto(taskId: string, offset: number, target: Buffer): Promise<void> {
    const reader = await this.openReader(taskId);
    try {
      await reader.read(offset, target);
    } finally {
      await reader.close();
    }
  }

  /**
   * The task's content file open for positional reads, for a caller that reads it many times (need_piece_content
   * reads each part of a piece straight into the gRPC message that carries it: daemon/grpc/piece-content.ts).
   */
  async openReader(taskId: string): Promise<ContentReader> {
    const fh = await open(this.taskPath(taskId), 'r');
    return {
      read: async (offset, target) => {
        let done = 0;
        while (done < target.length) {
          const { bytesRead } = await fh.read(target, done, target.length - done, offset + done);
          if (bytesRead === 0) throw new DfError('IO', `content of task ${taskId} is shorter than expected`);
          done += bytesRead;
        }
      },
      close: () => fh.close(),
    };
  }

  /**
   * Hard-links the task file to `to`. An existing file that already is this content (same device and inode)
   * counts as linked. Any other failure is returned as an error, so the caller can copy instead.
   */
  async hardLinkTask(taskId: string, to: string): Promise<void> {
    const from = this.taskPath(taskId);
    try {
      await link(from, to);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST' && (await this.isSameFile(taskId, to))) return;
      throw toDfError(e, `hard link ${to}`);
    }
  }

  /** Whether `path` is the task's content file itself (same device and inode). */
  async isSameFile(taskId: string, path: string): Promise<boolean> {
    const [a, b] = await Promise.all([
      stat(this.taskPath(taskId)).catch(() => undefined),
      stat(path).catch(() => undefined),
    ]);
    return !!a && !!b && a.dev === b.dev && a.ino === b.ino;
  }

  /**
   * Copies the task file to `to` through a temporary sibling renamed into place, so a failed copy never
   * leaves a truncated file at the user's path.
   */
  async copyTask(taskId: string, to: string): Promise<void> {
    const tmp = `${to}.dfget-${randomUUID()}.tmp`;
    try {
      await copyFile(this.taskPath(taskId), tmp);
      await rename(tmp, to);
    } catch (e) {
      await unlink(tmp).catch(() => undefined);
      throw toDfError(e, `copy to ${to}`);
    }
  }

  async deleteTask(taskId: string): Promise<void> {
    await rm(this.taskPath(taskId), { force: true });
  }

  /** Removes all content (upstream's wipe on start when storage.keep is false). */
  async clear(): Promise<void> {
    await rm(this.tasksDir, { recursive: true, force: true });
    await mkdir(this.tasksDir, { recursive: true });
  }
}
