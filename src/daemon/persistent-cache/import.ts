// DfdaemonDownload.UploadPersistentCacheTask (dfcache import), after resource/persistent_cache_task.rs `upload`:
// the file goes into storage (hard link, else a copy piece by piece, with piece digests), the scheduler is told
// UploadPersistentCacheTaskStarted, then Finished (it then places the replicas), or Failed. Nothing already stored
// is lost on a failure: the import is staged under a temporary name and only a committed import has a record.

import type { Caller } from '../../core/caller.js';
import { durationToMs, msToDuration } from '../../core/duration.js';
import { DfError, toDfError } from '../../core/errors.js';
import { checkPersistentCacheTtl, checkPersistentReplicaCount } from '../../core/persistent-cache.js';
import { calculatePieceLength, pieceCount, validatePieceLength } from '../../core/piece.js';
import { taskIdFromContent } from '../../core/task-id.js';
import type { PersistentCacheTask } from '../../gen/common.js';
import type { UploadPersistentCacheTaskRequest } from '../../gen/dfdaemon.js';
import type { SchedulerClient } from '../../gen/scheduler.js';
import { unaryCall } from '../../grpc/unary-call.js';
import { SCHEDULER_REQUEST_TIMEOUT_MS } from '../../scheduler/channel-options.js';
import type { PersistentCacheStore, StagedImport } from '../../storage/persistent-cache-store.js';
import { checkImportSource } from './import-source.js';
import { localTaskMessage } from './messages.js';

export interface PersistentCacheHost {
  id: string;
  ip: string;
  hostname: string;
}

export interface PersistentCacheDeps {
  store: PersistentCacheStore;
  /** The scheduler of a task (consistent hash), or undefined when this daemon has none. */
  schedulerFor: (taskId: string) => SchedulerClient | undefined;
  host: () => PersistentCacheHost;
  /** gc.policy.persistentCacheTaskTTL: the TTL of an import that names none. */
  defaultTtlMs: number;
  log: {
    info(o: object, m: string): void;
    warn(o: object, m: string): void;
    debug(o: object, m: string): void;
  };
}

/** The import's peer id: `{ip}-{hostname}-{uuid}` like every peer id (core/ids.ts). */
export type PeerIdFactory = () => string;

export class PersistentCacheImporter {
  constructor(
    private readonly d: PersistentCacheDeps,
    private readonly newPeerId: PeerIdFactory,
  ) {}

  async upload(
    req: UploadPersistentCacheTaskRequest,
    caller: Caller,
    signal?: AbortSignal,
  ): Promise<PersistentCacheTask> {
    checkPersistentReplicaCount(req.persistentReplicaCount);
    const ttlMs = req.ttl ? durationToMs(req.ttl) : this.d.defaultTtlMs;
    checkPersistentCacheTtl(ttlMs);
    if (req.pieceLength !== undefined) validatePieceLength(req.pieceLength);
    const source = await checkImportSource(req.path, caller);
    const pieceLength = req.pieceLength ?? calculatePieceLength(source.size);

    const staged = await this.d.store.stage({
      path: req.path,
      pieceLength,
      taskId:
        req.contentForCalculatingTaskId !== undefined
          ? taskIdFromContent(req.contentForCalculatingTaskId)
          : undefined,
      // Upstream hashes the request's piece length (not the computed one), as for URL task ids.
      idFields: { tag: req.tag, application: req.application, pieceLength: req.pieceLength },
      signal,
    });
    const taskId = staged.taskId;
    const existing = await this.d.store.get(taskId);
    if (existing?.finishedAt) {
      await this.d.store.discard(staged);
      throw new DfError('ALREADY_EXISTS', `persistent cache task ${taskId} already exists`);
    }
    const host = this.d.host();
    const ids = { hostId: host.id, taskId, peerId: this.newPeerId() };
    const scheduler = this.d.schedulerFor(taskId);
    const fields = {
      persistent: true,
      persistentReplicaCount: req.persistentReplicaCount,
      tag: req.tag,
      application: req.application,
      ttlMs,
    };
    if (scheduler) {
      try {
        await unaryCall(
          scheduler.uploadPersistentCacheTaskStarted.bind(scheduler),
          {
            ...ids,
            persistentReplicaCount: req.persistentReplicaCount,
            tag: req.tag,
            application: req.application,
            pieceLength,
            contentLength: staged.contentLength,
            pieceCount: pieceCount(staged.contentLength, pieceLength),
            ttl: msToDuration(ttlMs),
          },
          SCHEDULER_REQUEST_TIMEOUT_MS,
          'the scheduler refused the import (UploadPersistentCacheTaskStarted)',
        );
      } catch (e) {
        await this.d.store.discard(staged);
        throw e;
      }
    }
    const record = await this.commit(staged, fields, scheduler, ids);
    // A hard-linked import read nothing: its piece digests are computed now, in the background, before the
    // replicas and exports ask for its pieces (they would otherwise be read twice on their way out).
    void this.d.store.fillDigests(taskId).then(
      (n) => n > 0 && this.d.log.debug({ taskId, pieces: n }, 'persistent cache piece digests computed'),
      (e: Error) => this.d.log.warn({ taskId, err: e.message }, 'could not compute piece digests'),
    );
    this.d.log.info(
      { taskId, mode: staged.mode, contentLength: staged.contentLength, pieceLength, path: req.path },
      'persistent cache task imported',
    );
    if (!scheduler) return localTaskMessage(record, { currentReplicas: 1, state: 'Succeeded' });
    try {
      const task = await unaryCall(
        scheduler.uploadPersistentCacheTaskFinished.bind(scheduler),
        ids,
        SCHEDULER_REQUEST_TIMEOUT_MS,
        'the scheduler did not take the import (UploadPersistentCacheTaskFinished)',
      );
      return { ...task, ttl: msToDuration(ttlMs), tag: req.tag, application: req.application };
    } catch (e) {
      // As upstream: a task the scheduler does not know is not kept (nobody could export it).
      await this.d.store.delete(taskId);
      await this.failed(scheduler, ids, e);
      throw e;
    }
  }

  private async commit(
    staged: StagedImport,
    fields: Parameters<PersistentCacheStore['commit']>[1],
    scheduler: SchedulerClient | undefined,
    ids: { hostId: string; taskId: string; peerId: string },
  ) {
    try {
      return await this.d.store.commit(staged, fields);
    } catch (e) {
      if (scheduler) await this.failed(scheduler, ids, e);
      throw toDfError(e);
    }
  }

  private async failed(
    scheduler: SchedulerClient,
    ids: { hostId: string; taskId: string; peerId: string },
    cause: unknown,
  ): Promise<void> {
    await unaryCall(
      scheduler.uploadPersistentCacheTaskFailed.bind(scheduler),
      { ...ids, description: (cause as Error).message },
      SCHEDULER_REQUEST_TIMEOUT_MS,
      'UploadPersistentCacheTaskFailed',
    ).catch((e: Error) =>
      this.d.log.warn({ taskId: ids.taskId, err: e.message }, 'could not tell the scheduler'),
    );
  }
}
