// What the embedded scheduler keeps across a restart (core/scheduler-state.ts), in SQLite: the announced hosts and
// the persistent cache tasks with their peers (which host holds which task, the replica target, the TTL). Go keeps the same in Redis
// (scheduler/resource/persistentcache); here it is one SQLite file in WAL mode, opened like the daemon's metadata
// (storage/metadata.ts openDatabase). Without it a restarted scheduler knew no persistent cache task: peers still
// held the bytes, yet `dfcache stat`/`export` answered NOT_FOUND and a replica lost was never replaced.
//
// Standard tasks and their peers are not kept: a download in flight re-registers on a new stream (peer-task.ts).
// Every write is one short synchronous statement (better-sqlite3), made when the model changes.

import type Database from 'better-sqlite3';
import type {
  SchedulerStateStore,
  StoredHost,
  StoredPersistentCachePeer,
  StoredPersistentCacheTask,
} from '../core/scheduler-state.js';
import { openDatabase } from './metadata.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS hosts (
  id TEXT PRIMARY KEY,
  info BLOB NOT NULL,
  interval_ms INTEGER NOT NULL,
  announced_from TEXT
);
CREATE TABLE IF NOT EXISTS persistent_cache_tasks (
  id TEXT PRIMARY KEY,
  persistent_replica_count INTEGER NOT NULL,
  tag TEXT,
  application TEXT,
  piece_length INTEGER NOT NULL,
  content_length INTEGER NOT NULL,
  piece_count INTEGER NOT NULL,
  ttl_ms INTEGER NOT NULL,
  state TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS persistent_cache_peers (
  task_id TEXT NOT NULL,
  id TEXT NOT NULL,
  host_id TEXT NOT NULL,
  persistent INTEGER NOT NULL,
  state TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (task_id, id)
);
`;

interface HostRow {
  id: string;
  info: Buffer;
  interval_ms: number;
  announced_from: string | null;
}

interface TaskRow {
  id: string;
  persistent_replica_count: number;
  tag: string | null;
  application: string | null;
  piece_length: number;
  content_length: number;
  piece_count: number;
  ttl_ms: number;
  state: string;
  created_at: number;
  updated_at: number;
}

interface PeerRow {
  task_id: string;
  id: string;
  host_id: string;
  persistent: number;
  state: string;
  created_at: number;
  updated_at: number;
}

/** The file the embedded scheduler keeps its state in, under its data directory. */
export const SCHEDULER_STORE_FILE = 'scheduler.db';

export class SqliteSchedulerStore implements SchedulerStateStore {
  private readonly db: Database.Database;
  private readonly stmts;

  constructor(path: string) {
    this.db = openDatabase(path, SCHEMA);
    const db = this.db;
    this.stmts = {
      saveHost: db.prepare(
        `INSERT OR REPLACE INTO hosts (id, info, interval_ms, announced_from) VALUES (?, ?, ?, ?)`,
      ),
      deleteHost: db.prepare('DELETE FROM hosts WHERE id = ?'),
      hosts: db.prepare<[], HostRow>('SELECT * FROM hosts'),
      saveTask: db.prepare(
        `INSERT OR REPLACE INTO persistent_cache_tasks (id, persistent_replica_count, tag, application,
           piece_length, content_length, piece_count, ttl_ms, state, created_at, updated_at)
         VALUES (@id, @persistent_replica_count, @tag, @application, @piece_length, @content_length,
           @piece_count, @ttl_ms, @state, @created_at, @updated_at)`,
      ),
      deleteTask: db.prepare('DELETE FROM persistent_cache_tasks WHERE id = ?'),
      deleteTaskPeers: db.prepare('DELETE FROM persistent_cache_peers WHERE task_id = ?'),
      tasks: db.prepare<[], TaskRow>('SELECT * FROM persistent_cache_tasks ORDER BY created_at'),
      savePeer: db.prepare(
        `INSERT OR REPLACE INTO persistent_cache_peers (task_id, id, host_id, persistent, state, created_at,
           updated_at) VALUES (@task_id, @id, @host_id, @persistent, @state, @created_at, @updated_at)`,
      ),
      deletePeer: db.prepare('DELETE FROM persistent_cache_peers WHERE task_id = ? AND id = ?'),
      peers: db.prepare<[], PeerRow>('SELECT * FROM persistent_cache_peers ORDER BY created_at'),
    };
  }

  saveHost(h: StoredHost): void {
    this.stmts.saveHost.run(h.id, Buffer.from(h.info), h.intervalMs, h.announcedFrom ?? null);
  }

  deleteHost(id: string): void {
    this.stmts.deleteHost.run(id);
  }

  hosts(): StoredHost[] {
    return this.stmts.hosts.all().map((r) => ({
      id: r.id,
      info: new Uint8Array(r.info),
      intervalMs: r.interval_ms,
      announcedFrom: r.announced_from ?? undefined,
    }));
  }

  saveTask(t: StoredPersistentCacheTask): void {
    this.stmts.saveTask.run({
      id: t.id,
      persistent_replica_count: t.persistentReplicaCount,
      tag: t.tag ?? null,
      application: t.application ?? null,
      piece_length: t.pieceLength,
      content_length: t.contentLength,
      piece_count: t.pieceCount,
      ttl_ms: t.ttlMs,
      state: t.state,
      created_at: t.createdAt.getTime(),
      updated_at: t.updatedAt.getTime(),
    });
  }

  /** The task and its peers, in one transaction. */
  deleteTask(id: string): void {
    this.db.transaction(() => {
      this.stmts.deleteTaskPeers.run(id);
      this.stmts.deleteTask.run(id);
    })();
  }

  tasks(): StoredPersistentCacheTask[] {
    return this.stmts.tasks.all().map((r) => ({
      id: r.id,
      persistentReplicaCount: r.persistent_replica_count,
      tag: r.tag ?? undefined,
      application: r.application ?? undefined,
      pieceLength: r.piece_length,
      contentLength: r.content_length,
      pieceCount: r.piece_count,
      ttlMs: r.ttl_ms,
      state: r.state,
      createdAt: new Date(r.created_at),
      updatedAt: new Date(r.updated_at),
    }));
  }

  savePeer(p: StoredPersistentCachePeer): void {
    this.stmts.savePeer.run({
      task_id: p.taskId,
      id: p.id,
      host_id: p.hostId,
      persistent: p.persistent ? 1 : 0,
      state: p.state,
      created_at: p.createdAt.getTime(),
      updated_at: p.updatedAt.getTime(),
    });
  }

  deletePeer(taskId: string, id: string): void {
    this.stmts.deletePeer.run(taskId, id);
  }

  peers(): StoredPersistentCachePeer[] {
    return this.stmts.peers.all().map((r) => ({
      id: r.id,
      taskId: r.task_id,
      hostId: r.host_id,
      persistent: r.persistent !== 0,
      state: r.state,
      createdAt: new Date(r.created_at),
      updatedAt: new Date(r.updated_at),
    }));
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
