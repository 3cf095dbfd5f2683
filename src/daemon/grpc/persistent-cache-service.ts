// The persistent cache RPCs of both dfdaemon services (grpc/dfdaemon_download.rs, dfdaemon_upload.rs):
// - DfdaemonDownload on the unix socket: UploadPersistentCacheTask (dfcache import), DownloadPersistentCacheTask
//   (dfcache export), StatPersistentCacheTask, StatLocalPersistentCacheTask, ListLocalPersistentCacheTasks.
// - DfdaemonUpload on the upload port: DownloadPersistentCacheTask (the scheduler placing a replica),
//   SyncPersistentCachePieces (a child learning our pieces), Update/Stat/DeletePersistentCacheTask.
// - DfdaemonUpload.DeletePersistentCacheTask on the unix socket too (ours: DfdaemonDownload has no delete for these
//   tasks): `dfcache rm` there deletes the task everywhere through the scheduler, and here.

import { once } from 'node:events';
import type { sendUnaryData, ServerUnaryCall, ServerWritableStream, UntypedHandleCall } from '@grpc/grpc-js';
import type { Caller } from '../../core/caller.js';
import { DfError } from '../../core/errors.js';
import { TaskType, type PersistentCacheTask } from '../../gen/common.js';
import type {
  DeletePersistentCacheTaskRequest,
  DownloadPersistentCacheTaskRequest,
  DownloadPersistentCacheTaskResponse,
  ListLocalPersistentCacheTasksResponse,
  StatLocalPersistentCacheTaskRequest,
  StatLocalPersistentCacheTaskResponse,
  StatPersistentCacheTaskRequest,
  SyncPersistentCachePiecesRequest,
  SyncPersistentCachePiecesResponse,
  UpdatePersistentCacheTaskRequest,
  UploadPersistentCacheTaskRequest,
} from '../../gen/dfdaemon.js';
import type { Empty } from '../../gen/google/protobuf/empty.js';
import { unaryCall } from '../../grpc/unary-call.js';
import { SCHEDULER_REQUEST_TIMEOUT_MS } from '../../scheduler/channel-options.js';
import type { PersistentCacheExporter } from '../persistent-cache/export.js';
import type { PersistentCacheDeps, PersistentCacheImporter } from '../persistent-cache/import.js';
import { localTaskMessage, statLocalResponse } from '../persistent-cache/messages.js';
import type { PersistentCacheTaskRecord } from '../../storage/persistent-cache-store.js';
import { checkTaskId, toGrpcError } from './status.js';
import type { UploadCallers } from './upload-callers.js';

/** How often SyncPersistentCachePieces looks for pieces a running download of ours stored since. */
const SYNC_POLL_MS = 100;

export interface PersistentServiceOptions extends PersistentCacheDeps {
  /** Who is calling over the unix socket (see DfdaemonDownloadServiceImpl.callerOf). */
  callerOf: (peer: string) => Promise<Caller>;
  /** Who may call the scheduler-only RPCs on the upload port. */
  callers: UploadCallers;
  /** Where our Vortex server listens, as SyncPersistentCachePiecesResponse names it. */
  pieceServer: () => { ip: string; tcpPort?: number; quicPort?: number };
  metrics: { request(family: string, type: number, failed?: boolean): void };
}

export interface PersistentCacheServiceOptions extends PersistentServiceOptions {
  importer: PersistentCacheImporter;
  exporter: PersistentCacheExporter;
}

type Unary<Req, Res> = (call: ServerUnaryCall<Req, Res>, cb: sendUnaryData<Res>) => void;

/**
 * What the persistent cache RPCs (dfcache) and the persistent RPCs (dfstore, persistent-task-service.ts) share:
 * metrics and errors of a unary call, the scheduler-only guard, the local task, SyncPieces, and a download stream.
 */
export class PersistentServiceBase<O extends PersistentServiceOptions> {
  constructor(
    protected readonly o: O,
    /** common.v2.TaskType of the tasks served, for metrics. */
    private readonly taskType: TaskType,
    /** "persistent cache task" / "persistent task", for messages. */
    protected readonly noun: string,
  ) {}

  protected unary<Req, Res>(
    family: string,
    f: (req: Req, call: ServerUnaryCall<Req, Res>) => Promise<Res>,
  ): Unary<Req, Res> {
    return (call, cb) => {
      f(call.request, call).then(
        (r) => {
          this.o.metrics.request(family, this.taskType);
          cb(null, r);
        },
        (e: unknown) => {
          this.o.metrics.request(family, this.taskType, true);
          this.o.log.info({ family, err: (e as Error).message }, `${this.noun} request failed`);
          cb(toGrpcError(e));
        },
      );
    };
  }

  /** A unary handler only the schedulers we trust may call (on the upload port). */
  protected fromSchedulers<Req, Res>(rpc: string, h: Unary<Req, Res>): Unary<Req, Res> {
    return (call, cb) => {
      try {
        this.o.callers.check(call, rpc);
      } catch (e) {
        this.o.log.warn({ caller: call.getPeer() }, (e as Error).message);
        cb(toGrpcError(e));
        return;
      }
      h(call, cb);
    };
  }

  protected async local(taskId: string) {
    checkTaskId(taskId);
    const t = await this.o.store.get(taskId);
    if (!t) throw new DfError('TASK_NOT_FOUND', `${this.noun} ${taskId} not found`);
    return t;
  }

  /**
   * A download stream (an export on the socket, a replica the scheduler places on the upload port): `run` writes
   * its messages; failures end the stream with their status.
   */
  protected async stream<Req extends { outputPath?: string; needPieceContent: boolean }, Res>(
    call: ServerWritableStream<Req, Res>,
    fromScheduler: boolean,
    family: string,
    run: (req: Req, caller: Caller, write: (msg: Res) => Promise<void>, signal: AbortSignal) => Promise<void>,
  ): Promise<void> {
    const abort = new AbortController();
    const onCancel = () => abort.abort(new DfError('CANCELLED', 'the client cancelled the export'));
    call.on('cancelled', onCancel);
    const req = call.request;
    try {
      if (fromScheduler) {
        // A replica: stored here, nothing written elsewhere, no bytes to the caller.
        req.outputPath = undefined;
        req.needPieceContent = false;
      }
      const caller: Caller = fromScheduler
        ? { kind: 'remote', via: 'the upload port' }
        : req.outputPath
          ? await this.o.callerOf(call.getPeer())
          : { kind: 'internal' };
      const write = async (msg: Res) => {
        if (!call.write(msg)) await once(call, 'drain');
      };
      await run(req, caller, write, abort.signal);
      this.o.metrics.request(family, this.taskType);
      call.end();
    } catch (e) {
      this.o.metrics.request(family, this.taskType, true);
      this.o.log.info({ err: (e as Error).message }, `${this.noun} export failed`);
      if (!call.cancelled) call.emit('error', toGrpcError(e));
    } finally {
      call.off('cancelled', onCancel);
    }
  }

  /** A stream only the schedulers we trust may open (DfdaemonUpload.Download*Task places a replica). */
  protected checkScheduler(call: ServerWritableStream<unknown, unknown>, rpc: string): boolean {
    try {
      this.o.callers.check(call, rpc);
      return true;
    } catch (e) {
      this.o.log.warn({ caller: call.getPeer() }, (e as Error).message);
      call.emit('error', toGrpcError(e));
      return false;
    }
  }

  /**
   * The upload-port RPCs on a replica stored here, named after the kind (`rpc` = `PersistentCacheTask` or
   * `PersistentTask`): Sync{kind's pieces}, and Update (only schedulers), Stat, Delete (only schedulers).
   */
  protected replicaHandlers<M>(
    rpc: 'PersistentCacheTask' | 'PersistentTask',
    message: (t: PersistentCacheTaskRecord) => M,
  ): Record<string, UntypedHandleCall> {
    const family = (verb: string) =>
      `${verb}_${rpc.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`).slice(1)}`;
    const sync = rpc === 'PersistentCacheTask' ? 'syncPersistentCachePieces' : 'syncPersistentPieces';
    return {
      [sync]: (
        call: ServerWritableStream<SyncPersistentCachePiecesRequest, SyncPersistentCachePiecesResponse>,
      ) => void this.syncPieces(call),
      [`update${rpc}`]: this.fromSchedulers(
        `Update${rpc}`,
        this.unary<UpdatePersistentCacheTaskRequest, Empty>(family('update'), async (req) => {
          await this.local(req.taskId);
          this.o.store.setPersistent(req.taskId, req.persistent);
          return {};
        }),
      ),
      [`stat${rpc}`]: this.unary<StatPersistentCacheTaskRequest, M>(family('stat'), async (req) =>
        message(await this.local(req.taskId)),
      ),
      [`delete${rpc}`]: this.fromSchedulers(
        `Delete${rpc}`,
        this.unary<DeletePersistentCacheTaskRequest, Empty>(family('delete'), async (req) => {
          await this.local(req.taskId);
          await this.o.store.delete(req.taskId);
          this.o.log.info({ taskId: req.taskId }, `${this.noun} deleted (scheduler)`);
          return {};
        }),
      ),
    };
  }

  /**
   * The interested pieces we hold, then those a running download of ours stores, until all were sent or the task
   * is finished, failed or gone here. NOT_FOUND for a task we do not have.
   */
  protected async syncPieces(
    call: ServerWritableStream<SyncPersistentCachePiecesRequest, SyncPersistentCachePiecesResponse>,
  ): Promise<void> {
    const { taskId, interestedPieceNumbers } = call.request;
    try {
      await this.local(taskId);
      const where = this.o.pieceServer();
      const wanted = new Set(interestedPieceNumbers);
      while (wanted.size > 0 && !call.cancelled) {
        for (const p of this.o.store.metadata.listPieces(taskId)) {
          if (!wanted.delete(p.number)) continue;
          const msg = {
            number: p.number,
            offset: p.offset,
            length: p.length,
            ip: where.ip,
            tcpPort: where.tcpPort,
          };
          if (!call.write(msg)) await once(call, 'drain');
        }
        const t = this.o.store.metadata.get(taskId);
        if (!t || t.finishedAt || t.failedAt) break;
        await new Promise((r) => setTimeout(r, SYNC_POLL_MS));
      }
      if (!call.cancelled) call.end();
    } catch (e) {
      if (!call.cancelled) call.emit('error', toGrpcError(e));
    }
  }
}

export class PersistentCacheService extends PersistentServiceBase<PersistentCacheServiceOptions> {
  constructor(o: PersistentCacheServiceOptions) {
    super(o, TaskType.PERSISTENT_CACHE, 'persistent cache task');
  }

  /** DfdaemonDownload handlers (the unix socket). */
  downloadHandlers(): Record<string, UntypedHandleCall> {
    return {
      uploadPersistentCacheTask: this.unary<UploadPersistentCacheTaskRequest, PersistentCacheTask>(
        'upload_persistent_cache_task',
        async (req, call) => this.o.importer.upload(req, await this.o.callerOf(call.getPeer())),
      ),
      downloadPersistentCacheTask: (
        call: ServerWritableStream<DownloadPersistentCacheTaskRequest, DownloadPersistentCacheTaskResponse>,
      ) => void this.download(call, false),
      statPersistentCacheTask: this.unary<StatPersistentCacheTaskRequest, PersistentCacheTask>(
        'stat_persistent_cache_task',
        (req) => (checkTaskId(req.taskId), this.o.exporter.stat(req.taskId)),
      ),
      statLocalPersistentCacheTask: this.unary<
        StatLocalPersistentCacheTaskRequest,
        StatLocalPersistentCacheTaskResponse
      >('stat_local_persistent_cache_task', async (req) => statLocalResponse(await this.local(req.taskId))),
      listLocalPersistentCacheTasks: this.unary<unknown, ListLocalPersistentCacheTasksResponse>(
        'list_local_persistent_cache_tasks',
        async () => ({ tasks: this.o.store.list().map(statLocalResponse) }),
      ),
    };
  }

  /** DfdaemonUpload handlers (the upload port). */
  uploadHandlers(): Record<string, UntypedHandleCall> {
    return {
      downloadPersistentCacheTask: (
        call: ServerWritableStream<DownloadPersistentCacheTaskRequest, DownloadPersistentCacheTaskResponse>,
      ) => {
        if (this.checkScheduler(call, 'DownloadPersistentCacheTask')) void this.download(call, true);
      },
      ...this.replicaHandlers('PersistentCacheTask', (t) => localTaskMessage(t, { currentReplicas: 1 })),
    };
  }

  /** DfdaemonUpload handlers served on the unix socket: delete everywhere. */
  socketUploadHandlers(): Record<string, UntypedHandleCall> {
    return {
      deletePersistentCacheTask: this.unary<DeletePersistentCacheTaskRequest, Empty>(
        'delete_persistent_cache_task',
        (req) => this.deleteEverywhere(req.taskId),
      ),
    };
  }

  /**
   * The scheduler forgets the task and tells every host holding it to delete its copy; then ours goes. Unknown to
   * both: NOT_FOUND.
   */
  private async deleteEverywhere(taskId: string): Promise<Empty> {
    checkTaskId(taskId);
    const scheduler = this.o.schedulerFor(taskId);
    let known = false;
    if (scheduler) {
      try {
        await unaryCall(
          scheduler.deletePersistentCacheTask.bind(scheduler),
          { hostId: this.o.host().id, taskId },
          SCHEDULER_REQUEST_TIMEOUT_MS,
          `delete persistent cache task ${taskId}`,
        );
        known = true;
      } catch (e) {
        if ((e as DfError).code !== 'TASK_NOT_FOUND') throw e;
      }
    }
    if (this.o.store.metadata.get(taskId)) {
      await this.o.store.delete(taskId);
      known = true;
    }
    if (!known) throw new DfError('TASK_NOT_FOUND', `persistent cache task ${taskId} not found`);
    this.o.log.info({ taskId }, 'persistent cache task deleted');
    return {};
  }

  private download(
    call: ServerWritableStream<DownloadPersistentCacheTaskRequest, DownloadPersistentCacheTaskResponse>,
    fromScheduler: boolean,
  ): Promise<void> {
    return this.stream(call, fromScheduler, 'download_persistent_cache_task', (req, caller, write, signal) =>
      this.o.exporter.download(req, caller, write, signal),
    );
  }
}
