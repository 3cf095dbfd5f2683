// One download of a task as a client asked for it: what DfdaemonDownload.DownloadTask (dfget, SDKs) and the HTTP
// proxy share. It validates the Download, computes the task id, starts (or joins) the task's run, yields the
// pieces, writes the output path if one was asked for, and keeps the download metrics.

import { isAbsolute, resolve, sep } from 'node:path';
import type { Caller } from '../core/caller.js';
import { parseDigest } from '../core/digest.js';
import { DfError, toDfError } from '../core/errors.js';
import { peerId as makePeerId } from '../core/ids.js';
import { interestedPieces, validatePieceLength, type ContentRange } from '../core/piece.js';
import { taskIdentity } from '../core/task-id.js';
import { SourceAddressPolicy } from '../backend/address-policy.js';
import { Priority, TaskType, type Download } from '../gen/common.js';
import type { DaemonMetrics, TaskLabels } from './metrics.js';
import { OutputFile } from './output-file.js';
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

/** The longest download.timeout a timer can hold (setTimeout's limit, 2^31 - 1 ms: about 24.8 days). */
export const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/** Checks a Download before any work: bad input gets INVALID_ARGUMENT naming the field. */
export function validateDownload(d: Download, storageDir: string): void {
  if (!d.url) throw new DfError('INVALID_ARGUMENT', 'download.url is empty');
  try {
    new URL(d.url);
  } catch {
    throw new DfError('INVALID_ARGUMENT', `download.url "${d.url}" is not a valid URL`);
  }
  if (!Object.values(TaskType).includes(d.type) || d.type === TaskType.UNRECOGNIZED) {
    throw new DfError(
      'INVALID_ARGUMENT',
      `download.type ${d.type} is not a task type (0 standard, 1 persistent, 2 persistent cache, 3 cache)`,
    );
  }
  if (!Object.values(Priority).includes(d.priority) || d.priority === Priority.UNRECOGNIZED) {
    throw new DfError('INVALID_ARGUMENT', `download.priority ${d.priority} is not a priority (0 to 6)`);
  }
  if (d.timeout) {
    const { seconds, nanos } = d.timeout;
    // BigInt: 2^62 is printed as it was sent, not as 4611686018427388000.
    const secs = Number.isInteger(seconds) ? BigInt(seconds).toString() : String(seconds);
    const shown = `${secs}s${nanos ? ` ${nanos}ns` : ''}`;
    if (seconds < 0 || nanos < 0 || (seconds === 0 && nanos === 0)) {
      throw new DfError('INVALID_ARGUMENT', `download.timeout ${shown} must be positive`);
    }
    if (nanos > 999_999_999) {
      throw new DfError('INVALID_ARGUMENT', `download.timeout ${shown}: nanos must be below 1e9`);
    }
    if (seconds * 1000 + nanos / 1e6 > MAX_TIMEOUT_MS) {
      throw new DfError(
        'INVALID_ARGUMENT',
        `download.timeout ${shown} is too long: at most ${Math.floor(MAX_TIMEOUT_MS / 1000)}s (24 days)`,
      );
    }
  }
  if (d.pieceLength !== undefined) validatePieceLength(d.pieceLength);
  if (d.digest) parseDigest(d.digest);
  if (d.range && d.range.length === 0) throw new DfError('INVALID_ARGUMENT', 'download.range.length is 0');
  if (d.outputPath !== undefined) {
    const p = d.outputPath;
    if (!p || p.includes('\0'))
      throw new DfError('INVALID_ARGUMENT', 'download.output_path is empty or malformed');
    if (!isAbsolute(p)) throw new DfError('INVALID_ARGUMENT', `download.output_path "${p}" must be absolute`);
    // A first check on the path as written; OutputFile checks it again once symlinks are resolved.
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
   * request is invalid; a failure to start is counted as a failed download. `caller`: who asked (the output path is
   * written only where that user could write it; see OutputFile). The output path is checked here, before any
   * work, so a refused one is the answer rather than a late failure.
   */
  async open(
    download: Download,
    signal: AbortSignal,
    caller: Caller,
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
    const output =
      download.outputPath !== undefined && !download.range
        ? await OutputFile.open({
            path: download.outputPath,
            caller,
            overwrite: download.overwrite,
            storageDir: this.o.storageDir,
          })
        : undefined;
    this.o.metrics.downloadTaskStarted(labels);
    this.o.log.info(
      {
        taskId,
        peerId,
        url: download.url,
        range: download.range,
        ...(caller.kind === 'local' ? { callerUid: caller.cred.uid, callerPid: caller.cred.pid } : {}),
      },
      'download task',
    );
    try {
      const started = await this.o.taskManager.start(taskId, req, signal);
      const r = download.range;
      if (r && r.start + r.length > started.task.contentLength) {
        // Upstream cuts such a range at the end; a client asking for bytes that do not exist gets told instead.
        started.release();
        throw new DfError(
          'INVALID_ARGUMENT',
          `download.range start ${r.start} length ${r.length} ends at byte ${r.start + r.length}, past the ` +
            `content length ${started.task.contentLength}`,
        );
      }
      return new DownloadSession(this, { taskId, peerId, labels, req, download, started, signal, output });
    } catch (e) {
      await output?.close();
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
  output?: OutputFile;
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
  /** The checked output path (whole-file downloads with download.output_path). */
  private output?: OutputFile;
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
    this.output = init.output;
    // A whole-file digest to check (--digest) is computed as the pieces are stored, not read back at the end.
    const d = this.download;
    if (d.digest && !d.range) owner.taskManager.digestContentAsStored(this.started, d.digest);
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
    return this.output !== undefined && !this.download.range;
  }

  /**
   * Hard-links the content file to the output path at start, as upstream. When the link fails a copy at the end
   * replaces it; with force_hard_link the failure is the answer.
   */
  async linkOutput(): Promise<void> {
    if (!this.toOutput) return;
    const d = this.download;
    const why = await this.output!.linkAtStart(
      this.owner.taskManager.storage.content.taskPath(this.taskId),
      d.forceHardLink,
    );
    this.linked = why === undefined;
    if (why !== undefined) {
      this.owner.o.log.info(
        { taskId: this.taskId, output: d.outputPath, err: why },
        'hard link failed; will copy',
      );
    }
  }

  /**
   * Every interested piece was delivered: write the output path, check the digest, mark the task finished, count
   * the download.
   */
  async complete(): Promise<void> {
    await this.verifyDigest();
    // Sealed (read-only, see ContentStore.sealTask) before the copy, so a copy is of the sealed bytes.
    await this.owner.taskManager.finishIfComplete(this.started);
    if (this.toOutput && !this.linked) await this.copyOutput();
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
    void this.output?.close();
  }

  /**
   * download.digest is of the whole file: checked on the stored content, which the output path is a hard link or a
   * copy of (never on the output path itself: dfdaemon reads no file of the caller's, so a symlink swapped in there
   * cannot make it a digest oracle for files the caller cannot read). A mismatch drops the task before the error
   * is answered, so the next download fetches it again rather than serving the same wrong bytes from the cache.
   */
  private async verifyDigest(): Promise<void> {
    const d = this.download;
    if (!d.digest || d.range) return;
    try {
      await this.owner.taskManager.checkContentDigest(this.started, d.digest);
    } catch (e) {
      const err = toDfError(e);
      if (err.code === 'DIGEST_MISMATCH') await this.owner.taskManager.evictTask(this.taskId, err);
      throw err;
    }
  }

  /** Copies the finished content to the output path; an existing other file is replaced only with overwrite. */
  private async copyOutput(): Promise<void> {
    await this.output!.copy(this.owner.taskManager.storage.content.taskPath(this.taskId));
  }
}
