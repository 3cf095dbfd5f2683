// The finished pieces of tasks, one row each, in a table of a metadata database: the standard tasks' `pieces`
// (metadata.ts) and the persistent cache tasks' `persistent_cache_pieces` (persistent-cache-metadata.ts) are the
// same records (upstream's one `piece` column family). A row is written only once the piece's bytes are stored.

import type Database from 'better-sqlite3';

export interface PieceRecord {
  taskId: string;
  number: number;
  offset: number;
  length: number;
  digest: string;
  parentId?: string;
  /** common.v2.TrafficType of the piece when it was stored (0 back-to-source, 1 remote peer, 2 local peer). */
  trafficType: number;
  costMs: number;
  createdAt: Date;
  updatedAt: Date;
  finishedAt: Date;
}

/** What recording a finished piece takes. */
export type FinishedPiece = Pick<
  PieceRecord,
  'taskId' | 'number' | 'offset' | 'length' | 'digest' | 'parentId' | 'trafficType' | 'costMs'
>;

interface PieceRow {
  task_id: string;
  number: number;
  offset: number;
  length: number;
  digest: string;
  parent_id: string | null;
  traffic_type: number;
  cost_ms: number;
  created_at: number;
  updated_at: number;
  finished_at: number;
}

function toPiece(r: PieceRow): PieceRecord {
  return {
    taskId: r.task_id,
    number: r.number,
    offset: r.offset,
    length: r.length,
    digest: r.digest,
    parentId: r.parent_id ?? undefined,
    trafficType: r.traffic_type,
    costMs: r.cost_ms,
    createdAt: new Date(r.created_at),
    updatedAt: new Date(r.updated_at),
    finishedAt: new Date(r.finished_at),
  };
}

export class PieceTable {
  private readonly stmts;

  /** The table's CREATE statement, for the database's schema (create it before constructing a PieceTable). */
  static schema(table: string): string {
    return `
CREATE TABLE IF NOT EXISTS ${table} (
  task_id TEXT NOT NULL,
  number INTEGER NOT NULL,
  offset INTEGER NOT NULL,
  length INTEGER NOT NULL,
  digest TEXT NOT NULL,
  parent_id TEXT,
  traffic_type INTEGER NOT NULL DEFAULT 0,
  cost_ms INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  finished_at INTEGER NOT NULL,
  PRIMARY KEY (task_id, number)
) WITHOUT ROWID;
`;
  }

  constructor(
    db: Database.Database,
    table: string,
    private readonly now: () => number,
  ) {
    this.stmts = {
      get: db.prepare<[string, number], PieceRow>(`SELECT * FROM ${table} WHERE task_id = ? AND number = ?`),
      list: db.prepare<[string], PieceRow>(`SELECT * FROM ${table} WHERE task_id = ? ORDER BY number`),
      count: db.prepare<[string], { n: number; bytes: number | null }>(
        `SELECT COUNT(*) AS n, SUM(length) AS bytes FROM ${table} WHERE task_id = ?`,
      ),
      insert: db.prepare(
        `INSERT OR REPLACE INTO ${table} (task_id, number, offset, length, digest, parent_id, traffic_type, cost_ms,
           created_at, updated_at, finished_at)
         VALUES (@task_id, @number, @offset, @length, @digest, @parent_id, @traffic_type, @cost_ms, @now, @now, @now)`,
      ),
      setDigest: db.prepare(
        `UPDATE ${table} SET digest = ?, updated_at = ? WHERE task_id = ? AND number = ?`,
      ),
      deleteAll: db.prepare(`DELETE FROM ${table} WHERE task_id = ?`),
      clear: db.prepare(`DELETE FROM ${table}`),
    };
  }

  get(taskId: string, number: number): PieceRecord | undefined {
    const r = this.stmts.get.get(taskId, number);
    return r ? toPiece(r) : undefined;
  }

  /** Finished pieces of a task, by number. */
  list(taskId: string): PieceRecord[] {
    return this.stmts.list.all(taskId).map(toPiece);
  }

  count(taskId: string): { count: number; bytes: number } {
    const r = this.stmts.count.get(taskId)!;
    return { count: r.n, bytes: r.bytes ?? 0 };
  }

  /** Records a finished piece (the caller wraps several in a transaction when it wants them at once). */
  insert(p: FinishedPiece): void {
    this.stmts.insert.run({
      task_id: p.taskId,
      number: p.number,
      offset: p.offset,
      length: p.length,
      digest: p.digest,
      parent_id: p.parentId ?? null,
      traffic_type: p.trafficType,
      cost_ms: Math.round(p.costMs),
      now: this.now(),
    });
  }

  setDigest(taskId: string, number: number, digest: string): void {
    this.stmts.setDigest.run(digest, this.now(), taskId, number);
  }

  deleteAll(taskId: string): void {
    this.stmts.deleteAll.run(taskId);
  }

  clear(): void {
    this.stmts.clear.run();
  }
}
