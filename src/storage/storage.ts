// The storage facade: metadata and content kept consistent. It owns the rule that a piece is finished only
// once its bytes are in the content file and its digest is known (and, for pieces from parents, matches).

import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { DfError } from '../core/errors.js';
import { statChanged, validatorOf } from '../core/validator.js';
import { ContentStore } from './content.js';
import { MetadataStore, type PieceRecord, type TaskRecord } from './metadata.js';

export type { PieceRecord, TaskRecord } from './metadata.js';

export interface StorageOptions {
  /** storage.dir */
  dir: string;
  /** storage.keep: keep tasks across restarts (our default) or wipe them on start (upstream's default). */
  keep: boolean;
  writeBufferSize: number;
  readBufferSize: number;
  now?: () => number;
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
}

export interface StorageLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export class Storage {
  readonly metadata: MetadataStore;
  readonly content: ContentStore;
  private readonly keep: boolean;
  private readonly log?: StorageLogger;

  private constructor(metadata: MetadataStore, content: ContentStore, keep: boolean, log?: StorageLogger) {
    this.metadata = metadata;
    this.content = content;
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
    const storage = new Storage(metadata, content, options.keep, log);
    await storage.recover();
    return storage;
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
    this.metadata.resetUploading();
    for (const task of this.metadata.listTasks()) {
      if (!(await this.content.hasTask(task.id))) {
        this.log?.warn({ taskId: task.id }, 'content file missing; dropping task metadata');
        this.metadata.deleteTask(task.id);
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
        this.metadata.deleteTask(taskId);
        await this.content.deleteTask(taskId);
      }
    }
    await this.content.createTask(taskId, fields.contentLength);
    return this.metadata.upsertTask(taskId, fields);
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
    const started = performance.now();
    const written = await this.content.writePiece(taskId, piece.offset, piece.length, source);
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

  failTask(taskId: string): void {
    this.metadata.failTask(taskId);
  }

  async deleteTask(taskId: string): Promise<void> {
    this.metadata.deleteTask(taskId);
    await this.content.deleteTask(taskId);
  }

  close(): void {
    this.metadata.close();
  }
}
