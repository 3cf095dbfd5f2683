// Task and piece metadata in SQLite (WAL). Upstream keeps the same records in RocksDB
// (dragonfly-client-storage/src/metadata.rs); the store is not a wire concern, so we take SQLite for its
// crash safety: a committed row survives `kill -9`, and a piece row is only written once its bytes are on disk.

import Database from 'better-sqlite3';
import { DfError } from '../core/errors.js';
import { PieceTable, type FinishedPiece, type PieceRecord } from './piece-table.js';

export type { FinishedPiece, PieceRecord } from './piece-table.js';

export interface TaskRecord {
  id: string;
  pieceLength?: number;
  contentLength?: number;
  responseHeader: Record<string, string>;
  uploadingCount: number;
  uploadedCount: number;
  createdAt: Date;
  updatedAt: Date;
  prefetchedAt?: Date;
  failedAt?: Date;
  finishedAt?: Date;
  /**
   * How the task's id was derived (core/task-id.ts TaskIdDerivation); undefined for a task stored before it was
   * recorded, which no request is served (it is fetched again).
   */
  idDerivation?: string;
  /** The digest the whole content must have, known from the task's identity; checked before it is finished. */
  knownDigest?: string;
}

interface TaskRow {
  id: string;
  piece_length: number | null;
  content_length: number | null;
  response_header: string;
  uploading_count: number;
  uploaded_count: number;
  created_at: number;
  updated_at: number;
  prefetched_at: number | null;
  failed_at: number | null;
  finished_at: number | null;
  id_derivation: string | null;
  known_digest: string | null;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS tasks (
  id TEXT PRIMARY KEY,
  piece_length INTEGER,
  content_length INTEGER,
  response_header TEXT NOT NULL DEFAULT '{}',
  uploading_count INTEGER NOT NULL DEFAULT 0,
  uploaded_count INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  prefetched_at INTEGER,
  failed_at INTEGER,
  finished_at INTEGER
);
${PieceTable.schema('pieces')}CREATE INDEX IF NOT EXISTS tasks_updated_at ON tasks (updated_at);
`;

/**
 * Columns added after the first schema, created in databases that lack them (an older dfdaemon's). A task stored
 * before a column existed reads NULL there.
 */
const ADDED_TASK_COLUMNS: ReadonlyArray<readonly [name: string, type: string]> = [
  ['id_derivation', 'TEXT'],
  ['known_digest', 'TEXT'],
];

const d = (ms: number | null): Date | undefined => (ms === null ? undefined : new Date(ms));

function toTask(r: TaskRow): TaskRecord {
  return {
    id: r.id,
    pieceLength: r.piece_length ?? undefined,
    contentLength: r.content_length ?? undefined,
    responseHeader: JSON.parse(r.response_header) as Record<string, string>,
    uploadingCount: r.uploading_count,
    uploadedCount: r.uploaded_count,
    createdAt: new Date(r.created_at),
    updatedAt: new Date(r.updated_at),
    prefetchedAt: d(r.prefetched_at),
    failedAt: d(r.failed_at),
    finishedAt: d(r.finished_at),
    idDerivation: r.id_derivation ?? undefined,
    knownDigest: r.known_digest ?? undefined,
  };
}

/**
 * Opens a metadata database in WAL mode and applies `schema`. NORMAL sync in WAL mode: a committed transaction
 * survives a process crash (kill -9); only an OS crash may lose the last commits, which at worst re-downloads a few
 * pieces.
 */
export function openDatabase(path: string, schema: string): Database.Database {
  try {
    const db = new Database(path);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('busy_timeout = 5000');
    db.exec(schema);
    return db;
  } catch (e) {
    throw new DfError('IO', `cannot open metadata database ${path}: ${(e as Error).message}`, { cause: e });
  }
}

/** The metadata database. One per daemon; every method is synchronous (better-sqlite3) and short. */
export class MetadataStore {
  private readonly db: Database.Database;
  private readonly now: () => number;
  private readonly stmts;
  private readonly pieces: PieceTable;

  constructor(path: string, options: { now?: () => number } = {}) {
    this.now = options.now ?? Date.now;
    this.db = openDatabase(path, SCHEMA);
    try {
      const have = new Set(
        (this.db.prepare('PRAGMA table_info(tasks)').all() as Array<{ name: string }>).map((c) => c.name),
      );
      for (const [name, type] of ADDED_TASK_COLUMNS) {
        if (!have.has(name)) this.db.exec(`ALTER TABLE tasks ADD COLUMN ${name} ${type}`);
      }
    } catch (e) {
      throw new DfError('IO', `cannot open metadata database ${path}: ${(e as Error).message}`, { cause: e });
    }
    const db = this.db;
    this.pieces = new PieceTable(db, 'pieces', this.now);
    this.stmts = {
      getTask: db.prepare<[string], TaskRow>('SELECT * FROM tasks WHERE id = ?'),
      listTasks: db.prepare<[], TaskRow>('SELECT * FROM tasks ORDER BY updated_at'),
      insertTask: db.prepare(
        `INSERT INTO tasks (id, piece_length, content_length, response_header, id_derivation, known_digest,
           created_at, updated_at)
         VALUES (@id, @piece_length, @content_length, @response_header, @id_derivation, @known_digest, @now, @now)
         ON CONFLICT(id) DO UPDATE SET piece_length = excluded.piece_length,
           content_length = excluded.content_length, response_header = excluded.response_header,
           id_derivation = excluded.id_derivation, known_digest = excluded.known_digest,
           failed_at = NULL, updated_at = excluded.updated_at`,
      ),
      touchTask: db.prepare('UPDATE tasks SET updated_at = ? WHERE id = ?'),
      finishTask: db.prepare(
        'UPDATE tasks SET finished_at = ?, failed_at = NULL, updated_at = ? WHERE id = ?',
      ),
      failTask: db.prepare(
        'UPDATE tasks SET failed_at = ?, updated_at = ? WHERE id = ? AND finished_at IS NULL',
      ),
      prefetchTask: db.prepare('UPDATE tasks SET prefetched_at = ?, updated_at = ? WHERE id = ?'),
      uploadStarted: db.prepare(
        'UPDATE tasks SET uploading_count = uploading_count + 1, updated_at = ? WHERE id = ?',
      ),
      uploadFinished: db.prepare(
        `UPDATE tasks SET uploading_count = MAX(uploading_count - 1, 0), uploaded_count = uploaded_count + 1,
         updated_at = ? WHERE id = ?`,
      ),
      uploadFailed: db.prepare(
        'UPDATE tasks SET uploading_count = MAX(uploading_count - 1, 0), updated_at = ? WHERE id = ?',
      ),
      deleteTask: db.prepare('DELETE FROM tasks WHERE id = ?'),
    };
  }

  getTask(id: string): TaskRecord | undefined {
    const r = this.stmts.getTask.get(id);
    return r ? toTask(r) : undefined;
  }

  /** Every task, least recently used first. */
  listTasks(): TaskRecord[] {
    return this.stmts.listTasks.all().map(toTask);
  }

  /** Records that a download of the task started, with what the source said about it. */
  upsertTask(
    id: string,
    fields: {
      pieceLength: number;
      contentLength: number;
      responseHeader: Record<string, string>;
      idDerivation?: string;
      knownDigest?: string;
    },
  ): TaskRecord {
    this.stmts.insertTask.run({
      id,
      piece_length: fields.pieceLength,
      content_length: fields.contentLength,
      response_header: JSON.stringify(fields.responseHeader),
      id_derivation: fields.idDerivation ?? null,
      known_digest: fields.knownDigest ?? null,
      now: this.now(),
    });
    return this.getTask(id)!;
  }

  touchTask(id: string): void {
    this.stmts.touchTask.run(this.now(), id);
  }

  finishTask(id: string): void {
    const now = this.now();
    this.stmts.finishTask.run(now, now, id);
  }

  failTask(id: string): void {
    const now = this.now();
    this.stmts.failTask.run(now, now, id);
  }

  prefetchTask(id: string): void {
    const now = this.now();
    this.stmts.prefetchTask.run(now, now, id);
  }

  uploadTaskStarted(id: string): void {
    this.stmts.uploadStarted.run(this.now(), id);
  }

  uploadTaskFinished(id: string): void {
    this.stmts.uploadFinished.run(this.now(), id);
  }

  uploadTaskFailed(id: string): void {
    this.stmts.uploadFailed.run(this.now(), id);
  }

  /** Deletes the task and its pieces in one transaction. */
  deleteTask(id: string): void {
    this.db.transaction(() => {
      this.pieces.deleteAll(id);
      this.stmts.deleteTask.run(id);
    })();
  }

  getPiece(taskId: string, number: number): PieceRecord | undefined {
    return this.pieces.get(taskId, number);
  }

  /** Finished pieces of a task, by number. Only finished pieces have rows. */
  listPieces(taskId: string): PieceRecord[] {
    return this.pieces.list(taskId);
  }

  countPieces(taskId: string): { count: number; bytes: number } {
    return this.pieces.count(taskId);
  }

  /** Records a finished piece. Callers write and digest the bytes first (see ContentStore.writePiece). */
  finishPiece(p: FinishedPiece): PieceRecord {
    this.pieces.insert(p);
    this.stmts.touchTask.run(this.now(), p.taskId);
    return this.getPiece(p.taskId, p.number)!;
  }

  /** Uploads do not survive a restart: clears counters a crash left behind, so GC can evict those tasks. */
  resetUploading(): void {
    this.db.exec('UPDATE tasks SET uploading_count = 0 WHERE uploading_count != 0');
  }

  /** Removes every record (upstream's wipe on start when storage.keep is false). */
  clear(): void {
    this.db.exec('DELETE FROM pieces; DELETE FROM tasks;');
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
