// Persistent cache task and piece records (dfcache import/export) in their own SQLite file. Upstream keeps them in
// the `persistent_cache_task` column family beside the standard tasks (dragonfly-client-storage/src/metadata.rs);
// a table of their own keeps them out of everything that walks standard tasks (GC's LRU eviction above all: a
// persistent cache task lives until its TTL, never less).

import type Database from 'better-sqlite3';
import { openDatabase } from './metadata.js';
import { PieceTable, type FinishedPiece, type PieceRecord } from './piece-table.js';

/** What tells a finished content file from the same file edited afterwards (through a hard link to it). */
export interface FileIdentity {
  ino: number;
  size: number;
  mtimeMs: number;
}

export interface PersistentCacheTaskRecord {
  id: string;
  /** Held as a replica the scheduler counts (importer or placed replica), not merely a cached export. */
  persistent: boolean;
  persistentReplicaCount: number;
  tag?: string;
  application?: string;
  pieceLength: number;
  contentLength: number;
  pieceCount: number;
  ttlMs: number;
  uploadingCount: number;
  uploadedCount: number;
  createdAt: Date;
  updatedAt: Date;
  finishedAt?: Date;
  failedAt?: Date;
  /** The content file's identity when the task finished; a file that no longer matches it is never served. */
  identity?: FileIdentity;
}

/** A piece of a persistent cache task: the same record as a standard task's. Its digest is empty until computed
 * for a hard-linked import (before the piece is first served). */
export type PersistentCachePieceRecord = PieceRecord;

interface TaskRow {
  id: string;
  persistent: number;
  persistent_replica_count: number;
  tag: string | null;
  application: string | null;
  piece_length: number;
  content_length: number;
  piece_count: number;
  ttl_ms: number;
  uploading_count: number;
  uploaded_count: number;
  created_at: number;
  updated_at: number;
  finished_at: number | null;
  failed_at: number | null;
  identity: string | null;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS persistent_cache_tasks (
  id TEXT PRIMARY KEY,
  persistent INTEGER NOT NULL,
  persistent_replica_count INTEGER NOT NULL,
  tag TEXT,
  application TEXT,
  piece_length INTEGER NOT NULL,
  content_length INTEGER NOT NULL,
  piece_count INTEGER NOT NULL,
  ttl_ms INTEGER NOT NULL,
  uploading_count INTEGER NOT NULL DEFAULT 0,
  uploaded_count INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  finished_at INTEGER,
  failed_at INTEGER,
  identity TEXT
);
${PieceTable.schema('persistent_cache_pieces')}`;

const d = (ms: number | null): Date | undefined => (ms === null ? undefined : new Date(ms));

function toTask(r: TaskRow): PersistentCacheTaskRecord {
  return {
    id: r.id,
    persistent: r.persistent !== 0,
    persistentReplicaCount: r.persistent_replica_count,
    tag: r.tag ?? undefined,
    application: r.application ?? undefined,
    pieceLength: r.piece_length,
    contentLength: r.content_length,
    pieceCount: r.piece_count,
    ttlMs: r.ttl_ms,
    uploadingCount: r.uploading_count,
    uploadedCount: r.uploaded_count,
    createdAt: new Date(r.created_at),
    updatedAt: new Date(r.updated_at),
    finishedAt: d(r.finished_at),
    failedAt: d(r.failed_at),
    identity: r.identity ? (JSON.parse(r.identity) as FileIdentity) : undefined,
  };
}

/** The fields a new task record takes; the rest start empty. */
export type NewPersistentCacheTask = Pick<
  PersistentCacheTaskRecord,
  | 'id'
  | 'persistent'
  | 'persistentReplicaCount'
  | 'tag'
  | 'application'
  | 'pieceLength'
  | 'contentLength'
  | 'pieceCount'
  | 'ttlMs'
> & { createdAt?: Date };

export class PersistentCacheMetadata {
  private readonly db: Database.Database;
  private readonly now: () => number;
  private readonly stmts;
  private readonly pieces: PieceTable;

  constructor(path: string, options: { now?: () => number } = {}) {
    this.now = options.now ?? Date.now;
    this.db = openDatabase(path, SCHEMA);
    const db = this.db;
    this.pieces = new PieceTable(db, 'persistent_cache_pieces', this.now);
    this.stmts = {
      get: db.prepare<[string], TaskRow>('SELECT * FROM persistent_cache_tasks WHERE id = ?'),
      list: db.prepare<[], TaskRow>('SELECT * FROM persistent_cache_tasks ORDER BY created_at'),
      insert: db.prepare(
        `INSERT OR REPLACE INTO persistent_cache_tasks (id, persistent, persistent_replica_count, tag, application,
           piece_length, content_length, piece_count, ttl_ms, created_at, updated_at)
         VALUES (@id, @persistent, @persistent_replica_count, @tag, @application, @piece_length, @content_length,
           @piece_count, @ttl_ms, @created_at, @now)`,
      ),
      finish: db.prepare(
        'UPDATE persistent_cache_tasks SET finished_at = ?, failed_at = NULL, identity = ?, updated_at = ? WHERE id = ?',
      ),
      fail: db.prepare('UPDATE persistent_cache_tasks SET failed_at = ?, updated_at = ? WHERE id = ?'),
      persist: db.prepare('UPDATE persistent_cache_tasks SET persistent = ?, updated_at = ? WHERE id = ?'),
      uploadStarted: db.prepare(
        'UPDATE persistent_cache_tasks SET uploading_count = uploading_count + 1, updated_at = ? WHERE id = ?',
      ),
      uploadEnded: db.prepare(
        `UPDATE persistent_cache_tasks SET uploading_count = MAX(uploading_count - 1, 0),
           uploaded_count = uploaded_count + ?, updated_at = ? WHERE id = ?`,
      ),
      deleteTask: db.prepare('DELETE FROM persistent_cache_tasks WHERE id = ?'),
    };
  }

  get(id: string): PersistentCacheTaskRecord | undefined {
    const r = this.stmts.get.get(id);
    return r ? toTask(r) : undefined;
  }

  /** Every task, oldest first. */
  list(): PersistentCacheTaskRecord[] {
    return this.stmts.list.all().map(toTask);
  }

  /** Creates the task's record afresh (its pieces of an earlier attempt are dropped in the same transaction). */
  create(t: NewPersistentCacheTask): PersistentCacheTaskRecord {
    const now = this.now();
    this.db.transaction(() => {
      this.pieces.deleteAll(t.id);
      this.stmts.insert.run({
        id: t.id,
        persistent: t.persistent ? 1 : 0,
        persistent_replica_count: t.persistentReplicaCount,
        tag: t.tag ?? null,
        application: t.application ?? null,
        piece_length: t.pieceLength,
        content_length: t.contentLength,
        piece_count: t.pieceCount,
        ttl_ms: t.ttlMs,
        created_at: t.createdAt?.getTime() ?? now,
        now,
      });
    })();
    return this.get(t.id)!;
  }

  finish(id: string, identity?: FileIdentity): void {
    const now = this.now();
    this.stmts.finish.run(now, identity ? JSON.stringify(identity) : null, now, id);
  }

  fail(id: string): void {
    const now = this.now();
    this.stmts.fail.run(now, now, id);
  }

  setPersistent(id: string, persistent: boolean): void {
    this.stmts.persist.run(persistent ? 1 : 0, this.now(), id);
  }

  uploadStarted(id: string): void {
    this.stmts.uploadStarted.run(this.now(), id);
  }

  uploadEnded(id: string, ok: boolean): void {
    this.stmts.uploadEnded.run(ok ? 1 : 0, this.now(), id);
  }

  delete(id: string): void {
    this.db.transaction(() => {
      this.pieces.deleteAll(id);
      this.stmts.deleteTask.run(id);
    })();
  }

  getPiece(taskId: string, number: number): PersistentCachePieceRecord | undefined {
    return this.pieces.get(taskId, number);
  }

  listPieces(taskId: string): PersistentCachePieceRecord[] {
    return this.pieces.list(taskId);
  }

  /** Records finished pieces in one transaction (an import registers all its pieces at once). */
  finishPieces(pieces: readonly FinishedPiece[]): void {
    this.db.transaction(() => {
      for (const p of pieces) this.pieces.insert(p);
    })();
  }

  setPieceDigest(taskId: string, number: number, digest: string): void {
    this.pieces.setDigest(taskId, number, digest);
  }

  /** Uploads do not survive a restart. */
  resetUploading(): void {
    this.db.exec('UPDATE persistent_cache_tasks SET uploading_count = 0 WHERE uploading_count != 0');
  }

  clear(): void {
    this.pieces.clear();
    this.db.exec('DELETE FROM persistent_cache_tasks;');
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
