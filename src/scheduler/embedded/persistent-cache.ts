// Persistent cache tasks in the embedded scheduler (spec/scheduler.md §6; Go scheduler/resource/persistentcache and
// service_v2.go *PersistentCache*): which hosts hold each task, its TTL, and the replicas
// (persistent-cache-replicas.ts places them). Persistent tasks (dfstore) use the same registry with their own host
// RPCs (ReplicaRpcs, persistent-task.ts), without a store. Go keeps this in Redis; here it is in memory, written through to the
// scheduler's store (scheduler-store.ts) and read back at start, so a restarted scheduler still knows every task,
// its holders and its replica target. A timer per task ends it at created_at + ttl.

import { credentials, type ChannelCredentials } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { SchedulerStateStore } from '../../core/scheduler-state.js';
import {
  PersistentCacheReplicas,
  type ReplicaRetryPolicy,
  type ReplicaRpcs,
} from './persistent-cache-replicas.js';
import {
  PersistentCachePeer,
  PersistentCacheTask,
  type PersistentCachePeerState,
  type PersistentCacheTaskInit,
  type PersistentCacheTaskState,
} from './persistent-cache-task.js';
import type { Host, Resources } from './resources.js';

export type { ReplicaRpcs } from './persistent-cache-replicas.js';
export {
  PersistentCachePeer,
  PersistentCacheTask,
  type PersistentCachePeerState,
  type PersistentCacheTaskInit,
} from './persistent-cache-task.js';

/** Peer states a restarted scheduler keeps: the others belonged to announce streams that ended with it. */
const KEPT_PEER_STATES: ReadonlySet<string> = new Set<PersistentCachePeerState>(['Uploading', 'Succeeded']);

export interface PersistentCacheTasksInit {
  resources: Resources;
  log: Logger;
  /** Where tasks and peers are written through to, and read back from at start; none: memory only. */
  store?: SchedulerStateStore;
  /** How hosts' upload ports are reached (replica placement, delete). */
  creds?: ChannelCredentials;
  replicaRetry?: ReplicaRetryPolicy;
  /** The host RPCs of the task kind: persistent cache tasks' by default (persistent tasks: persistent-task.ts). */
  rpcs?: ReplicaRpcs;
  now?: () => number;
}

/**
 * The registry of persistent cache tasks. Every change of a task or peer goes through its methods, which keep the
 * store in step with the model.
 */
export class PersistentCacheTasks {
  private readonly tasks = new Map<string, PersistentCacheTask>();
  private readonly replicas: PersistentCacheReplicas;
  private readonly resources: Resources;
  private readonly store?: SchedulerStateStore;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly noun: string;

  constructor(init: PersistentCacheTasksInit) {
    this.resources = init.resources;
    this.store = init.store;
    this.log = init.log;
    this.now = init.now ?? Date.now;
    this.replicas = new PersistentCacheReplicas(
      init.resources,
      { isCurrent: (t) => this.tasks.get(t.id) === t, savePeer: (p) => this.savePeer(p) },
      init.log,
      init.creds ?? credentials.createInsecure(),
      init.replicaRetry,
      init.rpcs,
    );
    this.noun = init.rpcs?.noun ?? 'persistent cache task';
    init.resources.onHostDeleted((host) => this.hostLeft(host));
  }

  /** The task unless unknown or past its TTL. */
  get(taskId: string): PersistentCacheTask | undefined {
    return this.tasks.get(taskId);
  }

  /** Every registered task (diagnostics and tests). */
  all(): PersistentCacheTask[] {
    return [...this.tasks.values()];
  }

  create(init: PersistentCacheTaskInit): PersistentCacheTask {
    this.delete(init.id);
    const task = new PersistentCacheTask(init, new Date(this.now()));
    this.register(task);
    this.saveTask(task);
    return task;
  }

  /** Registers the task with its expiry timer: every record of it ends at created_at + ttl, as in Go. */
  private register(task: PersistentCacheTask): void {
    this.tasks.set(task.id, task);
    task.expiry = setTimeout(
      () => {
        this.log.info({ taskId: task.id }, `${this.noun} expired`);
        this.delete(task.id);
      },
      Math.max(0, task.createdAt.getTime() + task.init.ttlMs - this.now()),
    );
    task.expiry.unref();
  }

  delete(taskId: string): PersistentCacheTask | undefined {
    const task = this.tasks.get(taskId);
    if (!task) return undefined;
    clearTimeout(task.expiry);
    clearTimeout(task.placementRetry);
    this.tasks.delete(taskId);
    this.store?.deleteTask(taskId);
    return task;
  }

  /** Records the task's state and time. */
  saveTask(task: PersistentCacheTask): void {
    if (this.tasks.get(task.id) !== task) return;
    this.store?.saveTask({
      ...task.init,
      id: task.id,
      state: task.state,
      createdAt: task.createdAt,
      updatedAt: task.updatedAt,
    });
  }

  /** Adds the peer to its task, or records its change. */
  savePeer(peer: PersistentCachePeer): void {
    if (this.tasks.get(peer.task.id) !== peer.task) return;
    peer.task.peers.set(peer.id, peer);
    this.store?.savePeer({
      id: peer.id,
      taskId: peer.task.id,
      hostId: peer.host.id,
      persistent: peer.persistent,
      state: peer.state,
      createdAt: peer.createdAt,
      updatedAt: peer.updatedAt,
    });
  }

  removePeer(peer: PersistentCachePeer): void {
    if (peer.task.peers.get(peer.id) !== peer) return;
    peer.task.peers.delete(peer.id);
    this.store?.deletePeer(peer.task.id, peer.id);
  }

  /** A host left (DeleteHost or host GC): its copies are gone; tasks below their replica count get new ones. */
  private hostLeft(host: Host): void {
    for (const task of [...this.tasks.values()]) {
      let lost = false;
      for (const peer of [...task.peers.values()]) {
        if (peer.host.id !== host.id) continue;
        this.removePeer(peer);
        lost ||= peer.persistent;
      }
      if (lost && task.state === 'Succeeded') this.replicate(task, new Set([host.id]));
    }
  }

  /** Tells every host holding the task to delete it (errors ignored), then forgets it. */
  async deleteEverywhere(taskId: string): Promise<void> {
    const task = this.delete(taskId);
    if (!task) return;
    const hosts = new Map([...task.peers.values()].map((p) => [p.host.id, p.host]));
    await this.replicas.deleteOn(taskId, hosts.values());
  }

  /** Brings the task up to its replica count in the background (persistent-cache-replicas.ts). */
  replicate(task: PersistentCacheTask, blocked?: ReadonlySet<string>): void {
    this.replicas.replicate(task, blocked);
  }

  /**
   * Reads the tasks and peers the store holds (the hosts are already back in `resources`): tasks past their TTL
   * and peers of streams that ended with the last run are dropped. Returns how many tasks came back.
   */
  restore(): number {
    if (!this.store) return 0;
    const now = this.now();
    for (const t of this.store.tasks()) {
      if (t.createdAt.getTime() + t.ttlMs <= now || t.state === 'Failed') {
        this.store?.deleteTask(t.id);
        continue;
      }
      const task = new PersistentCacheTask(
        {
          id: t.id,
          persistentReplicaCount: t.persistentReplicaCount,
          tag: t.tag,
          application: t.application,
          pieceLength: t.pieceLength,
          contentLength: t.contentLength,
          pieceCount: t.pieceCount,
          ttlMs: t.ttlMs,
        },
        t.createdAt,
      );
      task.state = t.state as PersistentCacheTaskState;
      task.updatedAt = t.updatedAt;
      this.register(task);
    }
    for (const p of this.store.peers()) {
      const task = this.tasks.get(p.taskId);
      const host = this.resources.hosts.get(p.hostId);
      if (!task || !host || !KEPT_PEER_STATES.has(p.state)) {
        this.store?.deletePeer(p.taskId, p.id);
        continue;
      }
      const peer = new PersistentCachePeer(
        p.id,
        task,
        host,
        p.persistent,
        p.state as PersistentCachePeerState,
        p.createdAt,
      );
      peer.updatedAt = p.updatedAt;
      task.peers.set(peer.id, peer);
    }
    return this.tasks.size;
  }

  /** Places the replicas every finished task lacks (after a restart: placements in flight ended with it). */
  replicateAll(): void {
    for (const task of this.tasks.values()) if (task.state === 'Succeeded') this.replicate(task);
  }

  close(): void {
    for (const t of this.tasks.values()) {
      clearTimeout(t.expiry);
      clearTimeout(t.placementRetry);
    }
    this.replicas.close();
  }
}
