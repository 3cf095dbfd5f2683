// The task manager: the download flow of resource/task.rs. A download request goes
//   started (reuse the stored task, or stat the source) → local pieces → missing pieces → finished.
// Missing pieces come from the run's PieceSource: the source in piece order (small tasks, no scheduler), or the
// P2P flow (peer-task.ts: parents, then back-to-source for what is left). Bytes move through piece-path.ts.

import type { BackendFactory } from '../backend/factory.js';
import { hubOptionsOf } from '../backend/backend.js';
import { SchedulingPolicy, type Download } from '../gen/common.js';
import type { DfdaemonUploadClient } from '../gen/dfdaemon.js';
import type { SchedulerClient } from '../gen/scheduler.js';
import { peerId as makePeerId } from '../core/ids.js';
import { DfError, toDfError } from '../core/errors.js';
import { validatorOf } from '../core/validator.js';
import { typedIdEnding, type TaskIdDerivation, type TaskIdentity } from '../core/task-id.js';
import { verifyFileDigest } from '../storage/file-digest.js';
import { OrderedContentDigest } from '../storage/ordered-digest.js';
import { parseDigest, verifyDigest, type DigestAlgorithm } from '../core/digest.js';
import { HashWorker } from '../storage/hash-worker.js';
import { calculatePieceLength, interestedPieces, pieceRanges, type ContentRange } from '../core/piece.js';
import type { PieceRecord, Storage, TaskRecord } from '../storage/storage.js';
import type { DaemonMetrics } from './metrics.js';
import { AnnouncePeerStream } from '../scheduler/announce-peer-stream.js';
import { PeerTask, registerDownload } from './peer-task.js';
import { PiecePath, type ByteLimiter, type PieceDownloader, type SourceTask } from './piece-path.js';
import { TaskRun, inOrderSource, type PieceFetcher, type PieceSource, type PieceSpec } from './task-run.js';

/** The parts of common.v2.Download the task manager reads. */
export interface DownloadRequest {
  url: string;
  range?: ContentRange;
  pieceLength?: number;
  requestHeader: Record<string, string>;
  disableBackToSource: boolean;
  /** Bound for stat; the gRPC deadline bounds the rest. */
  timeoutMs?: number;
  /** The whole request, as the scheduler should see it in RegisterPeerRequest. */
  download?: Download;
  /** The peer id the caller was told (DownloadTaskResponse.peer_id); the P2P flow announces this peer. */
  peerId?: string;
  /**
   * How the request derived the task id, and the digest its identity names (core/task-id.ts taskIdentity).
   * Absent: derived from the URL, with no known digest.
   */
  identity?: Omit<TaskIdentity, 'id'>;
  /**
   * Asked for by a remote caller (a scheduler's trigger, a proxy client on another host): the source may be
   * reached only at addresses the source policy allows (backend/address-policy.ts).
   */
  remoteCaller?: boolean;
}

/**
 * Which derivation keeps a task id when two requests derive it differently (TaskManager.start). Only a forged
 * input makes two derivations meet on one id: a content label equal to a URL's id input, blob bytes equal to a
 * URL's id input or to a content label. The URL's id input is what the URL names, so it wins; a blob's id is
 * checked against its bytes, so it wins over a label anyone may choose; a task whose derivation was never
 * recorded (stored by an older dfdaemon) loses to every request.
 */
const DERIVATION_RANK: Record<TaskIdDerivation, number> = { url: 3, 'blob-digest': 2, content: 1 };

function derivationRank(derivation: string | undefined): number {
  return DERIVATION_RANK[derivation as TaskIdDerivation] ?? 0;
}

function derivationName(derivation: string | undefined): string {
  switch (derivation) {
    case 'url':
      return 'a URL';
    case 'blob-digest':
      return 'a blob digest';
    case 'content':
      return 'content_for_calculating_task_id';
    default:
      return 'an unrecorded input';
  }
}

const URL_IDENTITY: Omit<TaskIdentity, 'id'> = { derivation: 'url' };

/** What the P2P flow needs; absent when no scheduler is configured (pure back-to-source). */
export interface P2POptions {
  /** The scheduler for a task (consistent hash over the healthy ones), or undefined if none is usable now. */
  schedulerFor(taskId: string): SchedulerClient | undefined;
  uploadClient(ip: string, port: number): DfdaemonUploadClient;
  downloadPiece: PieceDownloader;
  host: { ip: string; hostname: string; id: string; seed: boolean };
  scheduleTimeoutMs: number;
  maxScheduleCount: number;
  collectedPieceTimeoutMs: number;
  /** Announce our host again (the scheduler lost it). */
  reannounce?: () => Promise<void>;
}

/** Tasks (or ranges) at most this long go straight to the source and never contact the scheduler (as upstream). */
export const DIRECT_DOWNLOAD_MAX_LENGTH = 4 * 1024 * 1024;

export interface TaskManagerOptions {
  storage: Storage;
  backends: BackendFactory;
  metrics: DaemonMetrics;
  /** download.concurrentPieceCount */
  concurrentPieceCount: number;
  /** download.pieceTimeout */
  pieceTimeoutMs: number;
  /** backend.maxRetries: extra attempts for a piece whose source fetch failed in a retryable way. */
  maxRetries: number;
  log: {
    info(o: object, m: string): void;
    warn(o: object, m: string): void;
    debug(o: object, m: string): void;
  };
  /** The P2P flow's collaborators; without them every download goes back to source. */
  p2p?: P2POptions;
  /** download.bandwidthLimit: every piece this peer downloads, from parents or the source. */
  downloadLimiter?: ByteLimiter;
  /** download.backToSourceBandwidthLimit: pieces from the source. */
  backToSourceLimiter?: ByteLimiter;
  /** storage.server.cutThrough: pieces from parents may be relayed to children while they arrive. */
  cutThrough?: boolean;
}

export interface StartedDownload {
  task: TaskRecord & { contentLength: number; pieceLength: number };
  run: TaskRun;
  interested: PieceSpec[];
  /** Releases the run; call exactly once when the request ends. */
  release(): void;
}

export interface DeliveredPiece {
  piece: PieceRecord;
  /** True when the piece was already stored before this request asked for it. */
  local: boolean;
}

const DEFAULT_STAT_TIMEOUT_MS = 60_000;

export class TaskManager {
  private readonly runs = new Map<string, TaskRun>();
  /** Starts in flight, with the signal of the request that started it (its stat is cut when that one goes). */
  private readonly starting = new Map<
    string,
    { run: Promise<TaskRun>; signal: AbortSignal; derivation: TaskIdDerivation }
  >();
  /** Evictions in flight (evictTask): a start of the task waits for its eviction, then starts from scratch. */
  private readonly evicting = new Map<string, Promise<void>>();
  /** Runs that ended (no request holds them) with fetches still in flight, until those settle; see createRun. */
  private readonly draining = new Map<string, TaskRun>();
  /** How each run's task id was derived (the request that created the run). */
  private readonly runIdentities = new WeakMap<TaskRun, Omit<TaskIdentity, 'id'>>();
  /** Digests of the run's whole content, computed as it stores pieces (digestContentAsStored), by algorithm. */
  private readonly runDigests = new WeakMap<TaskRun, Map<DigestAlgorithm, OrderedContentDigest>>();
  /** The thread those digests are computed in, started with the first. */
  private hashWorker: HashWorker | undefined;
  /** Finished runs whose content is being checked before the task is marked finished (finishIfComplete). */
  private readonly finishing = new Map<string, Promise<void>>();
  private readonly o: TaskManagerOptions;
  private readonly piecePath: PiecePath;
  private closed = false;
  /** Aborted by close(): cuts source stats still in flight, which no run owns yet. */
  private readonly closing = new AbortController();

  constructor(options: TaskManagerOptions) {
    this.o = options;
    this.piecePath = new PiecePath({
      storage: options.storage,
      backends: options.backends,
      metrics: options.metrics,
      pieceTimeoutMs: options.pieceTimeoutMs,
      maxRetries: options.maxRetries,
      backToSourceLimiter: options.backToSourceLimiter,
      downloadPiece: options.p2p?.downloadPiece,
      relay: options.cutThrough,
      log: options.log,
    });
  }

  get storage(): Storage {
    return this.o.storage;
  }

  /** Turns the P2P flow on once its collaborators exist (the scheduler client starts after the task manager). */
  enableP2P(p2p: P2POptions): void {
    this.o.p2p = p2p;
    this.piecePath.downloadPiece = p2p.downloadPiece;
  }

  /** The active run of a task, if a request holds one. */
  activeRun(taskId: string): TaskRun | undefined {
    return this.runs.get(taskId);
  }

  /** Number of tasks with an active download in this daemon. */
  get activeTasks(): number {
    return this.runs.size;
  }

  /**
   * download_started: reuse a finished stored task as it is, else stat the source and create (or resume) the
   * task. Concurrent requests for one task share one start and one run.
   */
  async start(taskId: string, req: DownloadRequest, signal: AbortSignal): Promise<StartedDownload> {
    // GC may evict a stored task between the start's reuse check and its run taking hold (an eviction that had
    // already decided): the task is then gone, and one more start fetches it again.
    const identity = req.identity ?? URL_IDENTITY;
    for (let attempt = 1; ; attempt++) {
      const run = await this.joinRun(taskId, req, signal);
      const runIdentity = this.runIdentities.get(run) ?? URL_IDENTITY;
      if (runIdentity.derivation !== identity.derivation) {
        // A run of this id derived another way is another task: this request is never served its pieces.
        this.refuseOrReplace(taskId, runIdentity.derivation, identity.derivation);
        await this.evictTask(
          taskId,
          new DfError(
            'PERMISSION_DENIED',
            `task ${taskId} was dropped: ${derivationName(identity.derivation)} names this id, not ${derivationName(runIdentity.derivation)}`,
          ),
        );
        if (attempt >= 3) throw new DfError('UNAVAILABLE', `task ${taskId} is contended; try again`);
        continue;
      }
      run.users++;
      const task = this.o.storage.getTask(taskId) as StartedDownload['task'] | undefined;
      if (task && task.contentLength !== undefined && task.pieceLength !== undefined) {
        return this.started(run, task, req);
      }
      this.releaseRun(run);
      if (attempt >= 3) throw new DfError('TASK_NOT_FOUND', `task ${taskId} vanished while starting`);
      this.o.log.info({ taskId }, 'task was evicted while starting; starting again');
    }
  }

  /**
   * GC's eviction of a stored task: `deletion` runs unless a request holds the task or is starting it, and a start
   * of the task meanwhile waits for it (as for evictTask), then fetches the task anew. Without the wait, a start
   * between GC's check and the delete reused the finished task and found its file gone (ENOENT copying it to the
   * output, or a proxy answer cut off: three of 36 181 downloads in a 30-minute soak). False when busy.
   */
  deleteIdle(taskId: string, deletion: () => Promise<void>): Promise<boolean> {
    if (this.isBusy(taskId)) return Promise.resolve(false);
    const done = deletion();
    this.holdStarts(taskId, done);
    return done.then(() => true);
  }

  /**
   * Starts of `taskId` wait until `work` (a deletion of the task) has settled, then stat the source anew
   * (joinRun, createRun); the entry never rejects and is gone once `work` settled. Returns what starts wait on.
   */
  private holdStarts(taskId: string, work: Promise<unknown>): Promise<void> {
    const settled = work
      .then(
        () => undefined,
        () => undefined,
      )
      .finally(() => this.evicting.delete(taskId));
    this.evicting.set(taskId, settled);
    return settled;
  }

  /** Whether a request holds the task or is starting it (GC must leave it alone). */
  isBusy(taskId: string): boolean {
    return (
      this.runs.has(taskId) ||
      this.starting.has(taskId) ||
      this.evicting.has(taskId) ||
      this.draining.has(taskId)
    );
  }

  /**
   * A request derived `taskId` as `wanted`, but the task (a run or a stored one) was derived as `existing`:
   * throws PERMISSION_DENIED when the existing derivation ranks higher (DERIVATION_RANK), so the caller may replace
   * the task only when it does not.
   */
  private refuseOrReplace(taskId: string, existing: string | undefined, wanted: TaskIdDerivation): void {
    if (derivationRank(existing) < derivationRank(wanted)) {
      this.o.log.warn(
        { taskId, existing: existing ?? 'unrecorded', wanted },
        'task id derived another way: dropping the stored task and fetching it from this request’s source',
      );
      return;
    }
    throw new DfError(
      'PERMISSION_DENIED',
      `task ${taskId} is the task of ${derivationName(existing)}; ${derivationName(wanted)} cannot name it ` +
        `(same id, different derivation: see docs/security.md, "A task id that stands for another task")`,
    );
  }

  /** The task's run: the active one, or one this or a concurrent request creates. */
  private async joinRun(taskId: string, req: DownloadRequest, signal: AbortSignal): Promise<TaskRun> {
    if (this.closed) throw new DfError('UNAVAILABLE', 'dfdaemon is shutting down');
    let run = this.runs.get(taskId);
    while (!run) {
      const evicting = this.evicting.get(taskId);
      if (evicting) {
        await evicting;
        run = this.runs.get(taskId);
        continue;
      }
      const derivation = (req.identity ?? URL_IDENTITY).derivation;
      let pending = this.starting.get(taskId);
      if (pending && pending.derivation !== derivation) {
        // Another task under the same id is starting: its outcome is not ours (start() then decides).
        await pending.run.catch(() => undefined);
        run = this.runs.get(taskId);
        continue;
      }
      if (!pending) {
        const created = this.createRun(taskId, req, signal).finally(() => this.starting.delete(taskId));
        pending = { run: created, signal, derivation };
        this.starting.set(taskId, pending);
      }
      try {
        run = await pending.run;
      } catch (e) {
        // The request that started it went away and took the stat with it: the others start again.
        if (pending.signal === signal || !pending.signal.aborted || signal.aborted) throw e;
        run = this.runs.get(taskId);
      }
    }
    return run;
  }

  private started(run: TaskRun, task: StartedDownload['task'], req: DownloadRequest): StartedDownload {
    let interested: PieceSpec[];
    try {
      interested = interestedPieces(task.contentLength, task.pieceLength, req.range);
    } catch (e) {
      this.releaseRun(run);
      throw e;
    }
    let released = false;
    return {
      task,
      run,
      interested,
      release: () => {
        if (released) return;
        released = true;
        this.releaseRun(run);
      },
    };
  }

  /**
   * A finished task is reused without asking the origin (as upstream: a cache hit costs no request). Any other
   * stored task — a partial one left by a cancelled download or a kill -9, or a failed one — is stat'ed again, and
   * Storage.prepareTask keeps its pieces only if the origin still names the same version (ETag / Last-Modified and
   * lengths); otherwise they are dropped and the task starts over, so a resumed file is never a mix of versions.
   * With back-to-source disabled a partial task is resumed as it is; a task not stored here is stat'ed like any
   * other (as upstream's download_started does: only the pieces may not come from the origin) and its pieces
   * come from parents.
   */
  private async createRun(taskId: string, req: DownloadRequest, signal: AbortSignal): Promise<TaskRun> {
    const storage = this.o.storage;
    // One run of a task fetches at a time. The pieces a run that ended was still fetching finish and are kept; they
    // are waited for (bounded by the piece timeout), so that none lands after this run decided whether the stored
    // pieces are of the current version. So is an eviction in flight (one of those pieces may have started it).
    const previous = this.draining.get(taskId);
    if (previous) await previous.settled(this.o.pieceTimeoutMs);
    await this.evicting.get(taskId);
    const identity = req.identity ?? URL_IDENTITY;
    let task = storage.getTask(taskId);
    if (task && task.idDerivation !== identity.derivation) {
      this.refuseOrReplace(taskId, task.idDerivation, identity.derivation);
      await storage.deleteTask(taskId);
      task = undefined;
    }
    const usable =
      task &&
      !task.failedAt &&
      task.contentLength !== undefined &&
      task.pieceLength !== undefined &&
      (req.pieceLength === undefined || req.pieceLength === task.pieceLength) &&
      (await storage.content.hasTask(taskId));
    let reusable = usable && (task!.finishedAt !== undefined || req.disableBackToSource);
    if (reusable && task!.finishedAt) {
      // Outputs are hard links to the content file: one edited in place (by root or dfdaemon's own user; the
      // file is read-only) must never be served as the task. It is dropped and fetched again.
      const why = await storage.content.checkSealed(taskId, task!.contentLength!, task!.finishedAt);
      if (why) {
        this.o.log.warn({ taskId, why }, 'stored task changed after it finished; dropping it');
        await storage.deleteTask(taskId);
        task = undefined;
        reusable = false;
      }
    }
    if (!reusable) {
      const backend = this.o.backends.get(req.url);
      const started = performance.now();
      this.o.metrics.backendRequest(backend.scheme, 'HEAD');
      let stat;
      try {
        stat = await backend.stat({
          taskId,
          url: req.url,
          requestHeader: req.requestHeader,
          remoteCaller: req.remoteCaller,
          objectStorage: req.download?.objectStorage,
          hub: req.download && hubOptionsOf(req.download),
          hdfs: req.download?.hdfs,
          timeoutMs: req.timeoutMs ?? DEFAULT_STAT_TIMEOUT_MS,
          signal: AbortSignal.any([signal, this.closing.signal]),
        });
      } catch (e) {
        this.o.metrics.backendRequestFailed(backend.scheme, 'HEAD');
        throw e;
      } finally {
        this.o.metrics.backendRequestDuration(backend.scheme, 'HEAD', performance.now() - started);
      }
      if (stat.contentLength === undefined) {
        throw new DfError('BACKEND', `source ${req.url} did not tell the content length`, {
          backend: {
            statusCode: stat.statusCode,
            header: stat.responseHeader,
            message: 'unknown content length',
          },
        });
      }
      task = await storage.prepareTask(taskId, {
        contentLength: stat.contentLength,
        pieceLength: req.pieceLength ?? calculatePieceLength(stat.contentLength),
        responseHeader: stat.responseHeader,
        idDerivation: identity.derivation,
        knownDigest: identity.knownDigest,
      });
      this.o.log.info(
        { taskId, contentLength: stat.contentLength, pieceLength: task.pieceLength },
        'task started',
      );
    }
    const contentLength = task!.contentLength!;
    const pieceLength = task!.pieceLength!;
    // A stored partial task resumed as it is (back-to-source disabled) reserves what it has still to write too;
    // prepareTask reserved it for the others. A finished task writes nothing.
    if (reusable && !task!.finishedAt) await storage.reserveSpace(taskId, contentLength);
    const run = new TaskRun(
      taskId,
      pieceRanges(contentLength, pieceLength),
      storage.listPieces(taskId),
      this.o.concurrentPieceCount,
    );
    // The origin changed under this run: its stored pieces are of the old version and the rest can only come
    // from the new one. The run fails (every request holding it gets SOURCE_CHANGED, dfget and the proxy start
    // once more) and the task is dropped, so the next start stats the new version and fetches all of it. Being
    // the run's first listener, this marks the eviction before any request sees the error.
    run.subscribe((ev) => {
      if (ev.error?.code !== 'SOURCE_CHANGED') return;
      // Only while this run is the task's (running or draining): a newer run starts only after this one settled.
      if ((this.runs.get(taskId) ?? this.draining.get(taskId)) === run) void this.evictTask(taskId, ev.error);
    });
    this.runIdentities.set(run, identity);
    if (task!.knownDigest && !task!.finishedAt) {
      this.digestContentAsStored({ run, task: { ...task!, contentLength, pieceLength } }, task!.knownDigest);
    }
    this.runs.set(taskId, run);
    return run;
  }

  private releaseRun(run: TaskRun): void {
    run.users--;
    if (run.users <= 0 && this.runs.get(run.taskId) === run) {
      this.runs.delete(run.taskId);
      run.end();
      this.drain(run);
    }
  }

  /**
   * An ended run with fetches in flight stays in `draining` until they settle (bounded by the piece timeout). Once
   * nothing of it can write any more, the disk space reserved for it is given back (unless a new run of the task
   * is starting, which reserves for itself).
   */
  private drain(run: TaskRun): void {
    const done = () => {
      if (!this.runs.has(run.taskId) && !this.starting.has(run.taskId)) {
        this.o.storage.releaseSpace(run.taskId);
      }
    };
    if (run.piecesInFlight.size === 0) {
      done();
      return;
    }
    this.draining.set(run.taskId, run);
    void run.settled(this.o.pieceTimeoutMs).then(() => {
      if (this.draining.get(run.taskId) === run) this.draining.delete(run.taskId);
      done();
    });
  }

  /**
   * Yields the interested pieces: stored ones first, then the missing ones as they finish (in completion
   * order). Throws the first piece failure. The first request that needs a fetch decides where the run's pieces
   * come from (chooseFetcher).
   */
  async *pieces(
    started: StartedDownload,
    req: DownloadRequest,
    signal: AbortSignal,
    options: { inOrder?: boolean } = {},
  ): AsyncGenerator<DeliveredPiece> {
    const { run, interested } = started;
    const missing = new Set<number>();
    for (const p of interested) {
      const done = run.finished.get(p.number);
      if (done) yield { piece: done, local: true };
      else missing.add(p.number);
    }
    if (missing.size === 0) return;
    // Back-to-source disabled: the missing pieces may come from parents only (upstream too asks the scheduler and
    // refuses only the origin; the peer task refuses source pieces), which needs a scheduler. A run whose source
    // another request already chose is simply waited on.
    if (req.disableBackToSource && !run.hasSource && !this.peerTaskPossible(started, req)) {
      throw new DfError(
        'UNAVAILABLE',
        `${missing.size} pieces of task ${run.taskId} are missing, back-to-source is disabled and no scheduler can give parents`,
      );
    }

    // Pieces finished by another request between the loop above and the subscription are picked up below.
    const ready: DeliveredPiece[] = [];
    let failure: DfError | undefined;
    let wake: (() => void) | undefined;
    const unsubscribe = run.subscribe((ev) => {
      if (ev.error) {
        if (missing.has(ev.number)) failure ??= ev.error;
      } else if (missing.has(ev.piece.number)) {
        ready.push({ piece: ev.piece, local: false });
      }
      wake?.();
    });
    if (!run.hasSource) run.setSource(this.limited(this.chooseSource(started, req)));
    const unwant = run.want(missing, options);
    const onAbort = (): void => wake?.();
    signal.addEventListener('abort', onAbort);
    try {
      for (const n of [...missing]) {
        const done = run.finished.get(n);
        if (done && !ready.some((r) => r.piece.number === n)) ready.push({ piece: done, local: false });
      }
      while (missing.size > 0) {
        while (ready.length > 0) {
          const r = ready.shift()!;
          if (!missing.delete(r.piece.number)) continue;
          yield r;
        }
        if (missing.size === 0) break;
        if (failure) throw failure;
        if (signal.aborted) throw toDfError(signal.reason ?? new DfError('CANCELLED', 'download cancelled'));
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      unsubscribe();
      unwant();
    }
  }

  /**
   * Tells the scheduler that this peer has the whole task without downloading anything: register with
   * metadata_only, expect MetadataOnlyResponse, then started + finished (resource/task.rs, seed peers).
   */
  async announceMetadataOnly(started: StartedDownload, req: DownloadRequest): Promise<void> {
    const p2p = this.o.p2p;
    const scheduler = p2p?.schedulerFor(started.run.taskId);
    if (!p2p || !scheduler || !req.download) return;
    const ids = { hostId: p2p.host.id, taskId: started.run.taskId, peerId: this.peerIdFor(req) };
    const stream = new AnnouncePeerStream(scheduler, ids, p2p.scheduleTimeoutMs);
    try {
      stream.send({
        registerPeerRequest: {
          download: registerDownload(
            req.download,
            {
              contentLength: started.task.contentLength,
              pieceLength: started.task.pieceLength,
              pieceCount: started.run.pieceCount,
              concurrentPieceCount: this.o.concurrentPieceCount,
            },
            { needBackToSource: false, metadataOnly: true },
          ),
        },
      });
      const reply = await stream.next();
      if (!reply.metadataOnlyResponse) {
        stream.finish({ downloadPeerFailedRequest: { description: 'expected a metadata-only response' } });
        throw new DfError('INTERNAL', 'scheduler did not answer the metadata-only register as expected');
      }
      stream.send({ downloadPeerStartedRequest: {} });
      stream.finish({ downloadPeerFinishedRequest: {} });
      this.o.log.info({ taskId: ids.taskId }, 'announced a complete task metadata-only');
    } finally {
      stream.close();
    }
  }

  /**
   * Starts hashing the run's whole content in the algorithm of `expected`, in piece order as its pieces are
   * stored, in a worker thread (storage/ordered-digest.ts), so that checkContentDigest neither reads the whole
   * file again at the end nor holds the main thread. One digest per run and algorithm, made on the first ask;
   * pieces already stored are hashed at once. A digest this daemon cannot parse is left to checkContentDigest,
   * whose whole-file check names what is wrong with it.
   */
  digestContentAsStored(
    started: Pick<StartedDownload, 'run' | 'task'>,
    expected: string,
  ): OrderedContentDigest | undefined {
    let algorithm: DigestAlgorithm;
    try {
      algorithm = parseDigest(expected).algorithm;
    } catch {
      return undefined;
    }
    const { run, task } = started;
    let byAlgorithm = this.runDigests.get(run);
    if (!byAlgorithm) this.runDigests.set(run, (byAlgorithm = new Map()));
    const known = byAlgorithm.get(algorithm);
    if (known) return known;
    this.hashWorker ??= new HashWorker();
    const job = this.hashWorker.job(this.o.storage.content.taskPath(run.taskId), algorithm);
    const digest = new OrderedContentDigest(pieceRanges(task.contentLength, task.pieceLength), job);
    run.subscribe((ev) => {
      if (ev.piece) digest.pieceStored(ev.piece.number);
    });
    for (const n of run.finished.keys()) digest.pieceStored(n);
    run.onEnd(() => digest.close());
    byAlgorithm.set(algorithm, digest);
    return digest;
  }

  /**
   * Throws DIGEST_MISMATCH unless the run's stored content has the digest `expected` (the task's known digest, or
   * a download's --digest): the digest computed as the pieces were stored, or the whole file read again if that
   * one could not be computed.
   */
  async checkContentDigest(started: Pick<StartedDownload, 'run' | 'task'>, expected: string): Promise<void> {
    const actual = await this.digestContentAsStored(started, expected)
      ?.digest()
      .catch(() => undefined);
    if (actual !== undefined) verifyDigest(expected, actual);
    else await verifyFileDigest(this.o.storage.content.taskPath(started.run.taskId), expected);
  }

  /**
   * Marks the task finished in storage once every piece is there — after its content passed the checks its
   * identity asks for (verifyBeforeFinish). A content that fails them drops the task (DIGEST_MISMATCH).
   */
  async finishIfComplete(started: StartedDownload): Promise<void> {
    const taskId = started.run.taskId;
    if (!started.run.isFinished) return;
    const task = this.o.storage.getTask(taskId);
    if (!task || task.finishedAt) return;
    let pending = this.finishing.get(taskId);
    if (!pending) {
      pending = (async () => {
        await this.verifyBeforeFinish(task, started);
        this.o.storage.finishTask(taskId);
        this.o.log.info({ taskId }, 'task finished');
      })().finally(() => this.finishing.delete(taskId));
      this.finishing.set(taskId, pending);
    }
    await pending;
  }

  /**
   * What a task's identity makes checkable before it counts as finished: the whole content against the digest
   * its identity names (an OCI blob URL's), and, for an id that is the digest of its own content, that the
   * content does not end like another task kind's id input (typedIdEnding): such bytes, pushed to a registry,
   * would have an id equal to a URL's task id. Pieces from parents or the source alike: a parent's pieces match
   * the CRCs the parent computed, which proves nothing about what the task should hold.
   */
  private async verifyBeforeFinish(task: TaskRecord, started: StartedDownload): Promise<void> {
    const content = this.o.storage.content;
    let why: string | undefined;
    if (task.knownDigest) {
      try {
        await this.checkContentDigest(started, task.knownDigest);
      } catch (e) {
        const err = toDfError(e);
        if (err.code !== 'DIGEST_MISMATCH') throw err;
        const namer = task.idDerivation === 'blob-digest' ? 'its blob digest' : 'its URL';
        why = `its content is not ${task.knownDigest}, the digest ${namer} names (${err.message})`;
      }
    }
    if (why === undefined && task.idDerivation === 'blob-digest' && task.contentLength) {
      const n = Math.min(16, task.contentLength);
      const ending = typedIdEnding(await content.readPieceBuffer(task.id, task.contentLength - n, n));
      if (ending !== undefined) {
        why = `its content ends with "${ending}", so its id could be the id of another kind of task`;
      }
    }
    if (why === undefined) return;
    const reason = new DfError('DIGEST_MISMATCH', `task ${task.id} is not finished: ${why}`);
    await this.evictTask(task.id, reason);
    throw reason;
  }

  /**
   * Marks the task failed in the metadata, best effort: on a full disk the write itself fails (SQLITE_FULL),
   * and that must neither crash the daemon nor hide the download's own error.
   */
  failTask(taskId: string): void {
    try {
      this.o.storage.failTask(taskId);
    } catch (e) {
      this.o.log.warn({ taskId, err: (e as Error).message }, 'could not record the task as failed');
    }
  }

  /** Whether chooseSource would take the run's pieces through the scheduler (a peer task) rather than the source. */
  private peerTaskPossible(started: StartedDownload, req: DownloadRequest): boolean {
    return Boolean(this.o.p2p && req.download && this.o.p2p.schedulerFor(started.run.taskId));
  }

  /**
   * Where the run's missing pieces come from. Small tasks and small ranges (one piece at most) go straight to the
   * source, as upstream's scheduling policy AUTO does (the scheduler is never contacted for them) — unless the
   * request says ALWAYS (dfget --scheduling-policy always, X-Dragonfly-Scheduling-Policy), so that this peer
   * announces even a small task and other peers find it as a parent. Everything goes to the source when no
   * scheduler is configured. Otherwise the P2P flow registers the peer and takes pieces from parents, with the
   * source as its fallback.
   */
  private chooseSource(started: StartedDownload, req: DownloadRequest): PieceSource {
    const source: SourceTask = {
      taskId: started.run.taskId,
      url: req.url,
      requestHeader: req.requestHeader,
      validator: validatorOf(started.task.responseHeader),
      // The request that makes the run fetch decides: a remote caller's run reaches only allowed addresses.
      remoteCaller: req.remoteCaller,
      objectStorage: req.download?.objectStorage,
      hub: req.download && hubOptionsOf(req.download),
      hdfs: req.download?.hdfs,
    };
    const p2p = this.o.p2p;
    const length = req.range?.length ?? started.task.contentLength;
    const direct =
      length <= DIRECT_DOWNLOAD_MAX_LENGTH &&
      !req.disableBackToSource &&
      req.download?.schedulingPolicy !== SchedulingPolicy.ALWAYS;
    const scheduler = p2p && !direct ? p2p.schedulerFor(started.run.taskId) : undefined;
    if (!p2p || !scheduler || !req.download) {
      return inOrderSource((piece, signal) => this.piecePath.fromSource(source, piece, signal));
    }
    const peerTask = new PeerTask({
      run: started.run,
      source,
      piecePath: this.piecePath,
      download: req.download,
      contentLength: started.task.contentLength,
      pieceLength: started.task.pieceLength,
      hostId: p2p.host.id,
      peerId: this.peerIdFor(req),
      scheduler,
      uploadClient: p2p.uploadClient,
      scheduleTimeoutMs: p2p.scheduleTimeoutMs,
      maxScheduleCount: p2p.maxScheduleCount,
      collectedPieceTimeoutMs: p2p.collectedPieceTimeoutMs,
      concurrentPieceCount: this.o.concurrentPieceCount,
      reannounce: p2p.reannounce,
      newPeerId: () => makePeerId(p2p.host.ip, p2p.host.hostname, p2p.host.seed),
      log: this.o.log,
    });
    void peerTask
      .start()
      .catch((e: Error) => this.o.log.warn({ err: e.message }, 'peer task failed to start'));
    return peerTask;
  }

  /**
   * download.bandwidthLimit counts every piece the run fetches once per attempt, wherever it comes from (a
   * parent, or the source).
   */
  private limited(source: PieceSource): PieceSource {
    const limiter = this.o.downloadLimiter;
    if (!limiter) return source;
    return {
      onWake: (wake) => source.onWake(wake),
      maxInFlight: source.maxInFlight && (() => source.maxInFlight!()),
      next: (c) => {
        const job = source.next(c);
        if (!job) return undefined;
        const fetch: PieceFetcher = async (piece, signal) => {
          await limiter.acquire(piece.length);
          return job.fetch(piece, signal);
        };
        return { number: job.number, fetch };
      },
    };
  }

  /** The caller's peer id, or a new one (a peer id is `{ip}-{hostname}-{uuid}`, `-seed` for seed peers). */
  private peerIdFor(req: DownloadRequest): string {
    const host = this.o.p2p!.host;
    return req.peerId ?? makePeerId(host.ip, host.hostname, host.seed);
  }

  /** Deletes a task's stored data, stopping its download if one runs. */
  async deleteTask(taskId: string): Promise<void> {
    const run = this.runs.get(taskId);
    if (run) {
      run.abort(new DfError('CANCELLED', `task ${taskId} was deleted`));
      this.runs.delete(taskId);
      run.end();
    }
    if (!this.o.storage.getTask(taskId)) throw new DfError('TASK_NOT_FOUND', `task ${taskId} not found`);
    await this.o.storage.deleteTask(taskId);
  }

  /**
   * Drops a task whose stored bytes must not be served again: its origin changed during a download
   * (SOURCE_CHANGED), or the whole file failed the client's digest. Its run is stopped with `reason` (requests
   * holding it fail with it), the run's fetches in flight are waited for (bounded by the piece timeout) so none
   * writes into the next run's content file, then pieces, metadata and content are deleted. A start of the task
   * meanwhile waits, then stats the source and fetches everything again. Never rejects; idempotent while running.
   */
  evictTask(taskId: string, reason: DfError): Promise<void> {
    const pending = this.evicting.get(taskId);
    if (pending) return pending;
    const run = this.runs.get(taskId) ?? this.draining.get(taskId);
    if (run) {
      run.abort(reason);
      if (this.runs.get(taskId) === run) this.runs.delete(taskId);
      run.end();
    }
    this.o.log.warn({ taskId, err: reason.message }, 'dropping the stored task');
    return this.holdStarts(
      taskId,
      (async () => {
        if (run && !(await run.settled(this.o.pieceTimeoutMs))) {
          this.o.log.warn(
            { taskId },
            'piece fetches of a dropped task still running after the piece timeout',
          );
        }
        try {
          await this.o.storage.deleteTask(taskId);
        } catch (e) {
          this.o.log.warn({ taskId, err: (e as Error).message }, 'could not delete the dropped task');
          this.failTask(taskId);
        }
      })(),
    );
  }

  /** Stops every download (shutdown). */
  close(): void {
    this.closed = true;
    void this.hashWorker?.close();
    this.closing.abort(new DfError('UNAVAILABLE', 'dfdaemon is shutting down'));
    for (const run of this.draining.values())
      run.abort(new DfError('UNAVAILABLE', 'dfdaemon is shutting down'));
    for (const run of this.runs.values()) {
      run.abort(new DfError('UNAVAILABLE', 'dfdaemon is shutting down'));
      run.end();
    }
  }
}
