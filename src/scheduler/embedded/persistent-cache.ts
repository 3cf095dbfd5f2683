// Persistent cache tasks in the embedded scheduler (spec/scheduler.md §6; Go scheduler/resource/persistentcache and
// service_v2.go *PersistentCache*): which hosts hold each task, its TTL, and the replicas. Go keeps this in Redis;
// here it is in memory with a timer per task. A scheduler restart forgets the tasks (as Go without Redis knows
// none): peers still hold the bytes until their TTL, but exports need a new import.
//
// Replication (after an import finished, and whenever a holder leaves): need = persistent_replica_count − the
// persistent peers that hold or are fetching the task. Peers that merely cached it (an export) are promoted first
// with DfdaemonUpload.UpdatePersistentCacheTask; the rest are placed on random other hosts with
// DfdaemonUpload.DownloadPersistentCacheTask{persistent: true}, which fetch it P2P and register as persistent peers.
// Persistent tasks (dfstore) use the same registry with their own host RPCs (ReplicaRpcs, persistent-task.ts).

import { credentials, Metadata, type ChannelCredentials } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { msToDuration } from '../../core/duration.js';
import type {
  ObjectStorage,
  PersistentCachePeer as PeerMessage,
  PersistentCacheTask as TaskMessage,
} from '../../gen/common.js';
import { DfdaemonUploadClient } from '../../gen/dfdaemon.js';
import { hostMessage } from './messages.js';
import type { Host, Resources } from './resources.js';
import { hostTarget } from './seed-peer.js';

export type PersistentCachePeerState = 'Pending' | 'Uploading' | 'Running' | 'Succeeded' | 'Failed';

export interface PersistentCacheTaskInit {
  id: string;
  persistentReplicaCount: number;
  tag?: string;
  application?: string;
  /** A persistent task's object (dfstore): where replicas fetch what no peer has. */
  url?: string;
  objectStorage?: ObjectStorage;
  pieceLength: number;
  contentLength: number;
  pieceCount: number;
  ttlMs: number;
}

export class PersistentCacheTask {
  state: 'Uploading' | 'Succeeded' | 'Failed' = 'Uploading';
  readonly peers = new Map<string, PersistentCachePeer>();
  readonly createdAt = new Date();
  updatedAt = new Date();
  expiry?: NodeJS.Timeout;

  constructor(readonly init: PersistentCacheTaskInit) {}

  get id(): string {
    return this.init.id;
  }

  /** Peers that hold the task or are fetching it as persistent replicas. */
  persistentPeers(): PersistentCachePeer[] {
    return [...this.peers.values()].filter(
      (p) => p.persistent && (p.state === 'Succeeded' || p.state === 'Running' || p.state === 'Uploading'),
    );
  }

  message(): TaskMessage {
    const peers = [...this.peers.values()].filter((p) => p.state === 'Succeeded');
    return {
      id: this.id,
      persistentReplicaCount: this.init.persistentReplicaCount,
      currentPersistentReplicaCount: peers.filter((p) => p.persistent).length,
      currentReplicaCount: peers.length,
      tag: this.init.tag,
      application: this.init.application,
      pieceLength: this.init.pieceLength,
      contentLength: this.init.contentLength,
      pieceCount: this.init.pieceCount,
      state: this.state,
      ttl: msToDuration(this.init.ttlMs),
      createdAt: this.createdAt,
      updatedAt: this.updatedAt,
    };
  }
}

export class PersistentCachePeer {
  state: PersistentCachePeerState;
  readonly createdAt = new Date();
  updatedAt = new Date();

  constructor(
    readonly id: string,
    readonly task: PersistentCacheTask,
    readonly host: Host,
    public persistent: boolean,
    state: PersistentCachePeerState,
  ) {
    this.state = state;
  }

  message(): PeerMessage {
    return {
      id: this.id,
      persistent: this.persistent,
      cost: undefined,
      state: this.state,
      task: this.task.message(),
      host: hostMessage(this.host),
      createdAt: this.createdAt,
      updatedAt: this.updatedAt,
      concurrentPieceCount: 0,
    };
  }
}

type Done = (err: Error | null) => void;

/**
 * The host-side RPCs of one task kind (DfdaemonUpload): persistent cache tasks (dfcache) by default; persistent
 * tasks (dfstore, persistent-task.ts) have their own names and place replicas with the task's object.
 */
export interface ReplicaRpcs {
  noun: string;
  delete(c: DfdaemonUploadClient, taskId: string, deadline: number, cb: Done): void;
  promote(c: DfdaemonUploadClient, taskId: string, deadline: number, cb: Done): void;
  place(
    c: DfdaemonUploadClient,
    task: PersistentCacheTask,
    deadline: number,
  ): { on(e: string, f: (x?: unknown) => void): unknown; cancel(): void };
}

const PERSISTENT_CACHE_RPCS: ReplicaRpcs = {
  noun: 'persistent cache task',
  delete: (c, taskId, deadline, cb) =>
    c.deletePersistentCacheTask({ taskId }, new Metadata(), { deadline }, cb),
  promote: (c, taskId, deadline, cb) =>
    c.updatePersistentCacheTask({ taskId, persistent: true }, new Metadata(), { deadline }, cb),
  place: (c, task, deadline) =>
    c.downloadPersistentCacheTask(
      {
        taskId: task.id,
        persistent: true,
        tag: task.init.tag,
        application: task.init.application,
        needPieceContent: false,
        forceHardLink: false,
        overwrite: false,
      },
      { deadline },
    ),
};

/** How long a replica placement call may run (it streams until the replica holds the whole task). */
const PLACEMENT_TIMEOUT_MS = 6 * 60 * 60 * 1000;
const UPDATE_TIMEOUT_MS = 10_000;

export class PersistentCacheTasks {
  readonly tasks = new Map<string, PersistentCacheTask>();
  private readonly calls = new Set<{ cancel(): void }>();
  private closed = false;

  constructor(
    private readonly resources: Resources,
    private readonly log: Logger,
    private readonly creds: ChannelCredentials = credentials.createInsecure(),
    private readonly now: () => number = Date.now,
    private readonly rpcs: ReplicaRpcs = PERSISTENT_CACHE_RPCS,
  ) {
    resources.onHostDeleted((host) => this.hostLeft(host));
  }

  /** The task unless unknown or past its TTL. */
  get(taskId: string): PersistentCacheTask | undefined {
    return this.tasks.get(taskId);
  }

  create(init: PersistentCacheTaskInit): PersistentCacheTask {
    this.delete(init.id);
    const task = new PersistentCacheTask(init);
    this.tasks.set(task.id, task);
    // Every record of the task expires at created_at + ttl (no other GC), as in Go; each peer's own TTL matches.
    task.expiry = setTimeout(() => {
      this.log.info({ taskId: task.id }, `${this.rpcs.noun} expired`);
      this.delete(task.id);
    }, init.ttlMs);
    task.expiry.unref();
    return task;
  }

  delete(taskId: string): PersistentCacheTask | undefined {
    const task = this.tasks.get(taskId);
    if (!task) return undefined;
    clearTimeout(task.expiry);
    this.tasks.delete(taskId);
    return task;
  }

  /** A host left (DeleteHost or host GC): its copies are gone; tasks below their replica count get new ones. */
  private hostLeft(host: Host): void {
    for (const task of this.tasks.values()) {
      let lost = false;
      for (const peer of [...task.peers.values()]) {
        if (peer.host.id !== host.id) continue;
        task.peers.delete(peer.id);
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
    await Promise.all(
      [...hosts.values()].map((h) =>
        this.unary(h, (c, cb) => this.rpcs.delete(c, taskId, Date.now() + UPDATE_TIMEOUT_MS, cb)).catch(
          (e: Error) => this.log.info({ taskId, host: h.id, err: e.message }, 'delete on host failed'),
        ),
      ),
    );
  }

  /**
   * Brings the task up to its replica count: cached copies promoted first, then new replicas on hosts holding
   * nothing of it (not `blocked`, sharing, with room for it), chosen at random. Runs in the background.
   */
  replicate(task: PersistentCacheTask, blocked = new Set<string>()): void {
    if (this.closed) return;
    let need = task.init.persistentReplicaCount - task.persistentPeers().length;
    if (need <= 0) return;
    const cached = [...task.peers.values()].filter(
      (p) => !p.persistent && p.state === 'Succeeded' && !blocked.has(p.host.id),
    );
    for (const peer of cached.slice(0, need)) {
      peer.persistent = true;
      need--;
      void this.unary(peer.host, (c, cb) =>
        this.rpcs.promote(c, task.id, Date.now() + UPDATE_TIMEOUT_MS, cb),
      ).catch((e: Error) => {
        peer.persistent = false;
        this.log.warn(
          { taskId: task.id, host: peer.host.id, err: e.message },
          'could not promote a cached copy',
        );
      });
    }
    if (need <= 0) return;
    const holding = new Set([...task.peers.values()].map((p) => p.host.id));
    const candidates = [...this.resources.hosts.values()].filter(
      (h) =>
        !holding.has(h.id) &&
        !blocked.has(h.id) &&
        !h.disableShared &&
        (h.info.disk?.free === undefined ||
          h.info.disk.free === 0 ||
          h.info.disk.free >= task.init.contentLength),
    );
    shuffle(candidates);
    for (const host of candidates.slice(0, need)) this.place(task, host);
    if (candidates.length < need) {
      this.log.warn(
        { taskId: task.id, need, hosts: candidates.length },
        `not enough hosts for the persistent replica count of a ${this.rpcs.noun}`,
      );
    }
  }

  /** DownloadPersistentCacheTask{persistent} on the host's upload port; the reply is drained to its end. */
  private place(task: PersistentCacheTask, host: Host): void {
    const client = new DfdaemonUploadClient(hostTarget(host.info.ip, host.info.port), this.creds, {
      'grpc.max_receive_message_length': -1,
    });
    const call = this.rpcs.place(client, task, Date.now() + PLACEMENT_TIMEOUT_MS);
    this.calls.add(call);
    this.log.info({ taskId: task.id, host: host.id }, `placing a ${this.rpcs.noun} replica`);
    call.on('data', () => undefined);
    const end = (err?: unknown) => {
      this.calls.delete(call);
      client.close();
      if (err) {
        this.log.warn(
          { taskId: task.id, host: host.id, err: (err as Error).message },
          'replica placement failed',
        );
      }
    };
    call.on('error', end);
    call.on('end', () => end());
  }

  private unary(host: Host, f: (c: DfdaemonUploadClient, cb: Done) => unknown): Promise<void> {
    const client = new DfdaemonUploadClient(hostTarget(host.info.ip, host.info.port), this.creds);
    return new Promise<void>((resolve, reject) => {
      f(client, (err) => (err ? reject(err) : resolve()));
    }).finally(() => client.close());
  }

  close(): void {
    this.closed = true;
    for (const t of this.tasks.values()) clearTimeout(t.expiry);
    for (const c of [...this.calls]) c.cancel();
    this.calls.clear();
  }
}

function shuffle<T>(a: T[]): void {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
}
