// dfdaemon.v2.DfdaemonDownload on the unix socket: what dfget (and the SDKs) call. The flow per DownloadTask
// follows grpc/dfdaemon_download.rs: started response, one piece-finished response per interested piece,
// then (for a whole-file download to an output path) copy-if-not-linked and digest verification.

import { once } from 'node:events';
import { stat } from 'node:fs/promises';
import { isAbsolute, resolve, sep } from 'node:path';
import {
  type sendUnaryData,
  type ServerUnaryCall,
  type ServerWritableStream,
  type UntypedHandleCall,
} from '@grpc/grpc-js';
import { parseDigest } from '../../core/digest.js';
import { DfError } from '../../core/errors.js';
import { hostId as makeHostId, peerId as makePeerId } from '../../core/ids.js';
import { pieceCount as countPieces, validatePieceLength } from '../../core/piece.js';
import { selectTaskId } from '../../core/task-id.js';
import { unsupportedDownloadDirectory } from '../../backend/backend.js';
import { TaskType, type Download, type Task } from '../../gen/common.js';
import {
  DfdaemonDownloadService,
  type DeleteLocalTaskRequest,
  type DeleteTaskRequest,
  type DownloadTaskRequest,
  type DownloadTaskResponse,
  type ListLocalTasksRequest,
  type ListLocalTasksResponse,
  type ListTaskEntriesRequest,
  type ListTaskEntriesResponse,
  type StatLocalTaskRequest,
  type StatLocalTaskResponse,
  type StatTaskRequest,
} from '../../gen/dfdaemon.js';
import type { Empty } from '../../gen/google/protobuf/empty.js';
import { verifyFileDigest } from '../../storage/file-digest.js';
import type { DaemonMetrics, TaskLabels } from '../metrics.js';
import {
  TrafficType,
  type DownloadRequest,
  type StartedDownload,
  type TaskManager,
} from '../task-manager.js';
import { LocalTasks, localTaskState } from './local-tasks.js';
import { toGrpcError, unimplementedHandlers } from './status.js';
import { pieceMessage } from '../piece-message.js';

export interface DownloadServiceOptions {
  taskManager: TaskManager;
  metrics: DaemonMetrics;
  host: { ip: string; hostname: string };
  /** storage.dir: output paths inside it are refused, so a download can never overwrite stored content. */
  storageDir: string;
  log: {
    info(o: object, m: string): void;
    warn(o: object, m: string): void;
    error(o: object, m: string): void;
  };
}

async function write(call: ServerWritableStream<unknown, DownloadTaskResponse>, msg: DownloadTaskResponse) {
  if (!call.write(msg)) await once(call, 'drain');
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

export class DfdaemonDownloadServiceImpl {
  private readonly o: DownloadServiceOptions;
  hostId: string;
  private seed = false;
  private readonly local: LocalTasks;

  constructor(options: DownloadServiceOptions) {
    this.o = options;
    this.local = new LocalTasks(options.taskManager, options.log);
    this.hostId = makeHostId(options.host.ip, options.host.hostname);
  }

  /** The announced host id (a seed peer's ends in `-seed`, and so do its peer ids). */
  setHostId(id: string): void {
    this.hostId = id;
    this.seed = id.endsWith('-seed');
  }

  /** The handlers, keyed as grpc-js expects; RPCs of later features answer UNIMPLEMENTED with their name. */
  handlers(): Record<string, UntypedHandleCall> {
    const handlers = unimplementedHandlers(DfdaemonDownloadService);
    handlers.downloadTask = (call: ServerWritableStream<DownloadTaskRequest, DownloadTaskResponse>) =>
      void this.downloadTask(call);
    handlers.statTask = (call: ServerUnaryCall<StatTaskRequest, Task>, cb: sendUnaryData<Task>) =>
      void this.unary('stat_task', () => this.statTask(call.request), cb);
    handlers.deleteTask = (call: ServerUnaryCall<DeleteTaskRequest, Empty>, cb: sendUnaryData<Empty>) =>
      void this.unary('delete_task', () => this.deleteTask(call.request), cb);
    handlers.listTaskEntries = (
      call: ServerUnaryCall<ListTaskEntriesRequest, ListTaskEntriesResponse>,
      cb: sendUnaryData<ListTaskEntriesResponse>,
    ) => void this.unary('list_task_entries', () => this.listTaskEntries(call.request), cb);
    handlers.statLocalTask = (
      call: ServerUnaryCall<StatLocalTaskRequest, StatLocalTaskResponse>,
      cb: sendUnaryData<StatLocalTaskResponse>,
    ) => void this.unary('stat_local_task', () => this.local.stat(call.request), cb);
    handlers.listLocalTasks = (
      _call: ServerUnaryCall<ListLocalTasksRequest, ListLocalTasksResponse>,
      cb: sendUnaryData<ListLocalTasksResponse>,
    ) => void this.unary('list_local_tasks', () => this.local.list(), cb);
    handlers.deleteLocalTask = (
      call: ServerUnaryCall<DeleteLocalTaskRequest, Empty>,
      cb: sendUnaryData<Empty>,
    ) => void this.unary('delete_local_task', () => this.local.delete(call.request), cb);
    return handlers;
  }

  private async unary<T>(family: string, fn: () => Promise<T>, cb: sendUnaryData<T>): Promise<void> {
    try {
      const r = await fn();
      this.o.metrics.request(family, TaskType.STANDARD);
      cb(null, r);
    } catch (e) {
      this.o.metrics.request(family, TaskType.STANDARD, true);
      cb(toGrpcError(e));
    }
  }

  /**
   * `fromScheduler`: the call came over DfdaemonUpload (a scheduler triggering a seed peer, or a preheat). When
   * the task is already complete here, the scheduler still needs to learn that this peer has it, so the peer
   * registers metadata-only (as upstream's download_with_scheduler).
   */
  async downloadTask(
    call: ServerWritableStream<DownloadTaskRequest, DownloadTaskResponse>,
    fromScheduler = false,
  ): Promise<void> {
    const abort = new AbortController();
    const onCancel = () => abort.abort(new DfError('CANCELLED', 'the client cancelled the download'));
    call.on('cancelled', onCancel);
    const download = call.request.download;
    let labels: TaskLabels | undefined;
    let started: StartedDownload | undefined;
    let taskId = '';
    const t0 = performance.now();
    try {
      if (!download) throw new DfError('INVALID_ARGUMENT', 'download is missing');
      validateDownload(download, this.o.storageDir);
      labels = {
        type: download.type,
        tag: download.tag ?? '',
        app: download.application ?? '',
        priority: download.priority,
      };
      this.o.metrics.downloadTaskStarted(labels);
      taskId = selectTaskId(download);
      const peerId = makePeerId(this.o.host.ip, this.o.host.hostname, this.seed);
      const ids = { hostId: this.hostId, taskId, peerId };
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
      };
      this.o.log.info({ taskId, peerId, url: download.url, range: download.range }, 'download task');

      started = await this.o.taskManager.start(taskId, req, abort.signal);
      if (fromScheduler && started.run.isFinished) {
        await this.o.taskManager
          .announceMetadataOnly(started, req)
          .catch((e: Error) => this.o.log.warn({ taskId, err: e.message }, 'metadata-only announce failed'));
      }
      const toOutput = download.outputPath !== undefined && !download.range;
      const linked = toOutput ? await this.linkOutput(taskId, download) : false;

      const { task, interested } = started;
      await write(call, {
        ...ids,
        downloadTaskStartedResponse: {
          contentLength: task.contentLength,
          range: download.range,
          responseHeader: task.responseHeader,
          pieces: interested.map((p) => {
            const done = started!.run.finished.get(p.number);
            return done
              ? pieceMessage(done, undefined)
              : { ...p, digest: '', cost: undefined, createdAt: undefined };
          }),
          isFinished: started.run.isFinished,
        },
      });

      // Missing pieces come from parents (P2P flow) or the source, as TaskManager decides for the run.
      for await (const { piece, local } of this.o.taskManager.pieces(started, req, abort.signal)) {
        const content = download.needPieceContent
          ? await this.o.taskManager.storage.content.readPieceBuffer(taskId, piece.offset, piece.length)
          : undefined;
        if (local) this.o.metrics.downloadTraffic('LOCAL_PEER', piece.length);
        await write(call, {
          ...ids,
          downloadPieceFinishedResponse: {
            piece: pieceMessage(piece, local ? TrafficType.LOCAL_PEER : piece.trafficType, content),
          },
        });
      }
      this.o.taskManager.finishIfComplete(started);

      if (toOutput) {
        if (!linked) await this.copyOutput(taskId, download);
        if (download.digest) await verifyFileDigest(download.outputPath!, download.digest);
      }
      this.o.metrics.downloadTaskFinished(
        labels,
        download.range?.length ?? task.contentLength,
        performance.now() - t0,
      );
      call.end();
    } catch (e) {
      if (labels) this.o.metrics.downloadTaskFailed(labels);
      const err = toGrpcError(e);
      if (started && !abort.signal.aborted) this.o.taskManager.failTask(taskId);
      this.o.log.warn({ taskId, err: err.message }, 'download task failed');
      // grpc-js sends a streaming call's status when the call emits 'error'.
      if (!call.cancelled) call.emit('error', err);
    } finally {
      started?.release();
      call.off('cancelled', onCancel);
    }
  }

  /**
   * Hard-links the content file to the output path at start, as upstream. Returns false when the link failed
   * and a copy at the end should replace it; with force_hard_link the failure is the answer.
   */
  private async linkOutput(taskId: string, d: Download): Promise<boolean> {
    const content = this.o.taskManager.storage.content;
    try {
      await content.hardLinkTask(taskId, d.outputPath!);
      return true;
    } catch (e) {
      if (d.forceHardLink) {
        throw new DfError(
          'INVALID_ARGUMENT',
          `cannot hard link to ${d.outputPath} (--force-hard-link): ${(e as Error).message}`,
          { cause: e },
        );
      }
      this.o.log.info(
        { taskId, output: d.outputPath, err: (e as Error).message },
        'hard link failed; will copy',
      );
      return false;
    }
  }

  /** Copies the finished content to the output path; an existing other file is replaced only with overwrite. */
  private async copyOutput(taskId: string, d: Download): Promise<void> {
    const content = this.o.taskManager.storage.content;
    const out = d.outputPath!;
    const existing = await stat(out).catch(() => undefined);
    if (existing) {
      if (existing.isDirectory()) throw new DfError('INVALID_ARGUMENT', `output path ${out} is a directory`);
      if (await content.isSameFile(taskId, out)) return;
      if (!d.overwrite) throw new DfError('ALREADY_EXISTS', `output path ${out} already exists`);
    }
    await content.copyTask(taskId, out);
  }

  private async statTask(req: StatTaskRequest): Promise<Task> {
    const storage = this.o.taskManager.storage;
    const task = storage.getTask(req.taskId);
    if (!task) throw new DfError('TASK_NOT_FOUND', `task ${req.taskId} not found`);
    const pieces = storage.listPieces(req.taskId);
    const contentLength = task.contentLength ?? 0;
    const pieceCount = task.pieceLength ? countPieces(contentLength, task.pieceLength) : 0;
    return {
      id: task.id,
      type: TaskType.STANDARD,
      url: '',
      filteredQueryParams: [],
      requestHeader: {},
      contentLength,
      pieceCount,
      sizeScope: contentLength === 0 ? 3 : contentLength <= 128 ? 2 : pieceCount === 1 ? 1 : 0,
      pieces: pieces.map((p) => pieceMessage(p, p.trafficType)),
      state: localTaskState(task, this.o.taskManager.activeRun(task.id) !== undefined),
      peerCount: 1,
      hasAvailablePeer: !!task.finishedAt,
      createdAt: task.createdAt,
      updatedAt: task.updatedAt,
    };
  }

  private async deleteTask(req: DeleteTaskRequest): Promise<Empty> {
    await this.o.taskManager.deleteTask(req.taskId);
    this.o.log.info({ taskId: req.taskId }, 'task deleted');
    return {};
  }

  private async listTaskEntries(req: ListTaskEntriesRequest): Promise<ListTaskEntriesResponse> {
    let scheme: string;
    try {
      scheme = new URL(req.url).protocol.slice(0, -1);
    } catch {
      throw new DfError('INVALID_ARGUMENT', `url "${req.url}" is not a valid URL`);
    }
    if (unsupportedDownloadDirectory(scheme)) {
      throw new DfError(
        'INVALID_ARGUMENT',
        `listing entries is unsupported for ${scheme}: directory downloads need a scheme with directories (s3, gs, hdfs, hf, ...)`,
      );
    }
    throw new DfError('BACKEND_UNSUPPORTED', `unsupported scheme "${scheme}"`);
  }
}
