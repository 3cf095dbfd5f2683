// The persistent-cache RPCs of scheduler.v2.Scheduler in the embedded scheduler (spec/scheduler.md §6; Go
// service_v2.go UploadPersistentCacheTask*, StatPersistentCacheTask, DeletePersistentCacheTask,
// AnnouncePersistentCachePeer, Stat/DeletePersistentCachePeer). Validation follows Go's validators: ids set,
// replica count ≥ 1, piece length ≥ 4 MiB, ttl in [5m, 7d].

import type { sendUnaryData, ServerDuplexStream, ServerUnaryCall } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { durationToMs } from '../../core/duration.js';
import { isDfError } from '../../core/errors.js';
import { checkPersistentCacheTtl, checkPersistentReplicaCount } from '../../core/persistent-cache.js';
import { MIN_PIECE_LENGTH } from '../../core/piece.js';
import type {
  PersistentCachePeer as PeerMessage,
  PersistentCacheTask as TaskMessage,
} from '../../gen/common.js';
import type { Empty } from '../../gen/google/protobuf/empty.js';
import type {
  AnnouncePersistentCachePeerRequest,
  DeletePersistentCachePeerRequest,
  DeletePersistentCacheTaskRequest,
  SchedulerServer,
  StatPersistentCachePeerRequest,
  StatPersistentCacheTaskRequest,
  UploadPersistentCacheTaskFailedRequest,
  UploadPersistentCacheTaskFinishedRequest,
  UploadPersistentCacheTaskStartedRequest,
} from '../../gen/scheduler.js';
import { callerIpOf, checkIdLength, ownHost } from './callers.js';
import { idcAffinityScore, locationAffinityScore } from './evaluator.js';
import {
  PersistentCachePeer,
  type PersistentCacheTask,
  type PersistentCacheTaskInit,
  type PersistentCacheTasks,
} from './persistent-cache.js';
import type { Host, Resources } from './resources.js';
import { alreadyExists, failedPrecondition, invalidArgument, notFound, toServiceError } from './status.js';
import { resetAfterTrailers } from './reset-after-trailers.js';

/** Candidate parents in one answer (Go: the best 3). */
const CANDIDATE_PARENT_LIMIT = 3;

/** The request of an UploadPersistent{Cache,}TaskStarted, in the fields both kinds have. */
export interface UploadStartedRequest {
  hostId: string;
  taskId: string;
  peerId: string;
  persistentReplicaCount: number;
  contentLength: number;
  pieceCount: number;
  ttl?: { seconds: number; nanos: number };
}

/** One message of an announce stream, as the kind names it. */
type AnnounceRequest = { hostId: string; taskId: string; peerId: string } & Record<string, unknown>;

/**
 * What differs between the persistent cache RPCs (dfcache) and the persistent RPCs (dfstore,
 * persistent-task-service.ts): the RPC names, the announce stream's message names, what an upload names besides
 * the common fields, and what a peer hears when no peer can give the task.
 */
export interface PersistentWire {
  /** `PersistentCacheTask` / `PersistentTask`, `PersistentCachePeer` / `PersistentPeer`: the RPC names. */
  task: string;
  peer: string;
  noun: string;
  /** The task's fields besides the common ones, checked as the Go validator does. */
  init(
    r: UploadStartedRequest,
  ): Pick<PersistentCacheTaskInit, 'tag' | 'application' | 'pieceLength' | 'url' | 'objectStorage'>;
  register(r: AnnounceRequest): { persistent: boolean } | undefined;
  reschedule(r: AnnounceRequest): { candidateParents: Array<{ host?: { id: string } }> } | undefined;
  /** The peer holds the whole task (from parents, or from the source). */
  finished(r: AnnounceRequest): boolean;
  failed(r: AnnounceRequest): boolean;
  normal(parents: PeerMessage[]): object;
  empty: object;
  /** No peer can give the task: an answer (a persistent task's: back to its object store), or undefined to fail. */
  noParents?: object;
}

const PERSISTENT_CACHE_WIRE: PersistentWire = {
  task: 'PersistentCacheTask',
  peer: 'PersistentCachePeer',
  noun: 'persistent cache task',
  init: (r) => {
    const c = r as UploadPersistentCacheTaskStartedRequest;
    if (c.pieceLength < MIN_PIECE_LENGTH) {
      throw invalidArgument(
        `invalid PieceLength: value must be at least ${MIN_PIECE_LENGTH}, got ${c.pieceLength}`,
      );
    }
    return { tag: c.tag, application: c.application, pieceLength: c.pieceLength };
  },
  register: (r) => (r as AnnouncePersistentCachePeerRequest).registerPersistentCachePeerRequest,
  reschedule: (r) => (r as AnnouncePersistentCachePeerRequest).reschedulePersistentCachePeerRequest,
  finished: (r) => !!(r as AnnouncePersistentCachePeerRequest).downloadPersistentCachePeerFinishedRequest,
  failed: (r) => !!(r as AnnouncePersistentCachePeerRequest).downloadPersistentCachePeerFailedRequest,
  normal: (parents) => ({ normalPersistentCacheTaskResponse: { candidateCacheParents: parents } }),
  empty: { emptyPersistentCacheTaskResponse: {} },
};

function checkIds(r: { hostId: string; taskId: string; peerId?: string }): void {
  if (!r.hostId) throw invalidArgument('invalid HostId: value length must be at least 1');
  if (!r.taskId) throw invalidArgument('invalid TaskId: value length must be at least 1');
  if (r.peerId !== undefined && !r.peerId)
    throw invalidArgument('invalid PeerId: value length must be at least 1');
  checkIdLength('HostId', r.hostId);
  checkIdLength('TaskId', r.taskId);
  if (r.peerId) checkIdLength('PeerId', r.peerId);
}

/** The error of a core check as the scheduler answers it (INVALID_ARGUMENT). */
function validated(check: () => void): void {
  try {
    check();
  } catch (e) {
    throw isDfError(e) ? invalidArgument(e.message) : e;
  }
}

export class PersistentCacheService {
  constructor(
    private readonly resources: Resources,
    private readonly tasks: PersistentCacheTasks,
    private readonly log: Logger,
    private readonly wire: PersistentWire = PERSISTENT_CACHE_WIRE,
  ) {}

  private unary<Req, Res>(
    method: string,
    f: (req: Req, callerIp: string) => Res | Promise<Res>,
  ): (call: ServerUnaryCall<Req, Res>, cb: sendUnaryData<Res>) => void {
    return (call, cb) => {
      const ip = callerIpOf(call);
      Promise.resolve()
        .then(() => f(call.request, ip))
        .then(
          (r) => cb(null, r),
          (e: unknown) => {
            this.log.info({ method, caller: ip, err: (e as Error).message }, 'request failed');
            cb(toServiceError(e));
          },
        );
    };
  }

  /** The kind's eight RPCs, under its names. */
  methods(): Partial<SchedulerServer> {
    const { task: T, peer: P } = this.wire;
    const named = {
      [`upload${T}Started`]: this.unary(`Upload${T}Started`, (r: UploadStartedRequest, ip) =>
        this.started(r, ip),
      ),
      [`upload${T}Finished`]: this.unary(
        `Upload${T}Finished`,
        (r: UploadPersistentCacheTaskFinishedRequest, ip) => this.finished(r, ip),
      ),
      [`upload${T}Failed`]: this.unary(`Upload${T}Failed`, (r: UploadPersistentCacheTaskFailedRequest, ip) =>
        this.failed(r, ip),
      ),
      [`stat${T}`]: this.unary(`Stat${T}`, (r: StatPersistentCacheTaskRequest) =>
        this.task(r.taskId).message(),
      ),
      [`delete${T}`]: this.unary(
        `Delete${T}`,
        async (r: DeletePersistentCacheTaskRequest, ip): Promise<Empty> => {
          checkIds(r);
          ownHost(this.host(r.hostId), ip, `Delete${T}`);
          this.task(r.taskId);
          await this.tasks.deleteEverywhere(r.taskId);
          this.log.info({ taskId: r.taskId, hostId: r.hostId }, `${this.wire.noun} deleted`);
          return {};
        },
      ),
      [`stat${P}`]: this.unary(`Stat${P}`, (r: StatPersistentCachePeerRequest): PeerMessage =>
        this.peer(r.taskId, r.peerId).message(),
      ),
      [`delete${P}`]: this.unary(`Delete${P}`, (r: DeletePersistentCachePeerRequest, ip): Empty => {
        const peer = this.peer(r.taskId, r.peerId);
        ownHost(peer.host, ip, `Delete${P}`);
        this.tasks.removePeer(peer);
        if (peer.persistent) this.tasks.replicate(peer.task, new Set([peer.host.id]));
        return {};
      }),
      [`announce${P}`]: (call: ServerDuplexStream<AnnounceRequest, object>) => this.announce(call),
    };
    return named as Partial<SchedulerServer>;
  }

  private host(hostId: string): Host {
    const host = this.resources.hosts.get(hostId);
    if (!host) throw notFound(`host ${hostId} not found`);
    return host;
  }

  private task(taskId: string): PersistentCacheTask {
    const task = this.tasks.get(taskId);
    if (!task) throw notFound(`${this.wire.noun} ${taskId} not found`);
    return task;
  }

  private peer(taskId: string, peerId: string): PersistentCachePeer {
    const peer = this.task(taskId).peers.get(peerId);
    if (!peer) throw notFound(`${this.wire.noun.replace(/task$/, 'peer')} ${peerId} not found`);
    return peer;
  }

  private started(r: UploadStartedRequest, ip: string): Empty {
    checkIds(r);
    validated(() => checkPersistentReplicaCount(r.persistentReplicaCount));
    const fields = this.wire.init(r);
    validated(() => checkPersistentCacheTtl(durationToMs(r.ttl)));
    const T = this.wire.task;
    const host = ownHost(this.host(r.hostId), ip, `Upload${T}Started`);
    const existing = this.tasks.get(r.taskId);
    if (existing && existing.state !== 'Failed') {
      throw alreadyExists(`${this.wire.noun} ${r.taskId} already exists (${existing.state})`);
    }
    const task = this.tasks.create({
      id: r.taskId,
      persistentReplicaCount: r.persistentReplicaCount,
      ...fields,
      contentLength: r.contentLength,
      pieceCount: r.pieceCount,
      ttlMs: durationToMs(r.ttl),
    });
    this.tasks.savePeer(new PersistentCachePeer(r.peerId, task, host, true, 'Uploading'));
    this.log.info(
      { taskId: r.taskId, hostId: r.hostId, replicas: r.persistentReplicaCount },
      `${this.wire.noun} upload started`,
    );
    return {};
  }

  private finished(r: UploadPersistentCacheTaskFinishedRequest, ip: string): TaskMessage {
    checkIds(r);
    ownHost(this.host(r.hostId), ip, `Upload${this.wire.task}Finished`);
    const peer = this.peer(r.taskId, r.peerId);
    peer.state = 'Succeeded';
    peer.updatedAt = new Date();
    this.tasks.savePeer(peer);
    peer.task.state = 'Succeeded';
    peer.task.updatedAt = new Date();
    this.tasks.saveTask(peer.task);
    const message = peer.task.message();
    this.tasks.replicate(peer.task);
    return message;
  }

  private failed(r: UploadPersistentCacheTaskFailedRequest, ip: string): Empty {
    checkIds(r);
    ownHost(this.host(r.hostId), ip, `Upload${this.wire.task}Failed`);
    const peer = this.peer(r.taskId, r.peerId);
    peer.state = 'Failed';
    this.tasks.savePeer(peer);
    // Go marks the task Succeeded here (a bug, spec §6); a failed import leaves a task nobody holds: it goes.
    if (peer.task.state === 'Uploading') this.tasks.delete(r.taskId);
    this.log.info({ taskId: r.taskId, description: r.description }, `${this.wire.noun} upload failed`);
    return {};
  }

  /**
   * Up to 3 peers on other hosts holding the whole task, best IDC/location affinity first (0.7·IDC + 0.3·LOC),
   * persistent replicas before cached copies; `blocked` hosts excluded.
   */
  private candidates(
    task: PersistentCacheTask,
    child: Host,
    blocked: ReadonlySet<string>,
  ): PersistentCachePeer[] {
    const score = (p: PersistentCachePeer) =>
      0.7 * idcAffinityScore(p.host.idc, child.idc) +
      0.3 * locationAffinityScore(p.host.location, child.location);
    return [...task.peers.values()]
      .filter((p) => p.state === 'Succeeded' && p.host.id !== child.id && !blocked.has(p.host.id))
      .sort((a, b) => Number(b.persistent) - Number(a.persistent) || score(b) - score(a))
      .slice(0, CANDIDATE_PARENT_LIMIT);
  }

  /** One export or replica fetch: register → parents, reschedule → other parents, finished / failed. */
  private announce(call: ServerDuplexStream<AnnounceRequest, object>): void {
    const ip = callerIpOf(call);
    const wire = this.wire;
    const rpc = `Announce${wire.peer}`;
    let peer: PersistentCachePeer | undefined;
    const blocked = new Set<string>();
    let done = false;
    const end = (e?: unknown) => {
      if (done) return;
      done = true;
      // A peer that did not finish holds nothing to give: it leaves the task.
      if (peer && peer.state !== 'Succeeded') this.tasks.removePeer(peer);
      // The Rust client waits for its request stream to be dropped after its last request, as on AnnouncePeer.
      resetAfterTrailers(call);
      if (e !== undefined) {
        this.log.info({ caller: ip, err: (e as Error).message }, `${rpc} failed`);
        call.emit('error', toServiceError(e));
      } else call.end();
    };
    const answer = (task: PersistentCacheTask, child: Host) => {
      const parents = this.candidates(task, child, blocked);
      if (parents.length > 0) call.write(wire.normal(parents.map((p) => p.message())));
      else if (wire.noParents) call.write(wire.noParents);
      else throw failedPrecondition(`no peer holds ${wire.noun} ${task.id} for host ${child.id}`);
    };
    call.on('data', (r: AnnounceRequest) => {
      if (done) return;
      try {
        checkIds(r);
        const reg = wire.register(r);
        if (reg) {
          const host = ownHost(this.host(r.hostId), ip, rpc);
          const task = this.task(r.taskId);
          if (task.state !== 'Succeeded')
            throw failedPrecondition(`${wire.noun} ${task.id} is ${task.state}`);
          peer = new PersistentCachePeer(r.peerId, task, host, reg.persistent, 'Running');
          this.tasks.savePeer(peer);
          if (task.init.contentLength === 0) call.write(wire.empty);
          else answer(task, host);
          return;
        }
        if (!peer || peer.id !== r.peerId) {
          throw failedPrecondition(`${wire.noun.replace(/task$/, 'peer')} ${r.peerId} is not registered`);
        }
        const reschedule = wire.reschedule(r);
        if (reschedule) {
          for (const p of reschedule.candidateParents) {
            if (p.host?.id) blocked.add(p.host.id);
          }
          answer(peer.task, peer.host);
        } else if (wire.finished(r)) {
          peer.state = 'Succeeded';
          peer.updatedAt = new Date();
          this.tasks.savePeer(peer);
          this.log.info(
            { taskId: peer.task.id, peerId: peer.id, persistent: peer.persistent },
            `${wire.noun.replace(/task$/, 'peer')} finished`,
          );
          end();
        } else if (wire.failed(r)) {
          peer.state = 'Failed';
          end();
        }
        // Started, piece finished and piece failed only update the peer's time here.
        else peer.updatedAt = new Date();
      } catch (e) {
        end(e);
      }
    });
    call.on('end', () => end());
    call.on('error', () => end());
    call.on('cancelled', () => end());
  }
}
