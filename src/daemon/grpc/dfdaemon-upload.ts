// dfdaemon.v2.DfdaemonUpload on upload.server.{ip,port}: what other peers and the scheduler call
// (grpc/dfdaemon_upload.rs). SyncPieces tells a child which pieces this peer has (and, while our own download of
// the task runs, each piece as it finishes); SyncHost streams our upload load so children can weigh parents;
// DownloadTask is how a scheduler triggers a seed peer. Piece bytes go over Vortex, not gRPC.

import { once } from 'node:events';
import {
  type sendUnaryData,
  type ServerUnaryCall,
  type ServerWritableStream,
  type UntypedHandleCall,
} from '@grpc/grpc-js';
import { DfError } from '../../core/errors.js';
import type { Host } from '../../gen/common.js';
import {
  DfdaemonUploadService,
  type DownloadTaskRequest,
  type DownloadTaskResponse,
  type SyncHostRequest,
  type SyncPiecesRequest,
  type SyncPiecesResponse,
} from '../../gen/dfdaemon.js';
import type { PieceSpan } from '../../storage/arriving-pieces.js';
import type { PieceRecord } from '../../storage/storage.js';
import type { SuperSeeding } from '../super-seeding.js';
import type { TaskRun } from '../task-run.js';
import type { TaskManager } from '../task-manager.js';
import type { DfdaemonDownloadServiceImpl } from './dfdaemon-download.js';
import { toGrpcError, unimplementedHandlers } from './status.js';
import type { UploadCallers } from './upload-callers.js';

export interface UploadServiceOptions {
  taskManager: TaskManager;
  /** The download service: DownloadTask, StatTask and DeleteTask behave the same on both servers. */
  download: DfdaemonDownloadServiceImpl;
  /** Where our Vortex piece server listens, as advertised in SyncPiecesResponse. */
  pieceServer: () => { ip: string; tcpPort?: number; quicPort?: number };
  /** Announcement control while our own download of a task runs (seed peers); absent: announce everything. */
  superSeeding?: SuperSeeding;
  /** Our host as children should see it in SyncHost (upload load included). */
  host: () => Host;
  /** Who may call DownloadTask and DeleteTask here (the trusted schedulers, mTLS clients). */
  callers: UploadCallers;
  log: {
    info(o: object, m: string): void;
    warn(o: object, m: string): void;
    debug(o: object, m: string): void;
  };
}

/** How often SyncHost sends our host (upstream sends on an interval until the child goes away). */
const SYNC_HOST_INTERVAL_MS = 1000;

export class DfdaemonUploadServiceImpl {
  private readonly o: UploadServiceOptions;

  constructor(options: UploadServiceOptions) {
    this.o = options;
  }

  handlers(): Record<string, UntypedHandleCall> {
    const handlers = unimplementedHandlers(DfdaemonUploadService);
    const dl = this.o.download.handlers();
    handlers.statTask = dl.statTask!;
    // Deleting a task (and aborting its downloads) is for the schedulers this peer trusts. So is StatLocalTask:
    // the Go scheduler's get_task job (the manager's "which peers have this task") asks every host with it on the
    // upload port (scheduler/job/job.go GetTask); it tells what we store of a task, origin response headers
    // included, which other peers never need.
    handlers.deleteTask = this.fromSchedulers('DeleteTask', dl.deleteTask!);
    handlers.statLocalTask = this.fromSchedulers('StatLocalTask', dl.statLocalTask!);
    handlers.downloadTask = (call: ServerWritableStream<DownloadTaskRequest, DownloadTaskResponse>) => {
      try {
        this.o.callers.check(call, 'DownloadTask');
      } catch (e) {
        this.o.log.warn({ caller: call.getPeer(), url: call.request.download?.url }, (e as Error).message);
        call.emit('error', toGrpcError(e));
        return;
      }
      // A scheduler triggering a seed (or a preheat): no output path, no piece content to the caller, and the
      // download is on a remote's behalf (its source must be an address remote callers may reach).
      const d = call.request.download;
      if (d) {
        d.outputPath = undefined;
        d.needPieceContent = false;
      }
      void this.o.download.downloadTask(call, true);
    };
    handlers.syncPieces = (call: ServerWritableStream<SyncPiecesRequest, SyncPiecesResponse>) =>
      void this.syncPieces(call);
    handlers.syncHost = (call: ServerWritableStream<SyncHostRequest, Host>) => void this.syncHost(call);
    return handlers;
  }

  /** A unary handler of the download service, answered on the upload port only to the schedulers we trust. */
  private fromSchedulers(rpc: string, handler: UntypedHandleCall): UntypedHandleCall {
    type Unary = (call: ServerUnaryCall<{ taskId?: string }, unknown>, cb: sendUnaryData<unknown>) => void;
    return ((call: ServerUnaryCall<{ taskId?: string }, unknown>, cb: sendUnaryData<unknown>) => {
      try {
        this.o.callers.check(call, rpc);
      } catch (e) {
        this.o.log.warn({ caller: call.getPeer(), taskId: call.request.taskId }, (e as Error).message);
        cb(toGrpcError(e));
        return;
      }
      (handler as Unary)(call, cb);
    }) as UntypedHandleCall;
  }

  /**
   * Streams the interested pieces we have, then each one as our own download finishes it (with cut-through: as it
   * starts arriving from a parent), until every interested piece was sent or our run of the task ends. An unknown
   * task is NOT_FOUND, as upstream.
   */
  async syncPieces(call: ServerWritableStream<SyncPiecesRequest, SyncPiecesResponse>): Promise<void> {
    const { taskId, interestedPieceNumbers } = call.request;
    const storage = this.o.taskManager.storage;
    const cleanups: Array<() => void> = [];
    try {
      const task = storage.getTask(taskId);
      if (!task) throw new DfError('TASK_NOT_FOUND', `task ${taskId} not found`);
      const where = this.o.pieceServer();
      const wanted = new Set(interestedPieceNumbers);
      const send = async (p: PieceSpan): Promise<void> => {
        if (!wanted.delete(p.number)) return;
        const msg: SyncPiecesResponse = {
          number: p.number,
          offset: p.offset,
          length: p.length,
          ip: where.ip,
          tcpPort: where.tcpPort,
          quicPort: where.quicPort,
        };
        if (!call.write(msg)) await once(call, 'drain');
      };

      // Subscribe before reading storage, so a piece finishing in between is not missed (send() dedups).
      const run = this.o.taskManager.activeRun(taskId);
      const queue: PieceSpan[] = [];
      let wake: (() => void) | undefined;
      let ended = !run;
      const push = (p: PieceSpan): void => {
        queue.push(p);
        wake?.();
      };
      const gated = run && !run.isFinished && this.o.superSeeding;
      if (run) {
        cleanups.push(
          run.onEnd(() => {
            // A gated stream outlives a finished run: its pieces are still being released (super-seeding.ts).
            if (gated && run.isFinished) return;
            ended = true;
            wake?.();
          }),
        );
      }
      if (gated) {
        cleanups.push(this.announceGated(taskId, run, wanted, push));
      } else {
        if (run) cleanups.push(run.subscribe((ev) => ev.piece && push(ev.piece)));
        // Cut-through (storage.server.cutThrough): a piece is announced once it starts arriving from a parent, as
        // it can be relayed from then on (arriving-pieces.ts); send() announces each piece once.
        cleanups.push(storage.arriving.subscribe(taskId, push));
        for (const p of storage.arriving.list(taskId)) if (wanted.has(p.number)) push(p);
        for (const p of storage.listPieces(taskId)) if (wanted.has(p.number)) push(p);
      }
      const onCancel = () => {
        ended = true;
        wake?.();
      };
      call.on('cancelled', onCancel);
      cleanups.push(() => call.off('cancelled', onCancel));

      while (wanted.size > 0 && !call.cancelled) {
        while (queue.length > 0) await send(queue.shift()!);
        if (wanted.size === 0 || ended) break;
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
      }
      if (!call.cancelled) call.end();
    } catch (e) {
      if (!call.cancelled) call.emit('error', toGrpcError(e));
    } finally {
      for (const c of cleanups) c();
    }
  }

  /**
   * SyncPieces on a seed whose own download of the task runs: the task's announcements (super-seeding.ts) decide
   * when this child hears of each piece. The first child's stream feeds them the run's pieces until it ends.
   */
  private announceGated(
    taskId: string,
    run: TaskRun,
    wanted: ReadonlySet<number>,
    push: (p: PieceRecord) => void,
  ): () => void {
    const superSeeding = this.o.superSeeding!;
    const { announcements, created } = superSeeding.forTask(taskId);
    if (created) {
      const unsubscribe = run.subscribe((ev) => ev.piece && announcements.stored(ev.piece));
      const unEnd = run.onEnd(() => {
        unsubscribe();
        unEnd();
        if (!run.isFinished) announcements.abandoned();
        superSeeding.runEnded(taskId);
      });
    }
    return superSeeding.addChild(
      taskId,
      { interested: wanted, announce: push },
      this.o.taskManager.storage.listPieces(taskId),
    );
  }

  /** Sends our host (with its upload load) every second until the child cancels. */
  async syncHost(call: ServerWritableStream<SyncHostRequest, Host>): Promise<void> {
    const timer: NodeJS.Timeout = setInterval(() => tick(), SYNC_HOST_INTERVAL_MS);
    timer.unref();
    const stop = () => clearInterval(timer);
    call.on('cancelled', stop);
    call.on('error', stop);
    const tick = () => {
      if (call.cancelled) return stop();
      try {
        call.write(this.o.host());
      } catch (e) {
        stop();
        call.emit('error', toGrpcError(e));
      }
    };
    tick();
  }
}
