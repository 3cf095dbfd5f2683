// DownloadPersistentTask (dfstore export, and a replica the scheduler places), after resource/persistent_task.rs
// `download`: the same flow as a dfcache export (PersistentExporter), but the task is named by its object, and
// the object store is there for what no peer has. The task is planned from the scheduler's StatPersistentTask;
// a task the scheduler does not know (imported under another scheduler, or before its restart) is planned from
// the object's length, and all of it comes from the store. Piece length follows the content length on every peer
// alike (calculatePieceLength), as upstream: the importer's pieces are the exporter's.

import type { Caller } from '../../core/caller.js';
import { durationToMs } from '../../core/duration.js';
import { DfError, isDfError } from '../../core/errors.js';
import { DEFAULT_PERSISTENT_REPLICA_COUNT } from '../../core/persistent-cache.js';
import { persistentTaskIdOf } from '../../core/persistent-task.js';
import { calculatePieceLength, pieceCount } from '../../core/piece.js';
import type { PersistentTask } from '../../gen/common.js';
import type { DownloadPersistentTaskRequest, DownloadPersistentTaskResponse } from '../../gen/dfdaemon.js';
import type { SchedulerClient } from '../../gen/scheduler.js';
import { unaryCall } from '../../grpc/unary-call.js';
import { SCHEDULER_REQUEST_TIMEOUT_MS } from '../../scheduler/channel-options.js';
import type { NewPersistentCacheTask } from '../../storage/persistent-cache-metadata.js';
import {
  PersistentExporter,
  type ExportDeps,
  type ExportKind,
  type ExportMessage,
} from '../persistent-cache/export.js';
import { persistentFlavour } from '../persistent-cache/flavours.js';
import type { ObjectStore } from './object-store.js';

/** common.v2.TrafficType.BACK_TO_SOURCE */
const BACK_TO_SOURCE = 0;

export interface PersistentTaskExportDeps extends ExportDeps {
  objects: ObjectStore;
}

export type PersistentTaskResponseWriter = (msg: DownloadPersistentTaskResponse) => Promise<void>;

export class PersistentTaskExporter extends PersistentExporter {
  constructor(private readonly t: PersistentTaskExportDeps) {
    super(t);
  }

  /** The task as the scheduler knows it; TASK_NOT_FOUND when it knows none (or there is no scheduler). */
  async stat(taskId: string, scheduler = this.t.schedulerFor(taskId)): Promise<PersistentTask> {
    if (!scheduler) throw new DfError('TASK_NOT_FOUND', `persistent task ${taskId} not found`);
    return unaryCall(
      scheduler.statPersistentTask.bind(scheduler),
      { hostId: this.t.host().id, taskId },
      SCHEDULER_REQUEST_TIMEOUT_MS,
      `persistent task ${taskId}`,
    ).catch((e: DfError) => {
      throw e.code === 'TASK_NOT_FOUND'
        ? new DfError('TASK_NOT_FOUND', `persistent task ${taskId} not found`)
        : e;
    });
  }

  async download(
    req: DownloadPersistentTaskRequest,
    caller: Caller,
    write: PersistentTaskResponseWriter,
    signal: AbortSignal,
  ): Promise<void> {
    const taskId = persistentTaskIdOf(req.url, req.objectStorage);
    // A replica the scheduler places reaches the object store on its behalf: the source policy applies.
    const remoteCaller = caller.kind === 'remote';
    let plan: NewPersistentCacheTask | undefined;
    const kind: ExportKind = {
      noun: 'persistent task',
      plan: async (scheduler, sig) => (plan = await this.plan(taskId, req, scheduler, sig, remoteCaller)),
      flavour: () =>
        persistentFlavour({
          url: req.url,
          objectStorage: req.objectStorage,
          persistent: req.persistent,
          outputPath: req.outputPath,
          concurrentPieceCount: this.t.p2p?.concurrentPieceCount ?? 1,
          pieceCount: plan!.pieceCount,
          fromSource: async (span, sig) => {
            const got = await this.t.objects.piece(
              taskId,
              req.url,
              req.objectStorage,
              span,
              sig,
              remoteCaller,
            );
            return this.t.store.writePiece(taskId, span, got.body, {
              parentId: '',
              expectedDigest: '',
              trafficType: BACK_TO_SOURCE,
            });
          },
        }),
    };
    await this.run(
      { ...req, taskId },
      kind,
      caller,
      (ids, msg) => write({ ...ids, ...persistentMessage(msg) }),
      signal,
    );
  }

  private async plan(
    taskId: string,
    req: DownloadPersistentTaskRequest,
    scheduler: SchedulerClient | undefined,
    signal: AbortSignal,
    remoteCaller: boolean,
  ): Promise<NewPersistentCacheTask & { sourceOnly: boolean }> {
    let task: PersistentTask | undefined;
    try {
      task = scheduler ? await this.stat(taskId, scheduler) : undefined;
    } catch (e) {
      if (!isDfError(e) || e.code !== 'TASK_NOT_FOUND') throw e;
    }
    const contentLength =
      task?.contentLength ??
      (await this.t.objects.contentLength(taskId, req.url, req.objectStorage, signal, remoteCaller));
    const pieceLength = calculatePieceLength(contentLength);
    return {
      id: taskId,
      persistent: req.persistent,
      persistentReplicaCount: task?.persistentReplicaCount ?? DEFAULT_PERSISTENT_REPLICA_COUNT,
      pieceLength,
      contentLength,
      pieceCount: pieceCount(contentLength, pieceLength),
      ttlMs: task?.ttl ? durationToMs(task.ttl) : this.t.defaultTtlMs,
      createdAt: task?.createdAt,
      sourceOnly: task === undefined,
    };
  }
}

function persistentMessage(msg: ExportMessage): Partial<DownloadPersistentTaskResponse> {
  return 'started' in msg
    ? { downloadPersistentTaskStartedResponse: msg.started }
    : { downloadPieceFinishedResponse: { piece: msg.piece } };
}
