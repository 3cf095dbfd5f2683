// Persistent cache tasks on disk (dfcache import/export): content files under `{dir}/content/persistent-cache-tasks`
// and their records (persistent-cache-metadata.ts). Persistent tasks (dfstore: the same life, with a copy in object
// storage and an id from the object's URL) are kept by a second store of kind `persistent`, in
// `{dir}/content/persistent-tasks` and their own database. An import is staged first, under a temporary name, because a
// file-content-based id is only known once the file was read; it is committed under its id once the scheduler
// accepted it, or discarded. Upstream (resource/persistent_cache_task.rs) hashes the file in one pass and copies it
// in another; staging does both in one.
//
// A hard-linked import shares its inode with the user's file, which its owner can still edit (an export's output
// hard link too). A finished task's file identity (inode, size, mtime) is recorded; a piece is never served from a
// file that no longer matches it, and a piece whose digest was not computed at import (an id given by
// --content-for-calculating-task-id needs no read) gets it from the bytes before it is first served.

import { randomUUID } from 'node:crypto';
import { link, mkdir, open, rename, rm, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Crc32, pieceDigest } from '../core/digest.js';
import { DfError, toDfError } from '../core/errors.js';
import { pieceRanges, type PieceSpan } from '../core/piece.js';
import { PersistentCacheTaskIdHasher } from '../core/task-id.js';
import { ContentStore } from './content.js';
import type { DiskSpace } from './disk-space.js';
import {
  PersistentCacheMetadata,
  type FileIdentity,
  type NewPersistentCacheTask,
  type PersistentCachePieceRecord,
  type PersistentCacheTaskRecord,
} from './persistent-cache-metadata.js';

export type {
  FileIdentity,
  PersistentCachePieceRecord,
  PersistentCacheTaskRecord,
} from './persistent-cache-metadata.js';

export type PersistentStoreKind = 'persistent-cache' | 'persistent';

const STORE_FILES = {
  'persistent-cache': {
    db: 'persistent-cache.db',
    content: 'persistent-cache-tasks',
    noun: 'persistent cache',
  },
  persistent: { db: 'persistent.db', content: 'persistent-tasks', noun: 'persistent' },
} as const;

/** How an import puts the file into storage. */
export type ImportMode = 'link' | 'copy';

export interface StagedImport {
  taskId: string;
  mode: ImportMode;
  contentLength: number;
  pieceLength: number;
  /** Digests in piece order; empty strings for a hard link whose bytes were not read. */
  digests: string[];
  identity?: FileIdentity;
  /** The temporary content file. */
  readonly path: string;
}

export interface StageOptions {
  /** The file to import (checked by the caller: a regular file it may read). */
  path: string;
  pieceLength: number;
  /** The id when it does not depend on the file's bytes (content_for_calculating_task_id); else computed. */
  taskId?: string;
  /** Fields of a content-based id. */
  idFields: { tag?: string; application?: string; pieceLength?: number };
  /** Try a hard link first (default true); a failed link falls back to a copy. */
  hardLink?: boolean;
  signal?: AbortSignal;
}

/** Bytes read at a time by an import's pass over the file. */
const IMPORT_CHUNK = 4 * 1024 * 1024;

function sameFile(a: FileIdentity, b: FileIdentity): boolean {
  return a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs;
}

async function fileStat(path: string): Promise<FileIdentity> {
  const s = await stat(path);
  return { ino: s.ino, size: s.size, mtimeMs: s.mtimeMs };
}

export class PersistentCacheStore {
  readonly metadata: PersistentCacheMetadata;
  readonly content: ContentStore;
  private readonly space: DiskSpace;
  private readonly now: () => number;
  /** "persistent cache" or "persistent", for messages. */
  readonly noun: string;

  private constructor(
    metadata: PersistentCacheMetadata,
    content: ContentStore,
    space: DiskSpace,
    now: () => number,
    noun: string,
  ) {
    this.noun = noun;
    this.metadata = metadata;
    this.content = content;
    this.space = space;
    this.now = now;
  }

  /** Opens the store under `dir` (storage.dir), wiping it when `keep` is false, as Storage does. */
  static async open(o: {
    dir: string;
    /** Which tasks it keeps: dfcache's (default) or dfstore's. */
    kind?: PersistentStoreKind;
    keep: boolean;
    writeBufferSize: number;
    readBufferSize: number;
    space: DiskSpace;
    now?: () => number;
  }): Promise<PersistentCacheStore> {
    const metadataDir = join(o.dir, 'metadata');
    await mkdir(metadataDir, { recursive: true });
    const files = STORE_FILES[o.kind ?? 'persistent-cache'];
    const metadata = new PersistentCacheMetadata(join(metadataDir, files.db), { now: o.now });
    const content = new ContentStore({ ...o, kind: files.content });
    await content.init();
    const store = new PersistentCacheStore(metadata, content, o.space, o.now ?? Date.now, files.noun);
    if (!o.keep) {
      metadata.clear();
      await content.clear();
    } else {
      metadata.resetUploading();
      for (const t of metadata.list()) {
        if (!(await content.hasTask(t.id))) metadata.delete(t.id);
      }
    }
    return store;
  }

  /** The task, unless it is unknown or past its TTL (an expired one is deleted on the way). */
  async get(taskId: string): Promise<PersistentCacheTaskRecord | undefined> {
    const task = this.metadata.get(taskId);
    if (!task) return undefined;
    if (this.expired(task)) {
      await this.delete(taskId);
      return undefined;
    }
    return task;
  }

  expired(task: PersistentCacheTaskRecord): boolean {
    return task.createdAt.getTime() + task.ttlMs <= this.now();
  }

  list(): PersistentCacheTaskRecord[] {
    return this.metadata.list().filter((t) => !this.expired(t));
  }

  /**
   * Puts the file under a temporary name: a hard link if it can (and the file is on our filesystem), else a copy
   * piece by piece. The bytes are read once when the id or the digests need them: the id hashed, each piece's
   * CRC-32 computed, and (copy) written. A file that changes meanwhile fails the import.
   */
  async stage(o: StageOptions): Promise<StagedImport> {
    const before = await fileStat(o.path);
    const tmp = join(this.content.tasksDir, `.import-${randomUUID()}`);
    let mode: ImportMode = 'copy';
    if (o.hardLink !== false) {
      try {
        await link(o.path, tmp);
        // The link must be the file we looked at (not one swapped in between).
        if ((await stat(tmp)).ino === before.ino) mode = 'link';
        else await unlink(tmp);
      } catch {
        // EXDEV (another filesystem), EPERM (fs.protected_hardlinks): copy instead.
      }
    }
    const ranges = pieceRanges(before.size, o.pieceLength);
    try {
      let taskId = o.taskId;
      let digests = ranges.map(() => '');
      if (mode === 'copy') {
        await this.space.reserve(tmp, before.size);
        await this.content.createTaskFile(tmp, before.size);
      }
      if (mode === 'copy' || taskId === undefined) {
        const pass = await this.readPass(
          o.path,
          tmp,
          ranges,
          mode === 'copy',
          taskId === undefined,
          o.signal,
        );
        digests = pass.digests;
        taskId ??= pass.hasher!.digest(o.idFields);
      }
      const after = await fileStat(o.path);
      if (!sameFile(before, after)) {
        throw new DfError(
          'SOURCE_CHANGED',
          `file ${o.path} changed while being imported (size ${before.size} → ${after.size}); import it again ` +
            'once nothing writes to it',
        );
      }
      return {
        taskId,
        mode,
        contentLength: before.size,
        pieceLength: o.pieceLength,
        digests,
        identity: mode === 'link' ? before : undefined,
        path: tmp,
      };
    } catch (e) {
      await rm(tmp, { force: true });
      throw toDfError(e, `import ${o.path}`);
    } finally {
      this.space.release(tmp);
    }
  }

  /** One pass over the file: CRC-32 per piece, the id's hash if wanted, and the bytes into `tmp` if copying. */
  private async readPass(
    path: string,
    tmp: string,
    ranges: PieceSpan[],
    copy: boolean,
    hash: boolean,
    signal?: AbortSignal,
  ): Promise<{ digests: string[]; hasher?: PersistentCacheTaskIdHasher }> {
    const hasher = hash ? new PersistentCacheTaskIdHasher() : undefined;
    const digests: string[] = [];
    const src = await open(path, 'r');
    const dst = copy ? await open(tmp, 'r+') : undefined;
    // Two buffers: the write of one chunk runs while the next is read and hashed (a copy costs about one pass of
    // the disk, not a read and then a write).
    const bufs = [Buffer.allocUnsafe(IMPORT_CHUNK), Buffer.allocUnsafe(IMPORT_CHUNK)];
    const writing: Array<Promise<void> | undefined> = [undefined, undefined];
    const writeAll = async (chunk: Buffer, position: number): Promise<void> => {
      let w = 0;
      while (w < chunk.length) w += (await dst!.write(chunk, w, chunk.length - w, position + w)).bytesWritten;
    };
    let turn = 0;
    try {
      for (const r of ranges) {
        const crc = new Crc32();
        let done = 0;
        while (done < r.length) {
          signal?.throwIfAborted();
          const buf = bufs[turn]!;
          await writing[turn];
          const want = Math.min(buf.length, r.length - done);
          const { bytesRead } = await src.read(buf, 0, want, r.offset + done);
          if (bytesRead === 0) {
            throw new DfError('SOURCE_CHANGED', `file ${path} became shorter while being imported`);
          }
          const chunk = buf.subarray(0, bytesRead);
          crc.update(chunk);
          hasher?.update(chunk);
          if (dst) writing[turn] = writeAll(chunk, r.offset + done);
          turn ^= 1;
          done += bytesRead;
        }
        digests.push(crc.digest());
      }
      await Promise.all(writing);
    } finally {
      // A failed pass still waits for its writes before the files close (and the caller removes the copy).
      await Promise.allSettled(writing);
      await src.close();
      await dst?.close();
    }
    return { digests, hasher };
  }

  /** Moves a staged import under its id and records the task and its pieces as finished. */
  async commit(
    staged: StagedImport,
    fields: Omit<NewPersistentCacheTask, 'id' | 'pieceLength' | 'contentLength' | 'pieceCount'>,
  ): Promise<PersistentCacheTaskRecord> {
    const dest = this.content.taskPath(staged.taskId);
    try {
      await mkdir(dirname(dest), { recursive: true });
      await rename(staged.path, dest);
    } catch (e) {
      await rm(staged.path, { force: true });
      throw toDfError(e, `store ${this.noun} task ${staged.taskId}`);
    }
    const ranges = pieceRanges(staged.contentLength, staged.pieceLength);
    this.metadata.create({
      ...fields,
      id: staged.taskId,
      pieceLength: staged.pieceLength,
      contentLength: staged.contentLength,
      pieceCount: ranges.length,
    });
    this.metadata.finishPieces(
      ranges.map((r, i) => ({
        taskId: staged.taskId,
        number: r.number,
        offset: r.offset,
        length: r.length,
        digest: staged.digests[i] ?? '',
        trafficType: 0,
        costMs: 0,
      })),
    );
    // A link keeps the identity the file had when it was read; a copy is ours, as it is now.
    this.metadata.finish(staged.taskId, staged.identity ?? (await fileStat(dest)));
    return this.metadata.get(staged.taskId)!;
  }

  async discard(staged: StagedImport): Promise<void> {
    await rm(staged.path, { force: true });
  }

  /**
   * Starts a download of the task (an export or a replica): its record afresh and its content file (sparse),
   * with the disk space it needs reserved until finishDownload / failDownload.
   */
  async startDownload(t: NewPersistentCacheTask): Promise<PersistentCacheTaskRecord> {
    await this.space.reserve(t.id, t.contentLength);
    try {
      await this.content.deleteTask(t.id);
      await this.content.createTask(t.id, t.contentLength);
      return this.metadata.create(t);
    } catch (e) {
      this.space.release(t.id);
      throw toDfError(e, `create ${this.noun} task ${t.id}`);
    }
  }

  /**
   * Writes a piece from a parent, verifying it against the parent's digest before it counts as finished. A parent
   * may send no digest: the Rust client (1.5.10) leaves the pieces of a hard-linked import without one (its digests
   * are computed lazily, and never for Vortex or SyncPersistentCachePieces), and Rust peers take such pieces as
   * they come. Refusing them would make every task a Rust dfdaemon imported unexportable here; the piece is
   * stored with the digest computed while writing it, which guards it from then on.
   */
  async writePiece(
    taskId: string,
    piece: PieceSpan,
    body: AsyncIterable<Buffer | Uint8Array>,
    origin: { parentId: string; expectedDigest: string; trafficType: number },
  ): Promise<PersistentCachePieceRecord> {
    const started = performance.now();
    const written = await this.content.writePiece(taskId, piece.offset, piece.length, body);
    this.space.written(taskId, written.length);
    if (origin.expectedDigest && written.digest !== origin.expectedDigest) {
      throw new DfError(
        'DIGEST_MISMATCH',
        `piece ${piece.number} of task ${taskId}: digest ${written.digest} does not match expected ${origin.expectedDigest}`,
      );
    }
    this.metadata.finishPieces([
      {
        taskId,
        number: piece.number,
        offset: piece.offset,
        length: piece.length,
        digest: written.digest,
        parentId: origin.parentId,
        trafficType: origin.trafficType,
        costMs: performance.now() - started,
      },
    ]);
    return this.metadata.getPiece(taskId, piece.number)!;
  }

  /** The download's pieces are all stored: the task is finished, its file identity recorded. */
  async finishDownload(taskId: string): Promise<void> {
    this.space.release(taskId);
    this.metadata.finish(taskId, await fileStat(this.content.taskPath(taskId)));
  }

  failDownload(taskId: string): void {
    this.space.release(taskId);
    this.metadata.fail(taskId);
  }

  /**
   * A finished piece ready to be served: its digest known (computed now for a hard-linked import) and its content
   * file still what was imported. Throws DIGEST_MISMATCH when the file changed (the task is then marked failed and
   * never served again), PIECE_NOT_FOUND when there is no such piece.
   */
  async servablePiece(taskId: string, number: number): Promise<PersistentCachePieceRecord> {
    const task = await this.get(taskId);
    const piece = task ? this.metadata.getPiece(taskId, number) : undefined;
    if (!task || !piece) {
      throw new DfError('PIECE_NOT_FOUND', `${this.noun} piece ${taskId}-${number} not found`);
    }
    if (task.identity) {
      const now = await fileStat(this.content.taskPath(taskId)).catch(() => undefined);
      if (!now || !sameFile(task.identity, now)) {
        this.metadata.fail(taskId);
        throw new DfError(
          'DIGEST_MISMATCH',
          `${this.noun} task ${taskId} is not served: its imported file was modified after the import`,
        );
      }
    }
    if (piece.digest) return piece;
    const buf = await this.content.readPieceBuffer(taskId, piece.offset, piece.length);
    const crc = new Crc32();
    crc.update(buf);
    const digest = crc.digest();
    this.metadata.setPieceDigest(taskId, number, digest);
    return { ...piece, digest };
  }

  /**
   * Computes the digests a hard-linked import left empty, right after it, in one pass over the file: one open and
   * one buffer for every piece. Done at first serve instead (servablePiece, which stays the fallback), each piece was
   * read twice on the request path — once for its CRC-32, once to send it — in a 4 MiB buffer of its own, which made
   * an export 1.3 × a dfget of the same bytes. A digest is only kept while the file is still the one imported
   * (servablePiece checks the same before every piece it serves). Stops quietly when the task goes (deleted, expired)
   * or `signal` aborts; returns how many digests it stored.
   */
  async fillDigests(taskId: string, signal?: AbortSignal): Promise<number> {
    const task = this.metadata.get(taskId);
    const missing = task?.identity ? this.metadata.listPieces(taskId).filter((p) => !p.digest) : [];
    if (!task?.identity || missing.length === 0) return 0;
    const identity = task.identity;
    let reader: Awaited<ReturnType<ContentStore['openReader']>>;
    try {
      reader = await this.content.openReader(taskId);
    } catch {
      return 0;
    }
    let stored = 0;
    try {
      const buf = Buffer.allocUnsafe(Math.max(...missing.map((p) => p.length)));
      for (const piece of missing) {
        if (signal?.aborted || !this.metadata.get(taskId)) break;
        const bytes = buf.subarray(0, piece.length);
        await reader.read(piece.offset, bytes);
        const now = await fileStat(this.content.taskPath(taskId));
        if (!sameFile(identity, now)) break;
        this.metadata.setPieceDigest(taskId, piece.number, pieceDigest(bytes));
        stored++;
      }
    } catch {
      // The file went or shrank (deleted, edited): servablePiece finds out and answers for each piece.
    } finally {
      await reader.close().catch(() => undefined);
    }
    return stored;
  }

  setPersistent(taskId: string, persistent: boolean): void {
    this.metadata.setPersistent(taskId, persistent);
  }

  async delete(taskId: string): Promise<void> {
    this.space.release(taskId);
    await this.content.deleteTask(taskId);
    this.metadata.delete(taskId);
  }

  /** Deletes every task past its TTL (GC); returns the ids and the bytes their files held. */
  async deleteExpired(): Promise<Array<{ taskId: string; bytes: number }>> {
    const out: Array<{ taskId: string; bytes: number }> = [];
    for (const t of this.metadata.list()) {
      if (!this.expired(t) || t.uploadingCount > 0) continue;
      const bytes = (await stat(this.content.taskPath(t.id)).catch(() => undefined))?.size ?? 0;
      await this.delete(t.id);
      out.push({ taskId: t.id, bytes });
    }
    return out;
  }

  close(): void {
    this.metadata.close();
  }
}
