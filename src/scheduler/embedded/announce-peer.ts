// What the scheduler does with each AnnouncePeerRequest (upstream `scheduler/service/service_v2.go` handle*Request,
// spec/scheduler.md §1.3, §1.4). The stream mechanics (order, ending the call) live in announce-peer-stream.ts.

import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { Priority, type Download, type Piece } from '../../gen/common.js';
import type { AnnouncePeerRequest } from '../../gen/scheduler.js';
import { durationToMs, storedPiece } from './messages.js';
import type { SchedulerOptions } from './options.js';
import { HostType, Peer, Task, type AnnouncePeerStream, type Host, type Resources } from './resources.js';
import type { Scheduling } from './scheduling.js';
import type { SeedPeerTrigger } from './seed-peer.js';
import { checkIdLength, ownHost } from './callers.js';
import { failedPrecondition, internal, invalidArgument, notFound } from './status.js';

/** Upper bound of the register back-off, whatever the host's concurrency (Go's maxDelayForRegisterPeer). */
const MAX_REGISTER_DELAY_MS = 1000;

const DIGEST =
  /^(md5:[0-9a-fA-F]{32}|sha1:[0-9a-fA-F]{40}|sha256:[0-9a-fA-F]{64}|sha512:[0-9a-fA-F]{128}|blake3:[0-9a-fA-F]{64}|crc32:[0-9a-fA-F]+)$/;

/** One AnnouncePeer stream as the handlers see it. */
export interface PeerStreamContext {
  readonly stream: AnnouncePeerStream;
  readonly signal: AbortSignal;
  /** The peer registered on this stream, once known. */
  peer?: Peer;
  /** The caller's IP: a peer may be registered only on a host announced from it. */
  readonly callerIp?: string;
}

/** Whether the stream goes on, or ends with OK (the four terminal requests). */
export type Outcome = 'continue' | 'end';

export interface AnnouncePeerDeps {
  resources: Resources;
  scheduling: Scheduling;
  seedPeer: SeedPeerTrigger;
  options: SchedulerOptions;
  log: Logger;
}

/** The checks of Go's protoc-gen-validate that matter to us (§8.1): ids, the oneof, the url and the digest. */
export function validateAnnouncePeerRequest(req: AnnouncePeerRequest): void {
  if (!req.hostId)
    throw invalidArgument('invalid AnnouncePeerRequest.HostId: value length must be at least 1');
  if (!req.taskId)
    throw invalidArgument('invalid AnnouncePeerRequest.TaskId: value length must be at least 1');
  if (!req.peerId)
    throw invalidArgument('invalid AnnouncePeerRequest.PeerId: value length must be at least 1');
  checkIdLength('AnnouncePeerRequest.HostId', req.hostId);
  checkIdLength('AnnouncePeerRequest.TaskId', req.taskId);
  checkIdLength('AnnouncePeerRequest.PeerId', req.peerId);
  const register = req.registerPeerRequest;
  if (register) {
    const d = register.download;
    if (!d) throw invalidArgument('invalid RegisterPeerRequest.Download: value is required');
    if (!isAbsoluteUrl(d.url)) throw invalidArgument('invalid Download.Url: value must be absolute');
    if (d.digest && !DIGEST.test(d.digest)) {
      throw invalidArgument(`invalid Download.Digest: ${JSON.stringify(d.digest)} is not algorithm:hex`);
    }
  }
  const failed = req.downloadPieceFailedRequest;
  if (failed && !failed.parentId) {
    throw invalidArgument('invalid DownloadPieceFailedRequest.ParentId: value length must be at least 1');
  }
}

function isAbsoluteUrl(url: string): boolean {
  try {
    return new URL(url).protocol.length > 1;
  } catch {
    return false;
  }
}

export class AnnouncePeerHandler {
  constructor(private readonly d: AnnouncePeerDeps) {}

  async handle(ctx: PeerStreamContext, req: AnnouncePeerRequest): Promise<Outcome> {
    validateAnnouncePeerRequest(req);
    if (req.registerPeerRequest) {
      await this.register(ctx, req, req.registerPeerRequest.download!);
      return 'continue';
    }
    if (req.downloadPeerStartedRequest)
      return this.failPeerOnError(req.peerId, () => this.started(req.peerId));
    if (req.downloadPeerBackToSourceStartedRequest) {
      return this.failBackToSourceOnError(req.peerId, () => this.backToSourceStarted(req.peerId));
    }
    if (req.reschedulePeerRequest) {
      const ids = req.reschedulePeerRequest.candidateParents.map((p) => p.id);
      return this.failPeerOnError(req.peerId, () => this.reschedule(ctx, req.peerId, ids));
    }
    if (req.downloadPeerFinishedRequest) return this.finished(req.peerId);
    if (req.downloadPeerBackToSourceFinishedRequest) {
      return this.failBackToSourceOnError(req.peerId, () => this.backToSourceFinished(req.peerId));
    }
    if (req.downloadPeerFailedRequest) return this.failed(req.peerId);
    if (req.downloadPeerBackToSourceFailedRequest) return this.backToSourceFailed(req.peerId);
    // Piece requests never end the stream: their errors are only logged.
    try {
      if (req.downloadPieceFinishedRequest)
        this.pieceFinished(req.peerId, req.downloadPieceFinishedRequest.piece, false);
      else if (req.downloadPieceBackToSourceFinishedRequest)
        this.pieceFinished(req.peerId, req.downloadPieceBackToSourceFinishedRequest.piece, true);
      else if (req.downloadPieceFailedRequest) {
        const r = req.downloadPieceFailedRequest;
        this.pieceFailed(req.peerId, r.parentId, r.temporary);
      } else if (req.downloadPieceBackToSourceFailedRequest) this.pieceBackToSourceFailed(req.peerId);
      else throw failedPrecondition(`receive unknown request: ${JSON.stringify(Object.keys(req))}`);
    } catch (e) {
      if (isUnknownRequest(req)) throw e;
      this.d.log.warn({ peerId: req.peerId, err: (e as Error).message }, 'piece request failed');
    }
    return 'continue';
  }

  // --- register ---------------------------------------------------------------------------------------------

  private async register(
    ctx: PeerStreamContext,
    req: AnnouncePeerRequest,
    download: Download,
  ): Promise<void> {
    const { resources, options } = this.d;
    const host = resources.hosts.get(req.hostId);
    if (!host) throw notFound(`host ${req.hostId} not found`);
    if (ctx.callerIp !== undefined) ownHost(host, ctx.callerIp, 'RegisterPeer');
    const task = this.loadOrCreateTask(req.taskId, download);
    let peer = resources.peers.get(req.peerId);
    if (!peer) {
      peer = new Peer({
        id: req.peerId,
        task,
        host,
        priority: download.priority,
        range: download.range,
        concurrentPieceCount: download.concurrentPieceCount,
        stream: ctx.stream,
      });
      resources.storePeer(peer);
    }
    ctx.peer = peer;
    host.concurrentRegisterCount++;
    try {
      await this.registerPeer(ctx, host, task, peer, download, options);
    } catch (e) {
      if (!peer.is('Failed', 'Leave')) peer.event('DownloadFailed');
      throw e;
    } finally {
      host.concurrentRegisterCount--;
    }
  }

  private loadOrCreateTask(taskId: string, download: Download): Task {
    const { resources, options } = this.d;
    let task = resources.tasks.get(taskId);
    if (task) {
      task.url = download.url;
      task.filteredQueryParams = download.filteredQueryParams;
      task.requestHeader = download.requestHeader;
      return task;
    }
    task = new Task({
      id: taskId,
      type: download.type,
      url: download.url,
      digest: download.digest || undefined,
      tag: download.tag ?? '',
      application: download.application ?? '',
      filteredQueryParams: download.filteredQueryParams,
      requestHeader: download.requestHeader,
      pieceLength: download.actualPieceLength ?? 0,
      contentLength: download.actualContentLength ?? 0,
      pieceCount: download.actualPieceCount ?? 0,
      backToSourceLimit: options.backToSourceCount,
      peersTradeBothWays: options.swarm,
    });
    resources.tasks.set(taskId, task);
    return task;
  }

  private async registerPeer(
    ctx: PeerStreamContext,
    host: Host,
    task: Task,
    peer: Peer,
    download: Download,
    options: SchedulerOptions,
  ): Promise<void> {
    const log = this.d.log.child({ peerId: peer.id, taskId: task.id, hostId: host.id });
    // The peer has the whole task locally: it only reports it, nothing is scheduled or triggered.
    if (download.metadataOnly) {
      this.taskDownload(task);
      const stream = this.streamOf(peer);
      peer.event('RegisterNormal');
      log.info({}, 'peer hits local cache, send MetadataOnlyResponse');
      stream.send({ metadataOnlyResponse: {} });
      return;
    }
    // Spread a host's concurrent registrations so they do not all reach the source at once (not for seeds,
    // which serve latency-sensitive small reads).
    if (host.type !== HostType.SUPER_SEED && options.registerBackoffBaseMs > 0) {
      const k = Math.max(1, host.concurrentRegisterCount);
      const d = Math.min(options.registerBackoffBaseMs * 2 ** k, MAX_REGISTER_DELAY_MS);
      await sleep(d * (0.5 + Math.random()), undefined, { signal: ctx.signal });
    }
    const blocklist = new Set([peer.id]);
    if (download.needBackToSource) {
      peer.needBackToSource = true;
    } else if (
      task.state === 'Pending' ||
      task.state === 'Failed' ||
      task.state === 'Leave' ||
      (task.state === 'Succeeded' && !task.hasAvailablePeer(host.id, blocklist))
    ) {
      if (host.type === HostType.NORMAL && this.d.seedPeer.hasAvailable()) {
        this.downloadTaskBySeedPeer(task, peer, download);
      } else {
        peer.needBackToSource = true;
      }
    }
    this.taskDownload(task);
    if (task.sizeScope() === 3 /* EMPTY */) {
      const stream = this.streamOf(peer);
      peer.event('RegisterEmpty');
      log.info({}, 'send EmptyTaskResponse');
      stream.send({ emptyTaskResponse: {} });
      return;
    }
    peer.event('RegisterNormal');
    peer.blockParents.add(peer.id);
    await this.d.scheduling.scheduleCandidateParents(peer, peer.blockParents, ctx.signal);
  }

  /** Download on the task, or only a touch when it is already Running. */
  private taskDownload(task: Task): void {
    if (task.state === 'Running') task.updatedAt = new Date();
    else task.event('Download');
  }

  private streamOf(peer: Peer): AnnouncePeerStream {
    if (!peer.stream) throw notFound('AnnouncePeerStream not found');
    return peer.stream;
  }

  /** By priority (no manager, so LEVEL0 is taken as is): trigger a seed, or send the peer to the source, or refuse. */
  private downloadTaskBySeedPeer(task: Task, peer: Peer, download: Download): void {
    switch (peer.priority) {
      case Priority.LEVEL0:
      case Priority.LEVEL4:
      case Priority.LEVEL5:
      case Priority.LEVEL6:
        if (!task.isSeedPeerFailed(this.d.options.seedPeerFailedTimeoutMs)) {
          // The seed fetches from the source and keeps the file in its cache only: no output path, and no piece
          // bytes streamed back to us.
          const seedDownload: Download = {
            ...download,
            needBackToSource: true,
            outputPath: undefined,
            needPieceContent: false,
          };
          // Remembered on the task so that peers wait for this seed instead of going to the source.
          const ended = task.seedTriggered();
          if (this.d.seedPeer.trigger(task.id, seedDownload, ended)) return;
          ended();
        }
        peer.needBackToSource = true;
        return;
      case Priority.LEVEL3:
        peer.needBackToSource = true;
        return;
      case Priority.LEVEL2:
        throw notFound(`${task.id} peer not found candidate peers`);
      case Priority.LEVEL1:
        throw failedPrecondition(`${task.id} peer is forbidden`);
      default:
        throw invalidArgument(`invalid priority ${peer.priority}`);
    }
  }

  // --- the other requests -----------------------------------------------------------------------------------

  private loadPeer(peerId: string): Peer {
    const peer = this.d.resources.peers.get(peerId);
    if (!peer) throw notFound(`peer ${peerId} not found`);
    return peer;
  }

  /** Started/Reschedule: a failure marks the peer Failed and ends the stream. */
  private async failPeerOnError(peerId: string, f: () => Promise<void> | void): Promise<Outcome> {
    try {
      await f();
      return 'continue';
    } catch (e) {
      const peer = this.d.resources.peers.get(peerId);
      if (peer && !peer.is('Failed', 'Leave')) peer.event('DownloadFailed');
      throw e;
    }
  }

  /** BTS-Started/BTS-Finished: a failure takes the back-to-source-failed path (which fails the task too). */
  private async failBackToSourceOnError(
    peerId: string,
    f: () => Promise<Outcome> | Outcome | void,
  ): Promise<Outcome> {
    try {
      return (await f()) ?? 'continue';
    } catch (e) {
      const peer = this.d.resources.peers.get(peerId);
      if (peer) {
        try {
          this.backToSourceFailedPeer(peer);
        } catch {
          // The original error is the one to report.
        }
      }
      throw e;
    }
  }

  private started(peerId: string): void {
    const peer = this.loadPeer(peerId);
    if (!peer.is('Running')) peer.event('Download');
  }

  private backToSourceStarted(peerId: string): void {
    const peer = this.loadPeer(peerId);
    if (!peer.is('Running')) peer.event('DownloadBackToSource');
  }

  private async reschedule(ctx: PeerStreamContext, peerId: string, parentIds: string[]): Promise<void> {
    const peer = this.loadPeer(peerId);
    for (const id of parentIds) peer.blockParents.add(id);
    await this.d.scheduling.scheduleCandidateParents(peer, peer.blockParents, ctx.signal);
  }

  private finished(peerId: string): Outcome {
    const peer = this.loadPeer(peerId);
    peer.costMs = Date.now() - peer.createdAt.getTime();
    peer.event('DownloadSucceeded');
    return 'end';
  }

  private backToSourceFinished(peerId: string): Outcome {
    const peer = this.loadPeer(peerId);
    peer.costMs = Date.now() - peer.createdAt.getTime();
    peer.event('DownloadSucceeded');
    // Only a whole back-to-source download proves the task complete.
    if (!peer.range && peer.task.state !== 'Succeeded') peer.task.event('DownloadSucceeded');
    return 'end';
  }

  private failed(peerId: string): Outcome {
    this.loadPeer(peerId).event('DownloadFailed');
    return 'end';
  }

  private backToSourceFailed(peerId: string): Outcome {
    this.backToSourceFailedPeer(this.loadPeer(peerId));
    return 'end';
  }

  private backToSourceFailedPeer(peer: Peer): void {
    if (!peer.is('Failed', 'Leave')) peer.event('DownloadFailed');
    const task = peer.task;
    task.contentLength = -1;
    task.pieceCount = 0;
    if (task.state !== 'Running') throw internal(`task ${task.id} is ${task.state}, not Running`);
    task.event('DownloadFailed');
  }

  private pieceFinished(peerId: string, piece: Piece | undefined, backToSource: boolean): void {
    const peer = this.loadPeer(peerId);
    if (!piece) throw invalidArgument('piece is required');
    const now = new Date();
    peer.finishedPieces.add(piece.number);
    peer.appendPieceCost(durationToMs(piece.cost));
    peer.updatedAt = now;
    peer.pieceUpdatedAt = now;
    peer.task.updatedAt = now;
    if (backToSource) {
      peer.task.pieces.set(piece.number, storedPiece(piece));
      return;
    }
    const parent = piece.parentId ? this.d.resources.peers.get(piece.parentId) : undefined;
    if (parent) {
      parent.updatedAt = now;
      parent.host.updatedAt = now;
    }
  }

  private pieceFailed(peerId: string, parentId: string, temporary: boolean): void {
    const peer = this.loadPeer(peerId);
    peer.updatedAt = new Date();
    if (!temporary) throw failedPrecondition(`download piece failed from parent ${parentId}`);
    peer.blockParents.add(parentId);
    const parent = this.d.resources.peers.get(parentId);
    if (parent) parent.host.uploadFailedCount++;
  }

  private pieceBackToSourceFailed(peerId: string): void {
    const peer = this.loadPeer(peerId);
    const now = new Date();
    peer.updatedAt = now;
    peer.task.updatedAt = now;
    throw internal(`peer ${peerId} download piece back-to-source failed`);
  }
}

function isUnknownRequest(req: AnnouncePeerRequest): boolean {
  return (
    !req.downloadPieceFinishedRequest &&
    !req.downloadPieceBackToSourceFinishedRequest &&
    !req.downloadPieceFailedRequest &&
    !req.downloadPieceBackToSourceFailedRequest
  );
}
