// Replica placement of persistent cache tasks (spec/scheduler.md §6 "Replication"; Go scheduling.go
// *PersistentCache*): need = persistent_replica_count − the persistent peers that hold or are fetching the task.
// Peers that merely cached it (an export) are promoted first with DfdaemonUpload.UpdatePersistentCacheTask; the rest
// are placed on random other hosts with DfdaemonUpload.DownloadPersistentCacheTask{persistent: true}, which fetch it
// P2P and register as persistent peers.
//
// Go places once per trigger (an import finished, a holder left). A placement that fails — the host refused, or it
// died mid-download — would then wait for the next trigger, which may never come. Here the scheduler tries again on
// its own: after 1 s, doubling up to 30 s, at most 6 times in a row (about a minute), hosts that failed last.

import { Metadata, type ChannelCredentials } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { DfdaemonUploadClient } from '../../gen/dfdaemon.js';
import type { PersistentCachePeer, PersistentCacheTask } from './persistent-cache-task.js';
import type { Host, Resources } from './resources.js';
import { hostTarget } from './seed-peer.js';

/** How long a replica placement call may run (it streams until the replica holds the whole task). */
const PLACEMENT_TIMEOUT_MS = 6 * 60 * 60 * 1000;
const UPDATE_TIMEOUT_MS = 10_000;

export interface ReplicaRetryPolicy {
  /** The first retry's delay; each next one doubles. */
  baseMs: number;
  /** The longest delay. */
  maxMs: number;
  /** Retries in a row before the task waits for the next trigger (an import, a holder leaving, a restart). */
  limit: number;
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

export const PERSISTENT_CACHE_RPCS: ReplicaRpcs = {
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

export const DEFAULT_REPLICA_RETRY: ReplicaRetryPolicy = { baseMs: 1000, maxMs: 30_000, limit: 6 };

/** The delay before retry `attempt` (0-based): base·2^attempt, capped, jittered ×[0.8, 1.2) so hosts spread. */
export function replicaRetryDelayMs(
  attempt: number,
  policy: ReplicaRetryPolicy,
  random: () => number = Math.random,
): number {
  return Math.min(policy.baseMs * 2 ** attempt, policy.maxMs) * (0.8 + 0.4 * random());
}

/** What the replica placer needs of the task registry. */
export interface ReplicaRegistry {
  /** Whether the task is still the registered one (not deleted, expired or re-imported). */
  isCurrent(task: PersistentCacheTask): boolean;
  /** Records a peer's change (promotion to persistent). */
  savePeer(peer: PersistentCachePeer): void;
}

export class PersistentCacheReplicas {
  private readonly calls = new Set<{ cancel(): void }>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private closed = false;

  constructor(
    private readonly resources: Resources,
    private readonly registry: ReplicaRegistry,
    private readonly log: Logger,
    private readonly creds: ChannelCredentials,
    private readonly retry: ReplicaRetryPolicy = DEFAULT_REPLICA_RETRY,
    private readonly rpcs: ReplicaRpcs = PERSISTENT_CACHE_RPCS,
  ) {}

  /**
   * Brings the task up to its replica count: cached copies promoted first, then new replicas on hosts holding
   * nothing of it (not `blocked`, sharing, with room for it), chosen at random, hosts whose placement failed last.
   * Runs in the background.
   */
  replicate(task: PersistentCacheTask, blocked: ReadonlySet<string> = new Set()): void {
    if (this.closed || !this.registry.isCurrent(task)) return;
    let need = task.init.persistentReplicaCount - task.persistentPeers().length;
    if (need <= 0) {
      // Whole again: the next loss starts a fresh series of retries.
      task.placementRetries = 0;
      task.failedPlacementHosts.clear();
      return;
    }
    const cached = [...task.peers.values()].filter(
      (p) => !p.persistent && p.state === 'Succeeded' && !blocked.has(p.host.id),
    );
    for (const peer of cached.slice(0, need)) {
      need--;
      this.promote(peer);
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
    // Stable: the shuffled order stays among the hosts that did not fail, and among those that did.
    candidates.sort(
      (a, b) => Number(task.failedPlacementHosts.has(a.id)) - Number(task.failedPlacementHosts.has(b.id)),
    );
    for (const host of candidates.slice(0, need)) this.place(task, host);
    if (candidates.length < need) {
      this.log.warn(
        { taskId: task.id, need, hosts: candidates.length },
        `not enough hosts for the persistent replica count of a ${this.rpcs.noun}`,
      );
      this.retryLater(task);
    }
  }

  private promote(peer: PersistentCachePeer): void {
    peer.persistent = true;
    this.registry.savePeer(peer);
    void this.unary(peer.host, (c, cb) =>
      this.rpcs.promote(c, peer.task.id, Date.now() + UPDATE_TIMEOUT_MS, cb),
    ).catch((e: Error) => {
      peer.persistent = false;
      this.registry.savePeer(peer);
      this.log.warn(
        { taskId: peer.task.id, host: peer.host.id, err: e.message },
        'could not promote a cached copy',
      );
      this.retryLater(peer.task);
    });
  }

  /**
   * DownloadPersistentCacheTask{persistent} on the host's upload port; the reply is drained to its end. Whatever
   * the end, the count is checked again later: a host that failed (refused, died mid-download) goes last.
   */
  private place(task: PersistentCacheTask, host: Host): void {
    const client = new DfdaemonUploadClient(hostTarget(host.info.ip, host.info.port), this.creds, {
      'grpc.max_receive_message_length': -1,
    });
    const call = this.rpcs.place(client, task, Date.now() + PLACEMENT_TIMEOUT_MS);
    this.calls.add(call);
    this.log.info({ taskId: task.id, host: host.id }, `placing a ${this.rpcs.noun} replica`);
    call.on('data', () => undefined);
    let ended = false;
    const end = (err?: unknown) => {
      if (ended) return;
      ended = true;
      this.calls.delete(call);
      client.close();
      if (err) {
        task.failedPlacementHosts.add(host.id);
        this.log.warn(
          { taskId: task.id, host: host.id, err: (err as Error).message },
          'replica placement failed',
        );
      }
      this.retryLater(task);
    };
    call.on('error', end);
    call.on('end', () => end());
  }

  /** Checks the task's count again after the next back-off delay, unless one is pending or retries ran out. */
  private retryLater(task: PersistentCacheTask): void {
    if (this.closed || task.placementRetry || !this.registry.isCurrent(task)) return;
    if (task.placementRetries >= this.retry.limit) {
      this.log.warn(
        { taskId: task.id, retries: task.placementRetries },
        'persistent cache replicas still missing after the last retry; waiting for the next trigger',
      );
      return;
    }
    const delay = replicaRetryDelayMs(task.placementRetries, this.retry);
    task.placementRetries++;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      task.placementRetry = undefined;
      this.replicate(task);
    }, delay);
    timer.unref();
    this.timers.add(timer);
    task.placementRetry = timer;
  }

  private unary(host: Host, f: (c: DfdaemonUploadClient, cb: Done) => unknown): Promise<void> {
    const client = new DfdaemonUploadClient(hostTarget(host.info.ip, host.info.port), this.creds);
    return new Promise<void>((resolve, reject) => {
      f(client, (err) => (err ? reject(err) : resolve()));
    }).finally(() => client.close());
  }

  /** Tells every host in `hosts` to delete the task (errors only logged). */
  async deleteOn(taskId: string, hosts: Iterable<Host>): Promise<void> {
    await Promise.all(
      [...hosts].map((h) =>
        this.unary(h, (c, cb) => this.rpcs.delete(c, taskId, Date.now() + UPDATE_TIMEOUT_MS, cb)).catch(
          (e: Error) => this.log.info({ taskId, host: h.id, err: e.message }, 'delete on host failed'),
        ),
      ),
    );
  }

  close(): void {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
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
