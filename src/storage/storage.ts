// The storage facade: metadata and content kept consistent. It owns the rule that a piece is finished only
// once its bytes are in the content file and its digest is known (and, for pieces from parents, matches).

import { mkdir } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { join } from 'node:path';
import { DfError } from '../core/errors.js';
import { statChanged, validatorOf } from '../core/validator.js';
import { ArrivingPiece, ArrivingPieces } from './arriving-pieces.js';
import { ContentStore } from './content.js';
import { relayedBody } from './relayed-body.js';
import { DiskSpace, isDiskFull } from './disk-space.js';
import { MetadataStore, type PieceRecord, type TaskRecord } from './metadata.js';

export type { PieceRecord, TaskRecord } from './metadata.js';
export type { ArrivingPiece, PieceSpan } from './arriving-pieces.js';

export interface StorageOptions {
  /** storage.dir */
  dir: string;
  /** storage.keep: keep tasks across restarts (our default) or wipe them on start (upstream's default). */
  keep: boolean;
  writeBufferSize: number;
  readBufferSize: number;
  now?: () => number;
  /** Bytes available on a directory's filesystem (tests); default statfs(2). */
  freeBytes?: (dir: string) => Promise<number>;
  /** Size of the metadata reserve (disk-space.ts); default 1 MiB. */
  metadataReserveBytes?: number;
}

export interface PieceToWrite {
  number: number;
  offset: number;
  length: number;
}

export interface PieceOrigin {
  /** common.v2.TrafficType */
  trafficType: number;
  parentId?: string;
  /** Digest the piece must have (from a parent); a mismatch is never stored as finished. */
  expectedDigest?: string;
  /**
   * Relay the piece to children while it arrives (storage.server.cutThrough; needs expectedDigest): it is listed
   * in `arriving` until stored or failed.
   */
  relay?: boolean;
}

export interface StorageLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export class Storage {
  readonly metadata: MetadataStore;
  readonly content: ContentStore;
  /** Reservations of the downloads in progress, and the metadata reserve (disk-space.ts). */
  readonly space: DiskSpace;
  /** Pieces from parents being written now that may be relayed (arriving-pieces.ts). */
  readonly arriving = new ArrivingPieces();
  private readonly keep: boolean;
  private readonly log?: StorageLogger;

  private constructor(
    metadata: MetadataStore,
    content: ContentStore,
    space: DiskSpace,
    keep: boolean,
    log?: StorageLogger,
  ) {
    this.metadata = metadata;
    this.content = content;
    this.space = space;
    this.keep = keep;
    this.log = log;
  }

  /** Opens (creating if needed) the storage under `dir`, wiping it first when `keep` is false. */
  static async open(options: StorageOptions, log?: StorageLogger): Promise<Storage> {
    const metadataDir = join(options.dir, 'metadata');
    await mkdir(metadataDir, { recursive: true });
    await mkdir(join(options.dir, 'tmp'), { recursive: true });
    const metadata = new MetadataStore(join(metadataDir, 'dfdaemon.db'), { now: options.now });
    const content = new ContentStore(options);
    await content.init();
    const space = new DiskSpace({
      contentDir: content.tasksDir,
      reservePath: join(metadataDir, 'reserve'),
      reserveBytes: options.metadataReserveBytes,
      freeBytes: options.freeBytes,
      log,
    });
    const storage = new Storage(metadata, content, space, options.keep, log);
    await storage.recover();
    await space.ensureReserve();
    return storage;
  }

  /**
   * Runs a metadata write that must succeed on a full disk (a delete that frees space, a failure to record): when
   * SQLite finds the disk full, the metadata reserve is released and the write tried once more.
   */
  private onFullDisk<T>(what: string, write: () => T): T {
    try {
      return write();
    } catch (e) {
      if (!isDiskFull(e) || !this.space.releaseReserve(what)) throw e;
      return write();
    }
  }

  /**
   * Start-up: wipe everything (keep: false), or drop records whose content file vanished so that a task is
   * never reported finished without its bytes.
   */
  private async recover(): Promise<void> {
    if (!this.keep) {
      this.metadata.clear();
      await this.content.clear();
      return;
    }
    // On a full disk these writes need the reserve; the daemon must start all the same, to free space.
    try {
      this.onFullDisk('reset upload counters', () => this.metadata.resetUploading());
    } catch (e) {
      this.log?.warn({ err: (e as Error).message }, 'could not reset upload counters');
    }
    for (const task of this.metadata.listTasks()) {
      if (!(await this.content.hasTask(task.id))) {
        this.log?.warn({ taskId: task.id }, 'content file missing; dropping task metadata');
        this.onFullDisk('drop a task without content', () => this.metadata.deleteTask(task.id));
      }
    }
  }

  getTask(taskId: string): TaskRecord | undefined {
    return this.metadata.getTask(taskId);
  }

  listTasks(): TaskRecord[] {
    return this.metadata.listTasks();
  }

  /**
   * Records the task's lengths and the origin's response header (whose ETag / Last-Modified name the version) and
   * creates its content file. A stored task keeps its pieces only if they are of this very object: same lengths,
   * same validator (see statChanged; without any validator nothing can tell, and the pieces are kept), content
   * file present. Otherwise they are dropped first: they belong to other content.
   */
  async prepareTask(
    taskId: string,
    fields: {
      contentLength: number;
      pieceLength: number;
      responseHeader: Record<string, string>;
      /** How the id was derived (TaskIdDerivation); pieces stored under another derivation are not kept. */
      idDerivation?: string;
      /** The digest the whole content must have, when the task's identity names one. */
      knownDigest?: string;
    },
  ): Promise<TaskRecord> {
    const existing = this.metadata.getTask(taskId);
    if (existing) {
      const why =
        existing.idDerivation !== fields.idDerivation
          ? `its id was derived from ${existing.idDerivation ?? 'an unrecorded input'}, not from ${fields.idDerivation ?? 'an unrecorded input'}`
          : existing.contentLength !== fields.contentLength || existing.pieceLength !== fields.pieceLength
            ? `lengths changed (${existing.contentLength}/${existing.pieceLength} → ${fields.contentLength}/${fields.pieceLength})`
            : (statChanged(validatorOf(existing.responseHeader), validatorOf(fields.responseHeader)) ??
              ((await this.content.hasTask(taskId)) ? undefined : 'content file missing'));
      if (why !== undefined) {
        this.log?.info({ taskId, why }, 'source is not the stored version; dropping stored pieces');
        await this.content.deleteTask(taskId);
        this.metadata.deleteTask(taskId);
      }
    }
    // Admitted only if the disk holds what is left to write beside the other downloads' reservations; released by
    // releaseSpace when the download ends.
    await this.reserveSpace(taskId, fields.contentLength);
    try {
      await this.content.createTask(taskId, fields.contentLength);
      return this.metadata.upsertTask(taskId, fields);
    } catch (e) {
      this.space.release(taskId);
      throw e;
    }
  }

  /**
   * Reserves the disk space a download of the task has still to write (its length less what its content file
   * holds); throws NO_SPACE, before any byte is written, when the disk cannot hold it beside the other downloads.
   */
  async reserveSpace(taskId: string, contentLength: number): Promise<void> {
    // A metadata reserve spent on an earlier full disk is written again first, if there is room now.
    await this.space.ensureReserve();
    const allocated = await this.content.allocatedBytes(taskId);
    await this.space.reserve(taskId, Math.max(0, contentLength - allocated));
  }

  /** The task's download ended: its unwritten reservation is given back. */
  releaseSpace(taskId: string): void {
    this.space.release(taskId);
  }

  /**
   * The bytes of a piece still arriving (cut-through), `chunkSize` at most per read, as they reach the content
   * file; the stream fails when the piece does, and stops waiting once `signal` aborts.
   */
  async readArriving(piece: ArrivingPiece, chunkSize: number, signal: AbortSignal): Promise<Readable> {
    const reader = await this.content.openReader(piece.taskId);
    return relayedBody(piece, reader, chunkSize, signal);
  }

  getPiece(taskId: string, number: number): PieceRecord | undefined {
    return this.metadata.getPiece(taskId, number);
  }

  listPieces(taskId: string): PieceRecord[] {
    return this.metadata.listPieces(taskId);
  }

  /** Writes a piece's bytes, verifies them if a digest is expected, then records the piece as finished. */
  async writePiece(
    taskId: string,
    piece: PieceToWrite,
    source: AsyncIterable<Buffer | Uint8Array>,
    origin: PieceOrigin,
  ): Promise<PieceRecord> {
    const arriving =
      origin.relay && origin.expectedDigest
        ? new ArrivingPiece(
            taskId,
            piece.number,
            piece.offset,
            piece.length,
            origin.expectedDigest,
            origin.parentId ?? '',
          )
        : undefined;
    if (!arriving || !this.arriving.start(arriving)) {
      return this.writeAndRecord(taskId, piece, source, origin);
    }
    try {
      const record = await this.writeAndRecord(taskId, piece, source, origin, (n) => arriving.progress(n));
      arriving.finish();
      return record;
    } catch (e) {
      arriving.fail(
        new DfError('UNAVAILABLE', `piece ${piece.number} of task ${taskId} failed while relayed`, {
          cause: e,
          retryable: true,
        }),
      );
      throw e;
    } finally {
      this.arriving.end(arriving);
    }
  }

  private async writeAndRecord(
    taskId: string,
    piece: PieceToWrite,
    source: AsyncIterable<Buffer | Uint8Array>,
    origin: PieceOrigin,
    onWritten?: (bytes: number) => void,
  ): Promise<PieceRecord> {
    const started = performance.now();
    const written = await this.content.writePiece(taskId, piece.offset, piece.length, source, onWritten);
    this.space.written(taskId, written.length);
    if (origin.expectedDigest !== undefined) {
      if (!origin.expectedDigest) {
        throw new DfError('DIGEST_MISMATCH', `piece ${piece.number} of task ${taskId} came without a digest`);
      }
      if (origin.expectedDigest !== written.digest) {
        throw new DfError(
          'DIGEST_MISMATCH',
          `piece ${piece.number} of task ${taskId}: digest ${written.digest} does not match expected ${origin.expectedDigest}`,
        );
      }
    }
    return this.metadata.finishPiece({
      taskId,
      number: piece.number,
      offset: piece.offset,
      length: written.length,
      digest: written.digest,
      parentId: origin.parentId,
      trafficType: origin.trafficType,
      costMs: performance.now() - started,
    });
  }

  /** Records the task finished and seals its content file (read-only, its mtime the finish time). */
  finishTask(taskId: string): void {
    this.metadata.finishTask(taskId);
    const finishedAt = this.metadata.getTask(taskId)?.finishedAt;
    if (!finishedAt) return;
    try {
      this.content.sealTask(taskId, finishedAt);
    } catch (e) {
      this.log?.warn({ taskId, err: (e as Error).message }, 'could not seal the content file');
    }
  }

  /** Records the task's failure; on a full disk with the help of the metadata reserve. */
  failTask(taskId: string): void {
    this.onFullDisk('record a failed task', () => this.metadata.failTask(taskId));
  }

  /**
   * Deletes the task: its content first, which frees the space (unless an output is a hard link to it), then its
   * metadata, with the metadata reserve if the disk is still full. A crash between the two leaves metadata without
   * content, which start-up drops. The metadata reserve is written again afterwards if there is room.
   */
  async deleteTask(taskId: string): Promise<void> {
    this.space.release(taskId);
    await this.content.deleteTask(taskId);
    this.onFullDisk('delete a task', () => this.metadata.deleteTask(taskId));
    void this.space.ensureReserve();
  }

  close(): void {
    this.metadata.close();
  }
}
