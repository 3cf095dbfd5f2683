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
  AnnouncePersistentCachePeerResponse,
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
  type PersistentCacheTasks,
} from './persistent-cache.js';
import type { Host, Resources } from './resources.js';
import { alreadyExists, failedPrecondition, invalidArgument, notFound, toServiceError } from './status.js';
import { resetAfterTrailers } from './reset-after-trailers.js';

/** Candidate parents in one answer (Go: the best 3). */
const CANDIDATE_PARENT_LIMIT = 3;

type PersistentCacheMethods = Pick<
  SchedulerServer,
  | 'uploadPersistentCacheTaskStarted'
  | 'uploadPersistentCacheTaskFinished'
  | 'uploadPersistentCacheTaskFailed'
  | 'statPersistentCacheTask'
  | 'deletePersistentCacheTask'
  | 'announcePersistentCachePeer'
  | 'statPersistentCachePeer'
  | 'deletePersistentCachePeer'
>;

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

  methods(): PersistentCacheMethods {
    return {
      uploadPersistentCacheTaskStarted: this.unary('UploadPersistentCacheTaskStarted', (r, ip) =>
        this.started(r, ip),
      ),
      uploadPersistentCacheTaskFinished: this.unary('UploadPersistentCacheTaskFinished', (r, ip) =>
        this.finished(r, ip),
      ),
      uploadPersistentCacheTaskFailed: this.unary('UploadPersistentCacheTaskFailed', (r, ip) =>
        this.failed(r, ip),
      ),
      statPersistentCacheTask: this.unary('StatPersistentCacheTask', (r: StatPersistentCacheTaskRequest) =>
        this.task(r.taskId).message(),
      ),
      deletePersistentCacheTask: this.unary(
        'DeletePersistentCacheTask',
        async (r: DeletePersistentCacheTaskRequest, ip): Promise<Empty> => {
          checkIds(r);
          ownHost(this.host(r.hostId), ip, 'DeletePersistentCacheTask');
          this.task(r.taskId);
          await this.tasks.deleteEverywhere(r.taskId);
          this.log.info({ taskId: r.taskId, hostId: r.hostId }, 'persistent cache task deleted');
          return {};
        },
      ),
      statPersistentCachePeer: this.unary(
        'StatPersistentCachePeer',
        (r: StatPersistentCachePeerRequest): PeerMessage => this.peer(r.taskId, r.peerId).message(),
      ),
      deletePersistentCachePeer: this.unary(
        'DeletePersistentCachePeer',
        (r: DeletePersistentCachePeerRequest, ip): Empty => {
          const peer = this.peer(r.taskId, r.peerId);
          ownHost(peer.host, ip, 'DeletePersistentCachePeer');
          this.tasks.removePeer(peer);
          if (peer.persistent) this.tasks.replicate(peer.task, new Set([peer.host.id]));
          return {};
        },
      ),
      announcePersistentCachePeer: (call) => this.announce(call),
    };
  }

  private host(hostId: string): Host {
    const host = this.resources.hosts.get(hostId);
    if (!host) throw notFound(`host ${hostId} not found`);
    return host;
  }

  private task(taskId: string): PersistentCacheTask {
    const task = this.tasks.get(taskId);
    if (!task) throw notFound(`persistent cache task ${taskId} not found`);
    return task;
  }

  private peer(taskId: string, peerId: string): PersistentCachePeer {
    const peer = this.task(taskId).peers.get(peerId);
    if (!peer) throw notFound(`persistent cache peer ${peerId} not found`);
    return peer;
  }

  private started(r: UploadPersistentCacheTaskStartedRequest, ip: string): Empty {
    checkIds(r);
    validated(() => checkPersistentReplicaCount(r.persistentReplicaCount));
    if (r.pieceLength < MIN_PIECE_LENGTH) {
      throw invalidArgument(
        `invalid PieceLength: value must be at least ${MIN_PIECE_LENGTH}, got ${r.pieceLength}`,
      );
    }
    validated(() => checkPersistentCacheTtl(durationToMs(r.ttl)));
    const host = ownHost(this.host(r.hostId), ip, 'UploadPersistentCacheTaskStarted');
    const existing = this.tasks.get(r.taskId);
    if (existing && existing.state !== 'Failed') {
      throw alreadyExists(`persistent cache task ${r.taskId} already exists (${existing.state})`);
    }
    const task = this.tasks.create({
      id: r.taskId,
      persistentReplicaCount: r.persistentReplicaCount,
      tag: r.tag,
      application: r.application,
      pieceLength: r.pieceLength,
      contentLength: r.contentLength,
      pieceCount: r.pieceCount,
      ttlMs: durationToMs(r.ttl),
    });
    this.tasks.savePeer(new PersistentCachePeer(r.peerId, task, host, true, 'Uploading'));
    this.log.info(
      { taskId: r.taskId, hostId: r.hostId, replicas: r.persistentReplicaCount },
      'persistent cache upload started',
    );
    return {};
  }

  private finished(r: UploadPersistentCacheTaskFinishedRequest, ip: string): TaskMessage {
    checkIds(r);
    ownHost(this.host(r.hostId), ip, 'UploadPersistentCacheTaskFinished');
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
    ownHost(this.host(r.hostId), ip, 'UploadPersistentCacheTaskFailed');
    const peer = this.peer(r.taskId, r.peerId);
    peer.state = 'Failed';
    this.tasks.savePeer(peer);
    // Go marks the task Succeeded here (a bug, spec §6); a failed import leaves a task nobody holds: it goes.
    if (peer.task.state === 'Uploading') this.tasks.delete(r.taskId);
    this.log.info({ taskId: r.taskId, description: r.description }, 'persistent cache upload failed');
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
  private announce(
    call: ServerDuplexStream<AnnouncePersistentCachePeerRequest, AnnouncePersistentCachePeerResponse>,
  ): void {
    const ip = callerIpOf(call);
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
        this.log.info({ caller: ip, err: (e as Error).message }, 'AnnouncePersistentCachePeer failed');
        call.emit('error', toServiceError(e));
      } else call.end();
    };
    const answer = (task: PersistentCacheTask, child: Host) => {
      const parents = this.candidates(task, child, blocked);
      if (parents.length === 0) {
        throw failedPrecondition(`no peer holds persistent cache task ${task.id} for host ${child.id}`);
      }
      call.write({
        normalPersistentCacheTaskResponse: { candidateCacheParents: parents.map((p) => p.message()) },
      });
    };
    call.on('data', (r: AnnouncePersistentCachePeerRequest) => {
      if (done) return;
      try {
        checkIds(r);
        if (r.registerPersistentCachePeerRequest) {
          const reg = r.registerPersistentCachePeerRequest;
          const host = ownHost(this.host(r.hostId), ip, 'AnnouncePersistentCachePeer');
          const task = this.task(r.taskId);
          if (task.state !== 'Succeeded')
            throw failedPrecondition(`persistent cache task ${task.id} is ${task.state}`);
          peer = new PersistentCachePeer(r.peerId, task, host, reg.persistent, 'Running');
          this.tasks.savePeer(peer);
          if (task.init.contentLength === 0) call.write({ emptyPersistentCacheTaskResponse: {} });
          else answer(task, host);
          return;
        }
        if (!peer || peer.id !== r.peerId)
          throw failedPrecondition(`persistent cache peer ${r.peerId} is not registered`);
        if (r.reschedulePersistentCachePeerRequest) {
          for (const p of r.reschedulePersistentCachePeerRequest.candidateParents) {
            if (p.host?.id) blocked.add(p.host.id);
          }
          answer(peer.task, peer.host);
        } else if (r.downloadPersistentCachePeerFinishedRequest) {
          peer.state = 'Succeeded';
          peer.updatedAt = new Date();
          this.tasks.savePeer(peer);
          this.log.info(
            { taskId: peer.task.id, peerId: peer.id, persistent: peer.persistent },
            'persistent cache peer finished',
          );
          end();
        } else if (r.downloadPersistentCachePeerFailedRequest) {
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
