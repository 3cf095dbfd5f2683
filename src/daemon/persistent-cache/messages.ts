// The wire messages of a locally stored persistent cache task: common.v2.PersistentCacheTask (when no scheduler
// speaks for it) and dfdaemon.v2.StatLocalPersistentCacheTaskResponse (dfctl persistent-cache-task ls / stat).

import { msToDuration } from '../../core/duration.js';
import type { PersistentCacheTask } from '../../gen/common.js';
import type { StatLocalPersistentCacheTaskResponse } from '../../gen/dfdaemon.js';
import type { PersistentCacheTaskRecord } from '../../storage/persistent-cache-store.js';

/** The state a peer's copy is in, as the scheduler spells peer states. */
export function localState(t: PersistentCacheTaskRecord): string {
  if (t.finishedAt) return 'Succeeded';
  if (t.failedAt) return 'Failed';
  return 'Running';
}

export function localTaskMessage(
  t: PersistentCacheTaskRecord,
  o: { currentReplicas: number; state?: string },
): PersistentCacheTask {
  return {
    id: t.id,
    persistentReplicaCount: t.persistentReplicaCount,
    currentPersistentReplicaCount: t.persistent ? o.currentReplicas : 0,
    currentReplicaCount: o.currentReplicas,
    tag: t.tag,
    application: t.application,
    pieceLength: t.pieceLength,
    contentLength: t.contentLength,
    pieceCount: t.pieceCount,
    state: o.state ?? localState(t),
    ttl: msToDuration(t.ttlMs),
    createdAt: t.createdAt,
    updatedAt: t.updatedAt,
  };
}

export function statLocalResponse(t: PersistentCacheTaskRecord): StatLocalPersistentCacheTaskResponse {
  return {
    taskId: t.id,
    persistent: t.persistent,
    ttl: msToDuration(t.ttlMs),
    pieceLength: t.pieceLength,
    contentLength: t.contentLength,
    uploadingCount: t.uploadingCount,
    uploadedCount: t.uploadedCount,
    createdAt: t.createdAt,
    updatedAt: t.updatedAt,
    failedAt: t.failedAt,
    finishedAt: t.finishedAt,
  };
}
