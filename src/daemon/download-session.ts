// One download of a task as a client asked for it: what DfdaemonDownload.DownloadTask (dfget, SDKs) and the HTTP
// proxy share. It validates the Download, computes the task id, starts (or joins) the task's run, yields the
// pieces, writes the output path if one was asked for, and keeps the download metrics.

import { stat } from 'node:fs/promises';
import { isAbsolute, resolve, sep } from 'node:path';
import { parseDigest } from '../core/digest.js';
import { DfError, toDfError } from '../core/errors.js';
import { peerId as makePeerId } from '../core/ids.js';
import { interestedPieces, validatePieceLength, type ContentRange } from '../core/piece.js';
import { taskIdentity } from '../core/task-id.js';
import { SourceAddressPolicy } from '../backend/address-policy.js';
import type { Download } from '../gen/common.js';
import { verifyFileDigest } from '../storage/file-digest.js';
import type { DaemonMetrics, TaskLabels } from './metrics.js';
import type { DeliveredPiece, DownloadRequest, StartedDownload, TaskManager } from './task-manager.js';

export interface DownloadSessionsOptions {
  taskManager: TaskManager;
  metrics: DaemonMetrics;
  host: { ip: string; hostname: string };
  /** storage.dir: output paths inside it are refused, so a download can never overwrite stored content. */
  storageDir: string;
  /**
   * Where a download a remote caller asked for may fetch from (security.allowedPrivateSources); absent: no
   * loopback, link-local or private address.
   */
  sourcePolicy?: SourceAddressPolicy;
  /** The dynconfig's download block list (PERMISSION_DENIED for a blocked download). */
  blockList?: { check(download: Download): void };
  log: {
    info(o: object, m: string): void;
    warn(o: object, m: string): void;
  };
}

/** Checks a Download before any work: bad input gets INVALID_ARGUMENT naming the field. */
export function validateDownload(d: Download, storageDir: string): void {
  if (!d.url) throw new DfError('INVALID_ARGUMENT', 'download.url is empty');
  try {
    new URL(d.url);
  } catch {
    throw new DfError('INVALID_ARGUMENT', `download.url "${d.url}" is not a valid URL`);
  }
  if (d.pieceLength !== undefined) validatePieceLength(d.pieceLength);
  if (d.digest) parseDigest(d.digest);
  if (d.range && d.range.length === 0) throw new DfError('INVALID_ARGUMENT', 'download.range.length is 0');
  if (d.outputPath !== undefined) {
    const p = d.outputPath;
    if (!p || p.includes('\0'))
      throw new DfError('INVALID_ARGUMENT', 'download.output_path is empty or malformed');
    if (!isAbsolute(p)) throw new DfError('INVALID_ARGUMENT', `download.output_path "${p}" must be absolute`);
    const abs = resolve(p);
    const root = resolve(storageDir);
    if (abs === root || abs.startsWith(root + sep)) {
      throw new DfError(
        'PERMISSION_DENIED',
        `download.output_path "${p}" is inside dfdaemon's storage directory`,
      );
    }
  }
}

export class DownloadSessions {
  readonly o: DownloadSessionsOptions;
  /** Whether this host announces itself as a seed peer (its peer ids end in `-seed`). */
  seed = false;
  private readonly sourcePolicy: SourceAddressPolicy;

  constructor(o: DownloadSessionsOptions) {
    this.o = o;
    this.sourcePolicy = o.sourcePolicy ?? SourceAddressPolicy.denyPrivate();
  }

  get taskManager(): TaskManager {
    return this.o.taskManager;
  }

  /**
   * Validates `download` and starts (or joins) its task. Throws before anything is counted as a download when the
   * request is invalid; a failure to start is counted as a failed download.
   */
  async open(
    download: Download,
    signal: AbortSignal,
    opts: { remoteCaller?: boolean } = {},
  ): Promise<DownloadSession> {
    validateDownload(download, this.o.storageDir);
    if (opts.remoteCaller) {
      // Before anything, also a stored task: what a remote caller may not fetch it may not read back either.
      // The run's connections are checked again (DNS may answer otherwise later, redirects).
      try {
        await this.sourcePolicy.checkUrl(download.url);
      } catch (e) {
        this.o.log.warn({ url: download.url, err: (e as Error).message }, 'download refused');
        throw e;
      }
    }
    try {
      this.o.blockList?.check(download);
    } catch (e) {
      this.o.metrics.downloadTaskBlocked(download.type);
      this.o.log.warn({ url: download.url, err: (e as Error).message }, 'download rejected');
      throw e;
    }
    const labels: TaskLabels = {
      type: download.type,
      tag: download.tag ?? '',
      app: download.application ?? '',
      priority: download.priority,
    };
    const { id: taskId, ...identity } = taskIdentity(download);
    const peerId = makePeerId(this.o.host.ip, this.o.host.hostname, this.seed);
    const req: DownloadRequest = {
      url: download.url,
      range: download.range,
      pieceLength: download.pieceLength,
      requestHeader: download.requestHeader,
      disableBackToSource: download.disableBackToSource,
      timeoutMs: download.timeout
        ? download.timeout.seconds * 1000 + download.timeout.nanos / 1e6
        : undefined,
      download,
      peerId,
      identity,
      remoteCaller: opts.remoteCaller,
    };
    this.o.metrics.downloadTaskStarted(labels);
    this.o.log.info({ taskId, peerId, url: download.url, range: download.range }, 'download task');
    try {
      const started = await this.o.taskManager.start(taskId, req, signal);
      return new DownloadSession(this, { taskId, peerId, labels, req, download, started, signal });
    } catch (e) {
      this.o.metrics.downloadTaskFailed(labels);
      throw e;
    }
  }
}

interface SessionInit {
  taskId: string;
  peerId: string;
  labels: TaskLabels;
  req: DownloadRequest;
  download: Download;
  started: StartedDownload;
  signal: AbortSignal;
}

export class DownloadSession {
  readonly taskId: string;
  readonly peerId: string;
  readonly download: Download;
  private started: StartedDownload;
  private readonly req: DownloadRequest;
  private readonly labels: TaskLabels;
  private readonly signal: AbortSignal;
  private readonly t0 = performance.now();
  private readonly owner: DownloadSessions;
  /** The output path is the content file's hard link (no copy needed at the end). */
  private linked = false;
  private ended = false;

  constructor(owner: DownloadSessions, init: SessionInit) {
    this.owner = owner;
    this.taskId = init.taskId;
    this.peerId = init.peerId;
    this.labels = init.labels;
    this.req = init.req;
    this.download = init.download;
    this.started = init.started;
    this.signal = init.signal;
  }

  get task(): StartedDownload['task'] {
    return this.started.task;
  }

  get interested(): StartedDownload['interested'] {
    return this.started.interested;
  }

  /** Every piece of the task is stored. */
  get isFinished(): boolean {
    return this.started.run.isFinished;
  }

  /** The stored piece of this number, if it is stored. */
  finishedPiece(n: number): DeliveredPiece['piece'] | undefined {
    return this.started.run.finished.get(n);
  }

  /** Narrows the download to a byte range once the content length is known (the proxy's Range header). */
  selectRange(range: ContentRange): void {
    const { contentLength, pieceLength } = this.started.task;
    this.started = { ...this.started, interested: interestedPieces(contentLength, pieceLength, range) };
    this.req.range = range;
    this.download.range = range;
  }

  /**
   * The interested pieces: stored ones first, then the missing ones as they finish. `inOrder`: the consumer sends
   * bytes in order, so missing pieces are fetched lowest number first.
   */
  async *pieces(options: { inOrder?: boolean } = {}): AsyncGenerator<DeliveredPiece> {
    const metrics = this.owner.o.metrics;
    for await (const d of this.owner.taskManager.pieces(this.started, this.req, this.signal, options)) {
      if (d.local) metrics.downloadTraffic('LOCAL_PEER', d.piece.length);
      yield d;
    }
  }

  /** The pieces of `numbers` only (a paced prefetch asks for a few at a time). */
  async *piecesOf(numbers: number[]): AsyncGenerator<DeliveredPiece> {
    const want = new Set(numbers);
    const started = {
      ...this.started,
      interested: this.started.interested.filter((p) => want.has(p.number)),
    };
    yield* this.owner.taskManager.pieces(started, this.req, this.signal);
  }

  /** Registers this peer as having the complete task (a scheduler-triggered download of a stored task). */
  announceMetadataOnly(): Promise<void> {
    return this.owner.taskManager.announceMetadataOnly(this.started, this.req);
  }

  /** Whether this download writes the whole task to download.output_path. */
  get toOutput(): boolean {
    return this.download.outputPath !== undefined && !this.download.range;
  }

  /**
   * Hard-links the content file to the output path at start, as upstream. When the link fails a copy at the end
   * replaces it; with force_hard_link the failure is the answer.
   */
  async linkOutput(): Promise<void> {
    if (!this.toOutput) return;
    const d = this.download;
    try {
      await this.owner.taskManager.storage.content.hardLinkTask(this.taskId, d.outputPath!);
      this.linked = true;
    } catch (e) {
      if (d.forceHardLink) {
        throw new DfError(
          'INVALID_ARGUMENT',
          `cannot hard link to ${d.outputPath} (--force-hard-link): ${(e as Error).message}`,
          { cause: e },
        );
      }
      this.owner.o.log.info(
        { taskId: this.taskId, output: d.outputPath, err: (e as Error).message },
        'hard link failed; will copy',
      );
    }
  }

  /**
   * Every interested piece was delivered: write the output path, check the digest, mark the task finished, count
   * the download.
   */
  async complete(): Promise<void> {
    if (this.toOutput && !this.linked) await this.copyOutput();
    await this.verifyDigest();
    await this.owner.taskManager.finishIfComplete(this.started);
    this.owner.o.metrics.downloadTaskFinished(
      this.labels,
      this.download.range?.length ?? this.started.task.contentLength,
      performance.now() - this.t0,
    );
  }

  /** The download failed: counted, and the task marked failed unless the client cancelled it. */
  fail(e: unknown): void {
    this.owner.o.metrics.downloadTaskFailed(this.labels);
    if (!this.signal.aborted) this.owner.taskManager.failTask(this.taskId);
    this.owner.o.log.warn({ taskId: this.taskId, err: toDfError(e).message }, 'download task failed');
  }

  /** Ends the session; idempotent. */
  release(): void {
    if (this.ended) return;
    this.ended = true;
    this.started.release();
  }

  /**
   * download.digest is of the whole file: checked on the output path (a hard link or a copy of the content), or on
   * the stored content when there is none (transfer mode: the pieces went over the socket). A mismatch drops the
   * task before the error is answered, so the next download fetches it again rather than serving the same wrong
   * bytes from the cache.
   */
  private async verifyDigest(): Promise<void> {
    const d = this.download;
    if (!d.digest || d.range) return;
    const content = this.owner.taskManager.storage.content;
    try {
      await verifyFileDigest(this.toOutput ? d.outputPath! : content.taskPath(this.taskId), d.digest);
    } catch (e) {
      const err = toDfError(e);
      if (err.code === 'DIGEST_MISMATCH') await this.owner.taskManager.evictTask(this.taskId, err);
      throw err;
    }
  }

  /** Copies the finished content to the output path; an existing other file is replaced only with overwrite. */
  private async copyOutput(): Promise<void> {
    const content = this.owner.taskManager.storage.content;
    const out = this.download.outputPath!;
    const existing = await stat(out).catch(() => undefined);
    if (existing) {
      if (existing.isDirectory()) throw new DfError('INVALID_ARGUMENT', `output path ${out} is a directory`);
      if (await content.isSameFile(this.taskId, out)) return;
      if (!this.download.overwrite) throw new DfError('ALREADY_EXISTS', `output path ${out} already exists`);
    }
    await content.copyTask(this.taskId, out);
  }
}
