// Task content files: one file a task at `{dir}/content/tasks/{id[0..3]}/{id}`, pieces written at their
// offsets, as upstream (dragonfly-client-storage/src/content_linux.rs). Bytes stream through: a piece is never
// held whole in memory; writes are coalesced up to `writeBufferSize` so a piece costs a few large pwrites.

import { chmodSync, utimesSync } from 'node:fs';
import { chmod, mkdir, open, rm, stat, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Crc32 } from '../core/digest.js';
import { DfError, toDfError } from '../core/errors.js';
import { KeyedTurns } from '../core/keyed-turns.js';
import { BufferPool } from '../core/buffer-pool.js';

/** Read buffers kept for reuse: 8 bodies at once, one read ahead of the socket each (range-sender.ts). */
const POOLED_READ_BUFFERS = 8;

/** Write buffers kept for reuse: one per piece being written, 8 pieces at once. */
const POOLED_WRITE_BUFFERS = 8;

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
  /**
   * The directory under `{dir}/content` holding this store's files: `tasks` (default), `persistent-cache-tasks` or
   * `persistent-tasks`, as upstream keeps each task kind in its own directory.
   */
  kind?: 'tasks' | 'persistent-cache-tasks' | 'persistent-tasks';
}

export class ContentStore {
  readonly tasksDir: string;
  /** Read buffers (storage.readBufferSize each) reused by whoever sends this store's bytes to a socket. */
  readonly readBuffers: BufferPool;
  /** Where a piece's bytes gather (storage.writeBufferSize) before each write. */
  private readonly writeBuffers: BufferPool;
  /** Writes to one task file take turns (keyed-turns.ts says why). */
  private readonly writeTurns = new KeyedTurns<string>();

  constructor(options: ContentStoreOptions) {
    this.tasksDir = join(options.dir, 'content', options.kind ?? 'tasks');
    this.writeBuffers = new BufferPool(options.writeBufferSize, POOLED_WRITE_BUFFERS);
    this.readBuffers = new BufferPool(options.readBufferSize, POOLED_READ_BUFFERS);
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
    return this.createTaskFile(this.taskPath(taskId), contentLength, `task ${taskId}`);
  }

  /** createTask's work at an explicit path (an import staged under a temporary name). */
  async createTaskFile(path: string, contentLength: number, what = path): Promise<string> {
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
      throw toDfError(e, `create content of ${what}`);
    }
  }

  /** Bytes the task's content file takes on disk (its allocated blocks; a sparse file takes what was written). */
  async allocatedBytes(taskId: string): Promise<number> {
    const s = await stat(this.taskPath(taskId)).catch(() => undefined);
    return s ? s.blocks * 512 : 0;
  }

  /**
   * A finished task's content file becomes read-only (0444) and its mtime the finish time. Outputs are hard links
   * to it, so an output is read-only too: its user cannot edit the cache in place. Root (or dfdaemon's own user)
   * still can; checkSealed sees that by the mtime and the size, and the task is then never served again.
   */
  sealTask(taskId: string, finishedAt: Date): void {
    const path = this.taskPath(taskId);
    chmodSync(path, 0o444);
    utimesSync(path, finishedAt, finishedAt);
  }

  /**
   * Why a finished task's content is no longer what was stored, or undefined when it is: its size differs from the
   * content length, or it was written after the task finished (mtime past the finish time). A sealed file someone
   * made writable again is sealed once more.
   */
  async checkSealed(taskId: string, contentLength: number, finishedAt: Date): Promise<string | undefined> {
    const path = this.taskPath(taskId);
    const st = await stat(path).catch(() => undefined);
    if (!st) return 'its content file is gone';
    if (st.size !== contentLength) return `its content file is ${st.size} bytes, not ${contentLength}`;
    // 1 ms of slack: utimes and stat round the time through nanoseconds.
    if (st.mtimeMs > finishedAt.getTime() + 1) {
      return (
        `its content file was modified at ${st.mtime.toISOString()}, after the task finished at ` +
        `${finishedAt.toISOString()} (an output hard link edited in place?)`
      );
    }
    if ((st.mode & 0o222) !== 0) await chmod(path, 0o444).catch(() => undefined);
    return undefined;
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
   * resolves, so a crash mid-write leaves the piece missing, never wrong. `onWritten` hears how many bytes from
   * the piece's start are in the file after each write (a piece may be relayed as it arrives: arriving-pieces.ts).
   */
  async writePiece(
    taskId: string,
    offset: number,
    length: number,
    source: AsyncIterable<Buffer | Uint8Array>,
    onWritten?: (bytes: number) => void,
  ): Promise<WrittenPiece> {
    const crc = new Crc32();
    let fh;
    try {
      fh = await open(this.taskPath(taskId), 'r+');
    } catch (e) {
      // Nobody will read the source: end it now, or a source response would hold its connection (and its
      // origin's upload) until its timeout.
      void abandon(source);
      throw toDfError(e, `open content of task ${taskId}`);
    }
    // The bytes are copied into a write buffer of our own and written from there when it is full. A source's chunk
    // is valid only until the next one is asked for (the HTTP agent reads into buffers it uses again), and a
    // buffer used again makes no garbage: handing the network's chunks to pwritev as they were kept every chunk
    // alive across a write, so they outlived the young generation and the daemon spent more CPU in full garbage
    // collections than the copy costs (a memcpy is ~20x faster than the page-cache write that follows it).
    const staging = this.writeBuffers.take();
    let written = 0;
    let staged = 0;
    const flush = async (): Promise<void> => {
      if (staged === 0) return;
      const bytes = staging.subarray(0, staged);
      const at = offset + written;
      await this.writeTurns.run(taskId, () => writeAllAt(fh, bytes, at));
      written += staged;
      staged = 0;
      onWritten?.(written);
    };
    try {
      for await (const chunk of source) {
        if (written + staged + chunk.length > length) {
          throw new DfError('BACKEND', `piece at offset ${offset} got more than its ${length} bytes`, {
            retryable: true,
          });
        }
        crc.update(chunk);
        let from = 0;
        while (from < chunk.length) {
          const n = Math.min(chunk.length - from, staging.length - staged);
          staging.set(chunk.subarray(from, from + n), staged);
          staged += n;
          from += n;
          if (staged === staging.length) await flush();
        }
      }
      await flush();
    } catch (e) {
      throw toDfError(e, `write piece of task ${taskId} at offset ${offset}`);
    } finally {
      this.writeBuffers.give(staging);
      await fh.close();
    }
    if (written !== length) {
      throw new DfError('BACKEND', `piece at offset ${offset} ended after ${written} of ${length} bytes`, {
        retryable: true,
      });
    }
    return { length: written, digest: crc.digest() };
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

  /** The task's content file open for reading (sendFileRange); the caller closes it. */
  openFile(taskId: string): Promise<FileHandle> {
    return open(this.taskPath(taskId), 'r');
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

  async deleteTask(taskId: string): Promise<void> {
    await rm(this.taskPath(taskId), { force: true });
  }

  /** Removes all content (upstream's wipe on start when storage.keep is false). */
  async clear(): Promise<void> {
    await rm(this.tasksDir, { recursive: true, force: true });
    await mkdir(this.tasksDir, { recursive: true });
  }
}

/** Writes all of `bytes` at `position`: one pwrite, more only after a short write (rare). */
async function writeAllAt(fh: FileHandle, bytes: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await fh.write(bytes, done, bytes.length - done, position + done);
    done += bytesWritten;
  }
}

/**
 * Ends a source that will not be read. A generator's cleanup runs only once it has started, so this asks for one
 * chunk and stops: the source's own `finally` then closes what it holds (SourceBody ends its response).
 */
async function abandon(source: AsyncIterable<Buffer | Uint8Array>): Promise<void> {
  try {
    for await (const _ of source) break;
  } catch {
    // A source that fails while being abandoned has ended too.
  }
}
