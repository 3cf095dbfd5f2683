// The P2P flow of one task run (resource/task.rs download_partial_with_scheduler): register the peer with the
// scheduler over AnnouncePeer, then take pieces from the candidate parents it names, report each piece, ask for
// more parents when they run dry, and go back to source when the scheduler says so — or when it fails, for
// whatever is still missing (unless back-to-source is disabled).
//
// It is the run's PieceSource: the run says which pieces are wanted and bounds those in flight; this decides
// which one starts next and from where — a parent that announced it (piece-picker.ts), as many at once as the
// downlink carries well (downlink-pace.ts), or the source in piece order at a paced concurrency (source-pacer.ts).
// The bytes move through the piece path (piece-path.ts).

import { DfError, toDfError } from '../core/errors.js';
import type { Download, Peer } from '../gen/common.js';
import type { DfdaemonUploadClient } from '../gen/dfdaemon.js';
import type { AnnouncePeerResponse, SchedulerClient } from '../gen/scheduler.js';
import { AnnouncePeerStream } from '../scheduler/announce-peer-stream.js';
import type { PieceRecord } from '../storage/storage.js';
import { isTlsFailure } from '../vortex/piece-client.js';
import { PieceCollector } from './piece-collector.js';
import { pieceMessage } from './piece-message.js';
import { TrafficType, type PiecePath, type SourceTask } from './piece-path.js';
import { PiecePicker, type PickedPiece, type PieceHolder } from './piece-picker.js';
import { SourcePacer } from './source-pacer.js';
import { SourceFlights, type SourceFlight } from './source-flights.js';
import { DownlinkPace, type BodyMeter } from './downlink-pace.js';
import {
  RetryPiece,
  lowest,
  type PieceCandidates,
  type PieceJob,
  type PieceSource,
  type PieceSpec,
  type TaskRun,
} from './task-run.js';
import { ewma } from '../core/ewma.js';

export interface PeerTaskOptions {
  run: TaskRun;
  /** The task as the source knows it: where back-to-source pieces come from. */
  source: SourceTask;
  /** Moves a piece's bytes into storage, from the source or a parent. */
  piecePath: PiecePath;
  download: Download;
  contentLength: number;
  pieceLength: number;
  hostId: string;
  peerId: string;
  scheduler: SchedulerClient;
  uploadClient: (ip: string, port: number) => DfdaemonUploadClient;
  scheduleTimeoutMs: number;
  maxScheduleCount: number;
  collectedPieceTimeoutMs: number;
  concurrentPieceCount: number;
  /** Requests in flight to one parent (default 3). */
  perParentLimit?: number;
  /**
   * Ask for more parents after slots stayed free this long with nothing our parents could give (too few, or
   * their slots full), while we have fewer than `targetParents`.
   */
  proactiveRescheduleIdleMs?: number;
  targetParents?: number;
  /** Proactive reschedules per run at most (they never count toward maxScheduleCount). */
  maxProactiveReschedules?: number;
  /** Announces our host to the schedulers again (after a scheduler restart forgot it). */
  reannounce?: () => Promise<void>;
  /** A fresh peer id, for registering again on a new stream. */
  newPeerId?: () => string;
  random?: () => number;
  /** The downlink's pace (default: a new one, measured as pieces arrive; tests give one measured already). */
  downlink?: DownlinkPace;
  log: {
    info(o: object, m: string): void;
    warn(o: object, m: string): void;
    debug(o: object, m: string): void;
  };
}

/**
 * undefined: waiting for the scheduler; parents: from the parents it named; source: back-to-source on its word
 * (reported); direct: back-to-source without the scheduler (it failed or gave up; unreported); done: nothing more.
 */
type Mode = 'parents' | 'source' | 'direct' | 'done';

const GRPC_NOT_FOUND = 5;
/** common.v2.HostType NORMAL. */
const HOST_TYPE_NORMAL = 0;
const DEFAULT_PER_PARENT_LIMIT = 3;
/** Endgame: a piece in flight at least this long (and twice the usual piece time) gets a second copy. */
/** A parent that timed out or dropped a piece is asked for it again after this long (see parentFailed). */
const RETRY_FAILED_PARENT_MS = 5000;
/** A parent that answered busy is asked for that piece again after this long (other holders at once). */
const BUSY_PARENT_RETRY_MS = 1000;
const ENDGAME_MIN_AGE_MS = 1000;
const ENDGAME_MAX_COPIES = 4;
/** Requests to parents in flight at most, whatever the parent count. */
const MAX_PARENT_IN_FLIGHT = 24;
const DEFAULT_PROACTIVE_IDLE_MS = 1500;
const DEFAULT_TARGET_PARENTS = 8;
const DEFAULT_MAX_PROACTIVE = 6;
/** How long new normal-peer parents get to announce what they hold before a seed may serve what they might. */
const SEED_HOLD_MS = 500;
/** The same when one of them has finished the task (the scheduler says Succeeded): it will announce everything. */
const SEED_HOLD_SUCCEEDED_MS = 3000;
/** How often the run's progress is checked for stalls and proactive reschedules. */
const CHECK_INTERVAL_MS = 250;
/**
 * Source connections a run starts with (source-pacer.ts ramps up from here): one, pieces back to back, each next
 * request sent during the previous body's tail (source-flights.ts).
 */
const INITIAL_SOURCE_CONNECTIONS = 1;

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

/** Connection-level failures: the parent is gone, not just this piece. */
const DEAD_PARENT_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE']);

export class PeerTask implements PieceSource {
  private readonly o: PeerTaskOptions;
  private stream: AnnouncePeerStream;
  private registeredAgain = false;
  private readonly collector: PieceCollector;
  private readonly picker: PiecePicker;
  private readonly pacer: SourcePacer;
  /** How many parent bodies at once the downlink carries well (one at a time on a slow link). */
  private readonly downlink: DownlinkPace;
  private mode: Mode | undefined;
  private scheduleCount = 0;
  private proactiveCount = 0;
  private rescheduling = false;
  /** No more reports to the scheduler (the stream ended or failed). */
  private streamDone = false;
  private closed = false;
  private readonly sourceFlights = new SourceFlights({ onTail: () => this.wake() });
  private parentInFlight = 0;
  /** Pieces being fetched from parents (endgame copies are started from here). */
  private readonly inFlight = new Map<number, InFlightPiece>();
  /** Smoothed time a piece from a parent takes, ms. */
  private pieceMs?: number;
  /** When a new piece was last announced or stored: the clock for stalls. */
  private lastProgress = performance.now();
  /** Since when a slot was free and no queued piece could start (parents too few or too busy); undefined: not. */
  private starvedSince: number | undefined;
  private lastProactive = 0;
  private wake: () => void = () => undefined;
  /** New normal-peer parents that have not announced anything yet (the seeds wait for them, SEED_HOLD_MS). */
  private readonly unheard = new Map<string, number>();
  /** Pieces we asked every parent's SyncPieces for. */
  private readonly interestedCount: number;
  private seedHold?: NodeJS.Timeout;
  private readonly timer: NodeJS.Timeout;
  private readonly unsubscribe: () => void;
  private readonly unEnd: () => void;

  constructor(options: PeerTaskOptions) {
    this.o = options;
    const ids = { hostId: options.hostId, taskId: options.run.taskId, peerId: options.peerId };
    this.stream = new AnnouncePeerStream(options.scheduler, ids, options.scheduleTimeoutMs);
    this.picker = new PiecePicker({
      perParentLimit: options.perParentLimit ?? DEFAULT_PER_PARENT_LIMIT,
      targetInFlight: options.concurrentPieceCount,
      random: options.random,
    });
    this.downlink = options.downlink ?? new DownlinkPace();
    this.pacer = new SourcePacer({
      initial: INITIAL_SOURCE_CONNECTIONS,
      max: options.concurrentPieceCount,
    });
    const interested = [...Array(options.run.pieceCount).keys()].filter((n) => !options.run.finished.has(n));
    this.interestedCount = interested.length;
    this.collector = new PieceCollector({
      hostId: options.hostId,
      taskId: options.run.taskId,
      interested,
      uploadClient: options.uploadClient,
      onPiece: (number, holder) => {
        // Known to the picker before it counts toward releasing the seeds: the release picks at once, and the
        // piece that completed the count would otherwise look like the seed's alone.
        const fresh = !options.run.finished.has(number) && this.picker.announce(number, holder);
        this.heardFrom(holder.parentId, 1);
        if (!fresh) return;
        this.lastProgress = performance.now();
        this.wake();
      },
      onParentEnded: (parentId) => {
        this.heardFrom(parentId, Infinity);
        this.wake();
      },
      log: options.log,
    });
    this.unsubscribe = options.run.subscribe((ev) => {
      if (ev.piece) this.lastProgress = performance.now();
      if (options.run.isFinished) this.complete();
    });
    this.unEnd = options.run.onEnd(() => this.abandon('the download was cancelled'));
    this.timer = setInterval(() => this.check(), CHECK_INTERVAL_MS);
    this.timer.unref();
  }

  onWake(wake: () => void): void {
    this.wake = wake;
  }

  /**
   * From parents, the picker's per-parent limit for every live parent (at least concurrentPieceCount, at most
   * MAX_PARENT_IN_FLIGHT): a request waiting in a busy parent's upload queue holds a slot, and with a fixed 8 slots
   * a peer stopped asking its idle parents while its busy ones queued it.
   */
  maxInFlight(): number {
    const base = this.o.concurrentPieceCount;
    if (this.mode !== 'parents') return base;
    const open = Math.max(
      base,
      Math.min(MAX_PARENT_IN_FLIGHT, this.picker.perParentLimit * this.picker.liveParents),
    );
    // A request still waiting in a parent's upload queue after a moment no longer holds a place: with queues at
    // the parents (queueLimit unset or above 0), one request per downlink would otherwise leave the link idle
    // behind every other child of that parent. Once a body begins, the requests still waiting are taken back
    // (bodyBegan), so the bodies do not overlap when those are served later.
    const limit = this.downlink.limit(this.o.pieceLength);
    if (limit === Infinity) return open;
    const patience = this.downlink.patienceMs(this.o.pieceLength);
    const now = performance.now();
    let waitedLong = 0;
    for (const entry of this.inFlight.values())
      if (!entry.receiving && !entry.keepsPlace && now - entry.started > patience) waitedLong++;
    return Math.min(open, limit + waitedLong);
  }

  /** PieceSource: the next piece and where it comes from, or nothing for now. */
  next(c: PieceCandidates): PieceJob | undefined {
    switch (this.mode) {
      case 'parents': {
        if (this.closed) return undefined;
        const picked = this.picker.pick(c);
        if (picked) return this.parentJob(picked);
        this.starvedSince ??= performance.now();
        return undefined;
      }
      case 'source':
      case 'direct':
        return this.sourceJob(c);
      default:
        return undefined;
    }
  }

  /** Registers the peer and handles the first reply; later replies come from reschedules. */
  async start(): Promise<void> {
    this.register();
    await this.handleNext(false);
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

  private async handleNext(proactive: boolean): Promise<void> {
    let reply: AnnouncePeerResponse;
    try {
      reply = await this.stream.next();
    } catch (e) {
      if (await this.registerAgain()) return this.handleNext(false);
      // A scheduler that fails while our parents still stream only loses our reports; the parents go on.
      if (proactive && this.parentsUsable()) {
        this.o.log.warn(
          { taskId: this.o.run.taskId, err: (e as Error).message },
          'scheduler failed on a proactive reschedule; going on with the parents we have',
        );
        this.streamDone = true;
        return;
      }
      this.o.log.warn(
        { taskId: this.o.run.taskId, err: (e as Error).message },
        'scheduler failed; back to source',
      );
      return this.fallBack();
    }
    if (!proactive) {
      this.scheduleCount++;
      if (this.scheduleCount > this.o.maxScheduleCount) {
        this.finishStream({ downloadPeerFailedRequest: { description: 'max schedule count exceeded' } });
        return this.fallBack();
      }
    }
    if (reply.normalTaskResponse) {
      const parents = reply.normalTaskResponse.candidateParents;
      this.o.log.info(
        { taskId: this.o.run.taskId, parents: parents.map((p) => p.id), proactive },
        'scheduler gave candidate parents',
      );
      if (this.mode === undefined) this.send({ downloadPeerStartedRequest: {} });
      this.holdSeedsFor(parents);
      this.collector.addParents(parents);
      this.setMode('parents');
      return;
    }
    if (reply.needBackToSourceResponse) {
      const why = reply.needBackToSourceResponse.description;
      if (proactive && this.parentsUsable()) {
        // We asked for more parents, not for the origin: the ones we have still stream.
        this.o.log.info({ taskId: this.o.run.taskId, why }, 'no more parents for now; staying with ours');
        return;
      }
      this.o.log.info({ taskId: this.o.run.taskId, why }, 'scheduler says back to source');
      this.send({ downloadPeerBackToSourceStartedRequest: {} });
      this.collector.close();
      this.setMode('source');
      return;
    }
    if (reply.emptyTaskResponse) {
      this.send({ downloadPeerStartedRequest: {} });
      this.finishStream({ downloadPeerFinishedRequest: {} });
      this.setMode('done');
      return;
    }
    this.finishStream({ downloadPeerFailedRequest: { description: 'unexpected response from scheduler' } });
    this.fallBack();
  }

  /**
   * A restarted scheduler has forgotten our host (NOT_FOUND on register): announce it again and register once
   * more on a new stream, rather than sending the whole task back to the source. True when it registered again.
   */
  private async registerAgain(): Promise<boolean> {
    if (this.scheduleCount !== 0 || this.registeredAgain || this.stream.failureCode !== GRPC_NOT_FOUND) {
      return false;
    }
    this.registeredAgain = true;
    if (!this.o.reannounce || !this.o.newPeerId) return false;
    this.o.log.info({ taskId: this.o.run.taskId }, 'scheduler does not know this host; announcing it again');
    try {
      await this.o.reannounce();
    } catch (e) {
      // Thrown on, this would leave the run with no source at all (start() fails, nothing falls back).
      this.o.log.warn(
        { taskId: this.o.run.taskId, err: (e as Error).message },
        'could not announce this host again',
      );
      return false;
    }
    this.stream.close();
    this.stream = new AnnouncePeerStream(
      this.o.scheduler,
      { ...this.stream.ids, peerId: this.o.newPeerId() },
      this.o.scheduleTimeoutMs,
    );
    this.register();
    return true;
  }

  /**
   * The seeds' announcements reach us before those of the normal peers offered with them, so for a moment every
   * piece looks as if only the seed had it: take nothing from a seed until each new normal peer has announced
   * something (or ended its stream), for SEED_HOLD_MS at most — longer when one of them has finished the task.
   */
  private holdSeedsFor(parents: Peer[]): void {
    let holdMs = 0;
    for (const p of parents) {
      if (!p.host || p.host.type !== HOST_TYPE_NORMAL || this.collector.knows(p.id)) continue;
      // A parent that finished the task announces every piece we want at once: wait for all of them (a seed
      // released after its first one took pieces that parent was still announcing); others, the first one.
      this.unheard.set(p.id, p.state === 'Succeeded' ? this.interestedCount : 1);
      holdMs = Math.max(holdMs, p.state === 'Succeeded' ? SEED_HOLD_SUCCEEDED_MS : SEED_HOLD_MS);
    }
    if (this.unheard.size === 0) return;
    this.picker.holdSeeds(true);
    clearTimeout(this.seedHold);
    this.seedHold = setTimeout(() => this.releaseSeeds(), holdMs);
    this.seedHold.unref();
  }

  /** `count` more announcements came from the parent (Infinity: its stream ended). */
  private heardFrom(parentId: string, count: number): void {
    const waiting = this.unheard.get(parentId);
    if (waiting === undefined) return;
    if (waiting > count) {
      this.unheard.set(parentId, waiting - count);
      return;
    }
    this.unheard.delete(parentId);
    if (this.unheard.size === 0) this.releaseSeeds();
  }

  private releaseSeeds(): void {
    this.unheard.clear();
    clearTimeout(this.seedHold);
    this.picker.holdSeeds(false);
    this.wake();
  }

  private setMode(m: Mode): void {
    this.mode = m;
    this.lastProgress = performance.now();
    this.wake();
  }

  /** The scheduler is gone or gave up: whatever is missing comes from the source, unreported. */
  private fallBack(): void {
    this.streamDone = true;
    this.collector.close();
    this.stream.close();
    this.setMode('direct');
  }

  private send(req: Parameters<AnnouncePeerStream['send']>[0]): void {
    if (!this.streamDone) this.stream.send(req);
  }

  private finishStream(req: Parameters<AnnouncePeerStream['finish']>[0]): void {
    if (this.streamDone) return this.stream.close();
    this.streamDone = true;
    this.stream.finish(req);
  }

  /** Whether our parents can still give something we want: an open stream, or a holder of a queued piece. */
  private parentsUsable(): boolean {
    if (this.collector.activeParents > 0 || this.parentInFlight > 0) return true;
    for (const n of this.o.run.piecesQueued) if (this.picker.available(n)) return true;
    return false;
  }

  /**
   * Runs every CHECK_INTERVAL_MS while parents serve us: ask the scheduler for more parents when nothing new came
   * for a while and we have few; reschedule when every parent is done and pieces are missing; give up on the
   * parents (source, unless disabled) after collectedPieceTimeout without progress.
   */
  private check(): void {
    if (this.mode !== 'parents' || this.closed) return;
    this.startEndgame();
    if (this.rescheduling) return;
    const queued = this.o.run.piecesQueued;
    if (queued.size === 0) return;
    const idle = performance.now() - this.lastProgress;
    if (!this.parentsUsable()) {
      void this.reschedule(false, 'all candidate parents ended before every piece came');
      return;
    }
    if (idle >= this.o.collectedPieceTimeoutMs && this.parentInFlight === 0) {
      this.o.log.warn(
        { taskId: this.o.run.taskId, idleMs: Math.round(idle) },
        'parents announced nothing new for collectedPieceTimeout; back to source for the rest',
      );
      this.finishStream({ downloadPeerFailedRequest: { description: 'collected piece timeout' } });
      this.collector.close();
      this.setMode('direct');
      return;
    }
    // A run whose every slot is busy is not starved, whatever its parent count.
    if (this.o.run.piecesInFlight.size >= this.maxInFlight()) this.starvedSince = undefined;
    const idleLimit = this.o.proactiveRescheduleIdleMs ?? DEFAULT_PROACTIVE_IDLE_MS;
    const target = this.o.targetParents ?? DEFAULT_TARGET_PARENTS;
    const max = this.o.maxProactiveReschedules ?? DEFAULT_MAX_PROACTIVE;
    const now = performance.now();
    if (
      this.starvedSince !== undefined &&
      now - this.starvedSince >= idleLimit &&
      now - this.lastProactive >= idleLimit &&
      this.collector.parents.length < target &&
      this.proactiveCount < max &&
      !this.streamDone
    ) {
      this.proactiveCount++;
      this.lastProactive = now;
      this.starvedSince = undefined;
      void this.reschedule(true, 'more parents wanted: free slots and nothing our parents can give now');
    }
  }

  private async reschedule(proactive: boolean, description: string): Promise<void> {
    if (this.rescheduling || this.mode !== 'parents') return;
    if (this.streamDone) {
      // Nobody to ask: whatever the parents cannot give comes from the source.
      if (!proactive) this.setMode('direct');
      return;
    }
    this.rescheduling = true;
    try {
      // The parents we have are named so the scheduler offers others (it blocks them for this peer); their
      // streams stay open.
      this.stream.send({ reschedulePeerRequest: { candidateParents: this.collector.parents, description } });
      await this.handleNext(proactive);
    } finally {
      this.rescheduling = false;
      this.wake();
    }
  }

  private parentJob(picked: PickedPiece): PieceJob {
    const { parent } = picked;
    this.downlink.starting(this.parentInFlight, this.o.pieceLength);
    // Under a downlink limit, look again once this request could have waited too long (maxInFlight).
    if (this.downlink.limit(this.o.pieceLength) < Infinity) {
      this.wakeAfter(this.downlink.patienceMs(this.o.pieceLength));
    }
    // A fresh piece only a seed holds: the swarm waits for it, and the seed tells it to one child at a time
    // (super-seeding.ts). Its request keeps its place while it waits in the seed's queue, and the seed's body
    // then comes to a downlink that has room for it. Taken back whenever another body began, it was asked for
    // again only after that body: at 32 peers a seed's fresh piece waited 15-33 s for its first copy.
    const keepsPlace = parent.seed && this.picker.onlySeedsHold(picked.number);
    this.picker.started(parent.parentId);
    this.parentInFlight++;
    this.o.log.debug(
      {
        taskId: this.o.run.taskId,
        piece: picked.number,
        parent: parent.parentId,
        inFlight: this.parentInFlight,
      },
      'asking a parent for a piece',
    );
    return {
      number: picked.number,
      fetch: async (piece: PieceSpec, signal: AbortSignal): Promise<PieceRecord> => {
        const started = performance.now();
        const entry = new InFlightPiece(piece, parent.parentId, signal, started, keepsPlace);
        this.inFlight.set(piece.number, entry);
        try {
          const record = await this.o.piecePath.fromParent(
            this.o.run.taskId,
            piece,
            parent,
            AbortSignal.any([signal, entry.race.signal]),
            entry.meter(this.downlink, () => this.bodyBegan(entry)),
          );
          entry.settle('stored');
          const ms = performance.now() - started;
          this.picker.ended(parent.parentId, { bytes: record.length, ms });
          this.pieceMs = ewma(this.pieceMs, ms, 0.3);
          this.send({
            downloadPieceFinishedRequest: { piece: pieceMessage(record, TrafficType.REMOTE_PEER) },
          });
          return record;
        } catch (e) {
          entry.settle('failed');
          this.picker.ended(parent.parentId);
          if (signal.aborted) throw e;
          // Taken back while it waited in the parent's queue: nothing failed, it is asked for again.
          if (entry.deferred) throw new RetryPiece('taken back: another body filled the downlink');
          // An endgame copy from another parent is on its way (or won, and stopped this one): its record is ours.
          const copy = entry.copy ? await entry.copy.result : undefined;
          if (copy) return copy;
          if (entry.race.signal.aborted) throw new RetryPiece('the endgame copy of the piece failed');
          this.parentFailed(piece, parent.parentId, e);
        } finally {
          entry.settle('failed');
          entry.copy?.abort.abort();
          if (this.inFlight.get(piece.number) === entry) this.inFlight.delete(piece.number);
          this.parentInFlight--;
          this.wake();
        }
      },
    };
  }

  /**
   * A parent's body began: once the downlink has all the bodies it carries well, the requests still waiting in
   * parents' queues are taken back, to be asked for again when a body ends.
   */
  private bodyBegan(begun: InFlightPiece): void {
    const limit = this.downlink.limit(this.o.pieceLength);
    if (limit === Infinity || this.downlink.receiving < limit) return;
    for (const entry of this.inFlight.values()) if (entry !== begun) entry.takeBack();
  }

  /** Looks for work again once a parent's pause for a piece is over (a little after: timers may fire early). */
  private wakeAfter(ms: number): void {
    setTimeout(() => this.wake(), ms + 20).unref();
  }

  /**
   * A parent failed a piece: do not ask it for that piece again — for a while when the failure may pass, for good
   * when not (nor anything, if it is gone); report it.
   */
  private parentFailed(piece: PieceSpec, parentId: string, e: unknown): never {
    const err = toDfError(e);
    if (err.code === 'RESOURCE_EXHAUSTED') {
      // Its upload queue is full: another holder now, or this one again shortly. Nothing failed, so the scheduler
      // hears nothing (a DownloadPieceFailed would block a healthy parent for us).
      this.o.log.debug(
        { taskId: this.o.run.taskId, piece: piece.number, parent: parentId },
        'parent is busy',
      );
      this.picker.markFailed(parentId, piece.number, BUSY_PARENT_RETRY_MS);
      this.wakeAfter(BUSY_PARENT_RETRY_MS);
      throw new RetryPiece(err.message);
    }
    this.o.log.warn(
      { taskId: this.o.run.taskId, piece: piece.number, parent: parentId, err: err.message },
      'piece from parent failed',
    );
    if (err.retryable && !isDeadParent(e)) {
      // It timed out or dropped the connection (a long upload queue, a busy link): it may give the piece later,
      // and it may be the only holder among our parents.
      this.picker.markFailed(parentId, piece.number, RETRY_FAILED_PARENT_MS);
      this.wakeAfter(RETRY_FAILED_PARENT_MS);
    } else {
      this.picker.markFailed(parentId, piece.number);
    }
    if (isDeadParent(e)) {
      // Its SyncPieces stream may still be open; counted as usable, it would hold off the reschedule.
      this.picker.dropParent(parentId);
      this.collector.drop(parentId);
    }
    this.send({ downloadPieceFailedRequest: { pieceNumber: piece.number, parentId, temporary: true } });
    throw new RetryPiece(err.message);
  }

  /**
   * Endgame: once every missing piece is in flight, a piece that has taken much longer than pieces usually take
   * (it waits in a busy parent's queue, or the parent is slow) is asked of a second holder too, into memory. The
   * first copy wins: if the second one does, the first is stopped, and only once it has stopped writing is the
   * second one stored. At most ENDGAME_MAX_COPIES copies at a time.
   */
  private startEndgame(): void {
    if (this.mode !== 'parents' || this.closed || this.o.run.piecesQueued.size > 0) return;
    const now = performance.now();
    const minAge = Math.max(ENDGAME_MIN_AGE_MS, 2 * (this.pieceMs ?? 0));
    let copies = [...this.inFlight.values()].filter((e) => e.copy).length;
    const oldest = [...this.inFlight.values()].sort((a, b) => a.started - b.started);
    for (const entry of oldest) {
      if (copies >= ENDGAME_MAX_COPIES) return;
      if (entry.copy || entry.outcome || now - entry.started < minAge) continue;
      const second = this.picker.chooseParent(entry.piece.number, entry.parentId);
      if (!second) continue;
      copies++;
      this.startCopy(entry, second);
    }
  }

  private startCopy(entry: InFlightPiece, second: PieceHolder): void {
    const abort = new AbortController();
    const taskId = this.o.run.taskId;
    const { piece } = entry;
    this.picker.started(second.parentId);
    const result = (async (): Promise<PieceRecord | undefined> => {
      const started = performance.now();
      let verified;
      try {
        verified = await this.o.piecePath.fromParentToMemory(
          taskId,
          piece,
          second,
          AbortSignal.any([entry.runSignal, abort.signal]),
          this.downlink,
        );
        this.picker.ended(second.parentId, { bytes: piece.length, ms: performance.now() - started });
      } catch {
        this.picker.ended(second.parentId);
        if (!abort.signal.aborted && !entry.runSignal.aborted) {
          this.picker.markFailed(second.parentId, piece.number);
          this.o.log.debug({ taskId, piece: piece.number, parent: second.parentId }, 'endgame copy failed');
        }
        return undefined;
      }
      if (entry.outcome === 'stored') return undefined;
      entry.race.abort(new DfError('CANCELLED', `piece ${piece.number} came first from ${second.parentId}`));
      if ((await entry.settled) === 'stored') return undefined;
      const record = await this.o.piecePath.storeVerified(taskId, piece, verified);
      this.send({ downloadPieceFinishedRequest: { piece: pieceMessage(record, TrafficType.REMOTE_PEER) } });
      this.o.log.debug({ taskId, piece: piece.number, parent: second.parentId }, 'endgame copy won');
      return record;
    })().catch(() => undefined);
    entry.copy = { parentId: second.parentId, abort, result };
  }

  /** The source, in piece order (in-order consumers first), at the pacer's concurrency. */
  private sourceJob(c: PieceCandidates): PieceJob | undefined {
    // Pieces in their tail do not hold a connection: the next request goes out while they end.
    if (this.sourceFlights.busy >= this.pacer.limit) return undefined;
    const n = lowest(c.inOrder.size > 0 ? c.inOrder : c.queued);
    if (n === undefined) return undefined;
    const flight = this.sourceFlights.begin();
    this.pacer.started();
    return { number: n, fetch: (piece, signal) => this.fromSource(piece, signal, flight) };
  }

  private async fromSource(
    piece: PieceSpec,
    signal: AbortSignal,
    flight: SourceFlight,
  ): Promise<PieceRecord> {
    const reported = this.mode === 'source';
    try {
      if (this.o.download.disableBackToSource) {
        throw new DfError(
          'UNAVAILABLE',
          `no parent could give piece ${piece.number} and back-to-source is disabled`,
        );
      }
      const record = await this.o.piecePath.fromSource(this.o.source, piece, signal, flight);
      this.pacer.finished(record.length);
      if (reported) {
        this.send({
          downloadPieceBackToSourceFinishedRequest: {
            piece: pieceMessage(record, TrafficType.BACK_TO_SOURCE),
          },
        });
      }
      return record;
    } catch (e) {
      // On the scheduler's back-to-source path the source's failure is reported, origin status included.
      if (reported) {
        const err = toDfError(e);
        this.send({
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
    } finally {
      flight.end();
      this.wake();
    }
  }

  /** Every piece is stored: tell the scheduler and release parents. */
  private complete(): void {
    if (this.closed) return;
    if (this.mode === 'source') this.finishStream({ downloadPeerBackToSourceFinishedRequest: {} });
    else this.finishStream({ downloadPeerFinishedRequest: {} });
    this.close();
  }

  private abandon(description: string): void {
    if (this.o.run.isFinished) return this.complete();
    if (!this.closed) {
      if (this.mode === 'source')
        this.finishStream({ downloadPeerBackToSourceFailedRequest: { description } });
      else this.finishStream({ downloadPeerFailedRequest: { description } });
    }
    this.close();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    clearTimeout(this.seedHold);
    this.unsubscribe();
    this.unEnd();
    this.collector.close();
    this.stream.close();
    this.mode ??= 'done';
  }
}

/** A piece being fetched from a parent, and its endgame copy from another if one was started. */
class InFlightPiece {
  /** Aborted when the endgame copy won: this fetch stops writing. */
  readonly race = new AbortController();
  outcome?: 'stored' | 'failed';
  readonly settled: Promise<'stored' | 'failed'>;
  private resolveSettled!: (o: 'stored' | 'failed') => void;
  copy?: { parentId: string; abort: AbortController; result: Promise<PieceRecord | undefined> };
  /** The parent's body is arriving (its header came): the request no longer waits in its queue. */
  receiving = false;

  constructor(
    readonly piece: PieceSpec,
    readonly parentId: string,
    readonly runSignal: AbortSignal,
    readonly started: number,
    /** Never taken back, nor making room while it waits (a fresh piece at a seed: see parentJob). */
    readonly keepsPlace = false,
  ) {
    this.settled = new Promise((resolve) => (this.resolveSettled = resolve));
  }

  /** Taken back while waiting in the parent's queue (takeBack). */
  deferred = false;

  /** The downlink's meter, noting on the way that this request's body began, then telling `began`. */
  meter(downlink: BodyMeter, began: () => void): BodyMeter {
    return {
      began: () => {
        this.receiving = true;
        const body = downlink.began();
        began();
        return body;
      },
    };
  }

  /** Stops the request if it still waits for its body (the parent gives its queue place up when we close). */
  takeBack(): void {
    if (this.receiving || this.outcome || this.deferred || this.keepsPlace) return;
    this.deferred = true;
    this.race.abort(new DfError('CANCELLED', `piece ${this.piece.number}: taken back from ${this.parentId}`));
  }

  /** This fetch ended (its bytes are stored, or it stopped writing): the first call decides. */
  settle(outcome: 'stored' | 'failed'): void {
    if (this.outcome) return;
    this.outcome = outcome;
    this.resolveSettled(outcome);
  }
}

function isDeadParent(e: unknown): boolean {
  // A parent whose TLS handshake failed (certificate not trusted, no TLS on one side) fails every piece alike.
  if (isTlsFailure(e)) return true;
  for (let c: unknown = e; c instanceof Error; c = c.cause) {
    const code = (c as NodeJS.ErrnoException).code;
    if (code && DEAD_PARENT_CODES.has(code)) return true;
  }
  return false;
}
