// The P2P flow of one task run (resource/task.rs download_partial_with_scheduler): register the peer with the
// scheduler over AnnouncePeer, then take pieces from the candidate parents it names (verified against the
// parent's digest), report each piece, reschedule when the parents run dry, and go back to source when the
// scheduler says so — or when it fails, for whatever is still missing (unless back-to-source is disabled).
//
// It plugs into a TaskRun as its PieceFetcher: the run still decides which pieces are wanted and how many are in
// flight; this decides where each piece comes from.

import { DfError, toDfError } from '../core/errors.js';
import type { Download } from '../gen/common.js';
import type { DfdaemonUploadClient } from '../gen/dfdaemon.js';
import type { AnnouncePeerResponse, SchedulerClient } from '../gen/scheduler.js';
import { AnnouncePeerStream } from '../scheduler/announce-peer-stream.js';
import type { PieceTransport } from '../vortex/piece-transport.js';
import type { PieceRecord, Storage } from '../storage/storage.js';
import type { DaemonMetrics } from './metrics.js';
import { ParentSelector } from './parent-selector.js';
import { pieceMessage } from './piece-message.js';
import { PieceCollector } from './piece-collector.js';
import type { PieceFetcher, PieceSpec, TaskRun } from './task-run.js';
import { TrafficType } from './task-manager.js';

/** Downloads one piece from a parent's piece server (Vortex; the transport the downloader chose). */
export type PieceDownloader = PieceTransport['downloadPiece'];

export interface PeerTaskOptions {
  run: TaskRun;
  download: Download;
  contentLength: number;
  pieceLength: number;
  hostId: string;
  peerId: string;
  scheduler: SchedulerClient;
  uploadClient: (ip: string, port: number) => DfdaemonUploadClient;
  downloadPiece: PieceDownloader;
  storage: Storage;
  /** Back-to-source for one piece (the task manager's source fetcher). */
  fromSource: PieceFetcher;
  metrics: DaemonMetrics;
  scheduleTimeoutMs: number;
  maxScheduleCount: number;
  pieceTimeoutMs: number;
  collectedPieceTimeoutMs: number;
  concurrentPieceCount: number;
  /** Announces our host to the schedulers again (after a scheduler restart forgot it). */
  reannounce?: () => Promise<void>;
  /** A fresh peer id, for registering again on a new stream. */
  newPeerId?: () => string;
  log: {
    info(o: object, m: string): void;
    warn(o: object, m: string): void;
    debug(o: object, m: string): void;
  };
}

type Mode = 'parents' | 'source' | 'none';

const GRPC_NOT_FOUND = 5;

/**
 * The Download a peer registers with: the user's request without what concerns only the local caller (output
 * path, piece content), plus the lengths this peer already knows (`actual_*`, which the scheduler uses to create
 * the task) and its concurrency. `extra` sets fields of a particular register (metadata-only).
 */
export function registerDownload(
  download: Download,
  task: { contentLength: number; pieceLength: number; pieceCount: number; concurrentPieceCount: number },
  extra: Partial<Download> = {},
): Download {
  return {
    ...download,
    outputPath: undefined,
    needPieceContent: false,
    concurrentPieceCount: task.concurrentPieceCount,
    actualContentLength: task.contentLength,
    actualPieceLength: task.pieceLength,
    actualPieceCount: task.pieceCount,
    ...extra,
  };
}

export class PeerTask {
  private readonly o: PeerTaskOptions;
  private stream: AnnouncePeerStream;
  private registeredAgain = false;
  private readonly collector: PieceCollector;
  private readonly selector: ParentSelector;
  private mode: Mode | undefined;
  private decided!: Promise<Mode>;
  private decide!: (m: Mode) => void;
  private scheduleCount = 0;
  private rescheduling = false;
  private done = false;
  private readonly unsubscribe: () => void;
  private readonly unEnd: () => void;

  constructor(options: PeerTaskOptions) {
    this.o = options;
    const ids = { hostId: options.hostId, taskId: options.run.taskId, peerId: options.peerId };
    this.decided = new Promise((resolve) => (this.decide = resolve));
    this.stream = new AnnouncePeerStream(options.scheduler, ids, options.scheduleTimeoutMs);
    this.collector = new PieceCollector({
      hostId: options.hostId,
      taskId: options.run.taskId,
      interested: [...Array(options.run.pieceCount).keys()].filter((n) => !options.run.finished.has(n)),
      uploadClient: options.uploadClient,
      log: options.log,
    });
    this.selector = new ParentSelector(options.hostId, options.peerId, options.uploadClient);
    this.collector.onExhausted(
      () => void this.reschedule('all candidate parents ended before every piece came'),
    );
    this.unsubscribe = options.run.subscribe(() => {
      if (options.run.isFinished) this.complete();
    });
    this.unEnd = options.run.onEnd(() => this.abandon('the download was cancelled'));
  }

  /** The fetcher for the run: parents first when the scheduler gave some, else (or then) the source. */
  readonly fetcher: PieceFetcher = async (piece, signal) => {
    const mode = await this.decided;
    if (mode === 'parents' && !this.done) {
      const got = await this.fromParents(piece, signal);
      if (got) return got;
    }
    if (this.o.download.disableBackToSource) {
      throw new DfError(
        'UNAVAILABLE',
        `no parent could give piece ${piece.number} and back-to-source is disabled`,
      );
    }
    let record: PieceRecord;
    try {
      record = await this.o.fromSource(piece, signal);
    } catch (e) {
      // On the scheduler's back-to-source path the source's failure is reported, origin status included.
      if (this.mode === 'source') {
        const err = toDfError(e);
        this.stream.send({
          // piece_number left unset, as upstream sends it.
          downloadPieceBackToSourceFailedRequest: {
            ...(err.backend
              ? {
                  backend: {
                    message: err.backend.message,
                    header: err.backend.header,
                    statusCode: err.backend.statusCode,
                  },
                }
              : { unknown: { message: err.message } }),
          },
        });
      }
      throw e;
    }
    if (this.mode === 'source') {
      this.stream.send({
        downloadPieceBackToSourceFinishedRequest: { piece: pieceMessage(record, TrafficType.BACK_TO_SOURCE) },
      });
    }
    return record;
  };

  /** Registers the peer and handles the first reply; later replies come from reschedules. */
  async start(): Promise<void> {
    this.register();
    await this.handleNext();
  }

  private register(): void {
    this.stream.send({
      registerPeerRequest: {
        download: registerDownload(this.o.download, {
          contentLength: this.o.contentLength,
          pieceLength: this.o.pieceLength,
          pieceCount: this.o.run.pieceCount,
          concurrentPieceCount: this.o.concurrentPieceCount,
        }),
      },
    });
  }

  private async handleNext(): Promise<void> {
    let reply: AnnouncePeerResponse;
    try {
      reply = await this.stream.next();
    } catch (e) {
      // A restarted scheduler has forgotten our host (NOT_FOUND on register): announce it again and register
      // once more on a new stream, rather than sending the whole task back to the source.
      if (this.scheduleCount === 0 && !this.registeredAgain && this.stream.failureCode === GRPC_NOT_FOUND) {
        this.registeredAgain = true;
        if (this.o.reannounce && this.o.newPeerId) {
          this.o.log.info(
            { taskId: this.o.run.taskId },
            'scheduler does not know this host; announcing it again',
          );
          await this.o.reannounce();
          this.stream.close();
          this.stream = new AnnouncePeerStream(
            this.o.scheduler,
            { ...this.stream.ids, peerId: this.o.newPeerId() },
            this.o.scheduleTimeoutMs,
          );
          this.register();
          return this.handleNext();
        }
      }
      this.o.log.warn(
        { taskId: this.o.run.taskId, err: (e as Error).message },
        'scheduler failed; back to source',
      );
      return this.fallBack();
    }
    this.scheduleCount++;
    if (this.scheduleCount > this.o.maxScheduleCount) {
      this.stream.finish({ downloadPeerFailedRequest: { description: 'max schedule count exceeded' } });
      return this.fallBack();
    }
    if (reply.normalTaskResponse) {
      const parents = reply.normalTaskResponse.candidateParents;
      this.o.log.info(
        { taskId: this.o.run.taskId, parents: parents.map((p) => p.id) },
        'scheduler gave candidate parents',
      );
      if (this.mode === undefined) this.stream.send({ downloadPeerStartedRequest: {} });
      for (const p of parents) if (p.host) this.selector.watch(p.host.id, p.host.ip, p.host.port);
      this.setMode('parents');
      this.collector.addParents(parents);
      return;
    }
    if (reply.needBackToSourceResponse) {
      this.o.log.info(
        { taskId: this.o.run.taskId, why: reply.needBackToSourceResponse.description },
        'scheduler says back to source',
      );
      this.stream.send({ downloadPeerBackToSourceStartedRequest: {} });
      this.collector.finish();
      this.setMode('source');
      return;
    }
    if (reply.emptyTaskResponse) {
      this.stream.send({ downloadPeerStartedRequest: {} });
      this.stream.finish({ downloadPeerFinishedRequest: {} });
      this.done = true;
      this.setMode('none');
      return;
    }
    this.stream.finish({ downloadPeerFailedRequest: { description: 'unexpected response from scheduler' } });
    this.fallBack();
  }

  private setMode(m: Mode): void {
    this.mode = m;
    this.decide(m);
  }

  /** The scheduler is gone or gave up: whatever is missing comes from the source, unannounced. */
  private fallBack(): void {
    this.done = true;
    this.collector.finish();
    this.stream.close();
    this.mode ??= 'none';
    this.decide(this.mode);
    if (this.mode === 'source') this.mode = 'none';
  }

  private async reschedule(description: string): Promise<void> {
    if (this.rescheduling || this.done || this.mode !== 'parents') return;
    this.rescheduling = true;
    try {
      this.stream.send({ reschedulePeerRequest: { candidateParents: this.collector.parents, description } });
      await this.handleNext();
    } finally {
      this.rescheduling = false;
    }
  }

  private async fromParents(piece: PieceSpec, signal: AbortSignal): Promise<PieceRecord | undefined> {
    const taskId = this.o.run.taskId;
    for (;;) {
      const holders = await this.collector.waitFor(piece.number, this.o.collectedPieceTimeoutMs, signal);
      if (!holders || holders.length === 0 || signal.aborted) return undefined;
      const parent = this.selector.pick(holders);
      try {
        const pieceSignal = AbortSignal.any([signal, AbortSignal.timeout(this.o.pieceTimeoutMs)]);
        const res = await this.o.downloadPiece({
          ip: parent.ip,
          port: parent.tcpPort,
          taskId,
          number: piece.number,
          timeoutMs: this.o.pieceTimeoutMs,
          signal: pieceSignal,
        });
        if (res.metadata.length !== piece.length) {
          throw new DfError(
            'INVALID_ARGUMENT',
            `parent sent ${res.metadata.length} bytes for a ${piece.length}-byte piece`,
          );
        }
        const record = await this.o.storage.writePiece(taskId, piece, res.body, {
          trafficType: TrafficType.REMOTE_PEER,
          parentId: parent.parentId,
          expectedDigest: res.metadata.digest,
        });
        this.o.metrics.downloadTraffic('REMOTE_PEER', record.length);
        this.stream.send({
          downloadPieceFinishedRequest: { piece: pieceMessage(record, TrafficType.REMOTE_PEER) },
        });
        return record;
      } catch (e) {
        const err = toDfError(e, `piece ${piece.number} from parent ${parent.parentId}`);
        this.o.log.warn(
          { taskId, piece: piece.number, parent: parent.parentId, err: err.message },
          'piece from parent failed',
        );
        this.collector.markFailed(parent.parentId, piece.number);
        this.stream.send({
          downloadPieceFailedRequest: {
            pieceNumber: piece.number,
            parentId: parent.parentId,
            temporary: true,
          },
        });
        if (signal.aborted) return undefined;
      }
    }
  }

  /** Every piece is stored: tell the scheduler and release parents. */
  private complete(): void {
    if (this.done) return;
    this.done = true;
    if (this.mode === 'source') this.stream.finish({ downloadPeerBackToSourceFinishedRequest: {} });
    else this.stream.finish({ downloadPeerFinishedRequest: {} });
    this.close();
  }

  private abandon(description: string): void {
    if (this.o.run.isFinished) return this.complete();
    if (!this.done) {
      this.done = true;
      if (this.mode === 'source')
        this.stream.finish({ downloadPeerBackToSourceFailedRequest: { description } });
      else this.stream.finish({ downloadPeerFailedRequest: { description } });
    }
    this.close();
  }

  close(): void {
    this.unsubscribe();
    this.unEnd();
    this.collector.close();
    this.selector.close();
    this.stream.close();
    this.decide('none');
  }
}
