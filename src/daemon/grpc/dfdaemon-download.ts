// dfdaemon.v2.DfdaemonDownload on the unix socket: what dfget (and the SDKs) call. The flow per DownloadTask
// follows grpc/dfdaemon_download.rs: started response, one piece-finished response per interested piece,
// then (for a whole-file download to an output path) copy-if-not-linked and digest verification.

import { once } from 'node:events';
import {
  type sendUnaryData,
  type ServerUnaryCall,
  type ServerWritableStream,
  type UntypedHandleCall,
} from '@grpc/grpc-js';
import type { Caller } from '../../core/caller.js';
import { DfError } from '../../core/errors.js';
import { hostId as makeHostId } from '../../core/ids.js';
import { pieceCount as countPieces } from '../../core/piece.js';
import { canListEntries, hubOptionsOf, unsupportedDownloadDirectory } from '../../backend/backend.js';
import type { BackendFactory } from '../../backend/factory.js';
import { TaskType, type Task } from '../../gen/common.js';
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
import { TrafficType } from '../piece-path.js';
import { LocalTasks, localTaskState } from './local-tasks.js';
import { checkTaskId, toGrpcError, unimplementedHandlers } from './status.js';
import { pieceMessage } from '../piece-message.js';
import {
  DownloadSession,
  DownloadSessions,
  MAX_TIMEOUT_MS,
  type DownloadSessionsOptions,
} from '../download-session.js';
import type { ContentReader } from '../../storage/content.js';
import { DEFAULTS } from '../../config/dfdaemon.js';
import { acceptsPieceChunks, PieceContentSender } from './piece-content.js';

export interface DownloadServiceOptions extends DownloadSessionsOptions {
  log: DownloadSessionsOptions['log'] & { error(o: object, m: string): void };
  /**
   * download.server.transferBufferSize: bytes of piece content on their way to need_piece_content clients, all
   * calls together (piece-content.ts). Default 8 MiB.
   */
  transferBufferSize?: number;
  /** storage.readBufferSize: the largest part of a piece in one message, for clients that take parts. */
  pieceChunkSize?: number;
  /** The backends, for ListTaskEntries (a directory download's listing). */
  backends: BackendFactory;
}

/** ListTaskEntries' bound when the request names no timeout (upstream's default backend request timeout). */
const DEFAULT_LIST_TIMEOUT_MS = 60_000;

/** download.server.transferBufferSize's default. */
export const DEFAULT_TRANSFER_BUFFER_SIZE = DEFAULTS['download.server.transferBufferSize'];
const DEFAULT_PIECE_CHUNK_SIZE = 512 * 1024;

async function write(call: ServerWritableStream<unknown, DownloadTaskResponse>, msg: DownloadTaskResponse) {
  if (!call.write(msg)) await once(call, 'drain');
}

export class DfdaemonDownloadServiceImpl {
  private readonly o: DownloadServiceOptions;
  hostId: string;
  private readonly local: LocalTasks;
  /** Shared with the HTTP proxy, so both count and finish downloads the same way. */
  readonly sessions: DownloadSessions;
  /** Pieces with their bytes to need_piece_content clients, within download.server.transferBufferSize. */
  readonly pieceContent: PieceContentSender;
  /**
   * Who is calling, from the call's peer (call.getPeer(): the unix socket listener names each connection). Set by
   * dfdaemon once the socket is bound; until then (and in tests that set nothing) callers are unidentified, so
   * no output path is written for them.
   */
  callerOf: (peer: string) => Promise<Caller> = () =>
    Promise.resolve({ kind: 'unidentified', why: 'no socket listener', via: 'the download socket' });

  constructor(options: DownloadServiceOptions) {
    this.o = options;
    const transferBufferSize = options.transferBufferSize ?? DEFAULT_TRANSFER_BUFFER_SIZE;
    if (!(transferBufferSize > 0)) {
      throw new DfError(
        'INVALID_CONFIG',
        `download.server.transferBufferSize: expected a size above 0 like "16MiB", got ${transferBufferSize}`,
      );
    }
    this.pieceContent = new PieceContentSender({
      capacity: transferBufferSize,
      chunkSize: options.pieceChunkSize ?? DEFAULT_PIECE_CHUNK_SIZE,
    });
    this.sessions = new DownloadSessions(options);
    this.local = new LocalTasks(options.taskManager, options.log);
    this.hostId = makeHostId(options.host.ip, options.host.hostname);
  }

  /** The announced host id (a seed peer's ends in `-seed`, and so do its peer ids). */
  setHostId(id: string): void {
    this.hostId = id;
    this.sessions.seed = id.endsWith('-seed');
  }

  /** The handlers, keyed as grpc-js expects; RPCs of later features answer UNIMPLEMENTED with their name. */
  handlers(): Record<string, UntypedHandleCall> {
    const handlers = unimplementedHandlers(DfdaemonDownloadService);
    handlers.downloadTask = (call: ServerWritableStream<DownloadTaskRequest, DownloadTaskResponse>) =>
      void this.downloadTask(call);
    handlers.statTask = (call: ServerUnaryCall<StatTaskRequest, Task>, cb: sendUnaryData<Task>) =>
      void this.unary('stat_task', () => (checkTaskId(call.request.taskId), this.statTask(call.request)), cb);
    handlers.deleteTask = (call: ServerUnaryCall<DeleteTaskRequest, Empty>, cb: sendUnaryData<Empty>) =>
      void this.unary(
        'delete_task',
        () => (checkTaskId(call.request.taskId), this.deleteTask(call.request)),
        cb,
      );
    handlers.listTaskEntries = (
      call: ServerUnaryCall<ListTaskEntriesRequest, ListTaskEntriesResponse>,
      cb: sendUnaryData<ListTaskEntriesResponse>,
    ) => void this.unary('list_task_entries', () => this.listTaskEntries(call.request), cb);
    handlers.statLocalTask = (
      call: ServerUnaryCall<StatLocalTaskRequest, StatLocalTaskResponse>,
      cb: sendUnaryData<StatLocalTaskResponse>,
    ) =>
      void this.unary(
        'stat_local_task',
        () => (checkTaskId(call.request.taskId), this.local.stat(call.request)),
        cb,
      );
    handlers.listLocalTasks = (
      _call: ServerUnaryCall<ListLocalTasksRequest, ListLocalTasksResponse>,
      cb: sendUnaryData<ListLocalTasksResponse>,
    ) => void this.unary('list_local_tasks', () => this.local.list(), cb);
    handlers.deleteLocalTask = (
      call: ServerUnaryCall<DeleteLocalTaskRequest, Empty>,
      cb: sendUnaryData<Empty>,
    ) =>
      void this.unary(
        'delete_local_task',
        () => (checkTaskId(call.request.taskId), this.local.delete(call.request)),
        cb,
      );
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
    let session: DownloadSession | undefined;
    let reader: ContentReader | undefined;
    try {
      if (!download) throw new DfError('INVALID_ARGUMENT', 'download is missing');
      const caller: Caller = fromScheduler
        ? { kind: 'remote', via: 'the upload port' }
        : download.outputPath !== undefined
          ? await this.callerOf(call.getPeer())
          : { kind: 'internal' };
      session = await this.sessions.open(download, abort.signal, caller, { remoteCaller: fromScheduler });
      const ids = { hostId: this.hostId, taskId: session.taskId, peerId: session.peerId };
      if (fromScheduler && session.isFinished) {
        await session
          .announceMetadataOnly()
          .catch((e: Error) =>
            this.o.log.warn({ taskId: ids.taskId, err: e.message }, 'metadata-only announce failed'),
          );
      }
      await session.linkOutput();

      const { task, interested } = session;
      await write(call, {
        ...ids,
        downloadTaskStartedResponse: {
          contentLength: task.contentLength,
          range: download.range,
          responseHeader: task.responseHeader,
          pieces: interested.map((p) => {
            const done = session!.finishedPiece(p.number);
            return done
              ? pieceMessage(done, undefined)
              : { ...p, digest: '', cost: undefined, createdAt: undefined };
          }),
          isFinished: session.isFinished,
        },
      });

      // Missing pieces come from parents (P2P flow) or the source, as TaskManager decides for the run. The next
      // piece is taken only once this one is written: nothing is read ahead of the client.
      const chunks = acceptsPieceChunks(call.metadata);
      for await (const { piece, local } of session.pieces()) {
        const trafficType = local ? TrafficType.LOCAL_PEER : piece.trafficType;
        if (download.needPieceContent && !fromScheduler) {
          reader ??= await this.o.taskManager.storage.content.openReader(ids.taskId);
          const message = pieceMessage(piece, trafficType);
          await this.pieceContent.send(call, ids, message, reader, chunks, abort.signal);
          continue;
        }
        await write(call, {
          ...ids,
          downloadPieceFinishedResponse: { piece: pieceMessage(piece, trafficType) },
        });
      }
      await session.complete();
      call.end();
    } catch (e) {
      const err = toGrpcError(e);
      if (session) session.fail(e);
      else this.o.log.warn({ err: err.message }, 'download task failed');
      // grpc-js sends a streaming call's status when the call emits 'error'.
      if (!call.cancelled) call.emit('error', err);
    } finally {
      await reader?.close().catch(() => undefined);
      session?.release();
      call.off('cancelled', onCancel);
    }
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
    const backend = this.o.backends.get(req.url);
    if (!canListEntries(backend)) {
      throw new DfError('INVALID_ARGUMENT', `the ${scheme} backend cannot list directories`);
    }
    const timeoutMs = req.timeout
      ? req.timeout.seconds * 1000 + req.timeout.nanos / 1e6
      : DEFAULT_LIST_TIMEOUT_MS;
    if (!(timeoutMs > 0 && timeoutMs <= MAX_TIMEOUT_MS)) {
      throw new DfError('INVALID_ARGUMENT', `timeout must be positive and at most ${MAX_TIMEOUT_MS / 1000}s`);
    }
    const entries = await backend.listEntries({
      taskId: req.taskId,
      url: req.url,
      requestHeader: req.requestHeader,
      objectStorage: req.objectStorage,
      hub: hubOptionsOf(req),
      hdfs: req.hdfs,
      timeoutMs,
    });
    this.o.log.info({ url: req.url, entries: entries.length }, 'task entries listed');
    return { contentLength: 0, responseHeader: {}, entries };
  }
}
