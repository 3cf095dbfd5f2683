// DfdaemonDownload.UploadPersistentTask (dfstore import), after resource/persistent_task.rs `upload`: the task is
// named by its object (core/persistent-task.ts); an object already in the store is ALREADY_EXISTS (as upstream:
// dfstore never overwrites); the scheduler is told UploadPersistentTaskStarted; then the file goes into storage
// (hard link or copy, as a dfcache import: PersistentCacheStore.stage) and, at the same time, into the object
// store (Backend.put: backend.putChunkSize parts, backend.putConcurrentChunkCount of them in flight); then
// Finished (the scheduler places the replicas) or Failed.

import type { Caller } from '../../core/caller.js';
import { durationToMs, msToDuration } from '../../core/duration.js';
import { DfError, toDfError } from '../../core/errors.js';
import { checkPersistentCacheTtl, checkPersistentReplicaCount } from '../../core/persistent-cache.js';
import { persistentTaskIdOf } from '../../core/persistent-task.js';
import { calculatePieceLength, pieceCount } from '../../core/piece.js';
import type { PersistentTask } from '../../gen/common.js';
import type { UploadPersistentTaskRequest } from '../../gen/dfdaemon.js';
import type { SchedulerClient } from '../../gen/scheduler.js';
import { unaryCall } from '../../grpc/unary-call.js';
import { SCHEDULER_REQUEST_TIMEOUT_MS } from '../../scheduler/channel-options.js';
import type { StagedImport } from '../../storage/persistent-cache-store.js';
import { checkImportSource } from '../persistent-cache/import-source.js';
import type { PeerIdFactory, PersistentCacheDeps } from '../persistent-cache/import.js';
import { localTaskMessage } from '../persistent-cache/messages.js';
import type { ObjectStore } from './object-store.js';

type Ids = { hostId: string; taskId: string; peerId: string };

export interface PersistentTaskDeps extends PersistentCacheDeps {
  objects: ObjectStore;
}

export class PersistentTaskImporter {
  constructor(
    private readonly d: PersistentTaskDeps,
    private readonly newPeerId: PeerIdFactory,
  ) {}

  async upload(
    req: UploadPersistentTaskRequest,
    caller: Caller,
    signal?: AbortSignal,
  ): Promise<PersistentTask> {
    const taskId = persistentTaskIdOf(req.url, req.objectStorage);
    checkPersistentReplicaCount(req.persistentReplicaCount);
    const ttlMs = req.ttl ? durationToMs(req.ttl) : this.d.defaultTtlMs;
    checkPersistentCacheTtl(ttlMs);
    const source = await checkImportSource(req.path, caller);
    if (await this.d.objects.exists(taskId, req.url, req.objectStorage, signal)) {
      throw new DfError(
        'ALREADY_EXISTS',
        `persistent task ${taskId} already exists: ${req.url} is in the store`,
      );
    }
    const existing = await this.d.store.get(taskId);
    if (existing) await this.d.store.delete(taskId);
    const pieceLength = calculatePieceLength(source.size);
    const ids: Ids = { hostId: this.d.host().id, taskId, peerId: this.newPeerId() };
    const scheduler = this.d.schedulerFor(taskId);
    if (scheduler) {
      await unaryCall(
        scheduler.uploadPersistentTaskStarted.bind(scheduler),
        {
          ...ids,
          url: req.url,
          objectStorage: req.objectStorage,
          persistentReplicaCount: req.persistentReplicaCount,
          contentLength: source.size,
          pieceCount: pieceCount(source.size, pieceLength),
          ttl: msToDuration(ttlMs),
        },
        SCHEDULER_REQUEST_TIMEOUT_MS,
        'the scheduler refused the import (UploadPersistentTaskStarted)',
      );
    }
    let staged: StagedImport | undefined;
    try {
      // Both copies at once, as upstream (try_join of upload_content_to_local and _to_source). Settled both, so a
      // staged file is removed when the put failed; an object written while staging failed stays (as upstream).
      const [stagedResult, putResult] = await Promise.allSettled([
        this.d.store.stage({ path: req.path, pieceLength, taskId, idFields: {}, signal }),
        this.d.objects.put(taskId, req.url, req.path, req.objectStorage, signal),
      ]);
      if (stagedResult.status === 'fulfilled') staged = stagedResult.value;
      if (putResult.status === 'rejected') throw putResult.reason;
      if (stagedResult.status === 'rejected') throw stagedResult.reason;
      const local = staged!;
      const record = await this.d.store.commit(local, {
        persistent: true,
        persistentReplicaCount: req.persistentReplicaCount,
        ttlMs,
      });
      staged = undefined;
      this.d.log.info(
        { taskId, mode: local.mode, contentLength: local.contentLength, pieceLength },
        'persistent task imported',
      );
      if (!scheduler)
        return taskMessage(localTaskMessage(record, { currentReplicas: 1, state: 'Succeeded' }));
      const task = await unaryCall(
        scheduler.uploadPersistentTaskFinished.bind(scheduler),
        ids,
        SCHEDULER_REQUEST_TIMEOUT_MS,
        'the scheduler did not take the import (UploadPersistentTaskFinished)',
      );
      return { ...task, ttl: msToDuration(ttlMs) };
    } catch (e) {
      if (staged) await this.d.store.discard(staged);
      await this.d.store.delete(taskId).catch(() => undefined);
      if (scheduler) await this.failed(scheduler, ids, e);
      throw toDfError(e);
    }
  }

  private async failed(scheduler: SchedulerClient, ids: Ids, cause: unknown): Promise<void> {
    await unaryCall(
      scheduler.uploadPersistentTaskFailed.bind(scheduler),
      { ...ids, description: (cause as Error).message },
      SCHEDULER_REQUEST_TIMEOUT_MS,
      'UploadPersistentTaskFailed',
    ).catch((e: Error) =>
      this.d.log.warn({ taskId: ids.taskId, err: e.message }, 'could not tell the scheduler'),
    );
  }
}

/** A persistent cache task message as a persistent task's (no tag, application or piece length). */
export function taskMessage(t: ReturnType<typeof localTaskMessage>): PersistentTask {
  return {
    id: t.id,
    persistentReplicaCount: t.persistentReplicaCount,
    currentPersistentReplicaCount: t.currentPersistentReplicaCount,
    currentReplicaCount: t.currentReplicaCount,
    contentLength: t.contentLength,
    pieceCount: t.pieceCount,
    state: t.state,
    ttl: t.ttl,
    createdAt: t.createdAt,
    updatedAt: t.updatedAt,
  };
}
