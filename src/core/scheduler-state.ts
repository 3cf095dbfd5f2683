// What the embedded scheduler keeps across a restart, as plain records, and the store that keeps them. The
// scheduler (scheduler/embedded) writes through to it; storage/scheduler-store.ts keeps it in SQLite. Both sides
// share this module because they sit side by side in the layers (neither may import the other).

export interface StoredHost {
  id: string;
  /** The announced common.v2.Host, protobuf-encoded. */
  info: Uint8Array;
  intervalMs: number;
  announcedFrom?: string;
}

export interface StoredPersistentCacheTask {
  id: string;
  persistentReplicaCount: number;
  tag?: string;
  application?: string;
  pieceLength: number;
  contentLength: number;
  pieceCount: number;
  ttlMs: number;
  state: string;
  createdAt: Date;
  updatedAt: Date;
}

export interface StoredPersistentCachePeer {
  id: string;
  taskId: string;
  hostId: string;
  persistent: boolean;
  state: string;
  createdAt: Date;
  updatedAt: Date;
}

export interface SchedulerStateStore {
  saveHost(h: StoredHost): void;
  deleteHost(id: string): void;
  hosts(): StoredHost[];
  saveTask(t: StoredPersistentCacheTask): void;
  /** The task and its peers. */
  deleteTask(id: string): void;
  tasks(): StoredPersistentCacheTask[];
  savePeer(p: StoredPersistentCachePeer): void;
  deletePeer(taskId: string, id: string): void;
  peers(): StoredPersistentCachePeer[];
  close(): void;
}
