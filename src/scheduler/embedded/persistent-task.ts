// Persistent tasks (dfstore) in the embedded scheduler (spec/scheduler.md §6; Go service_v2.go *PersistentTask*,
// *PersistentPeer*): the same registry, replicas and announce flow as persistent cache tasks
// (persistent-cache.ts, persistent-cache-service.ts), under their own RPC names. What differs: a task is named by
// its object (its url and ObjectStorage are kept, so a replica can be placed with them), its piece length follows
// its content length, and a peer no other peer can serve is sent back to its object store (NeedBackToSource)
// instead of failing.

import type { ChannelCredentials } from '@grpc/grpc-js';
import { Metadata } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { calculatePieceLength } from '../../core/piece.js';
import type {
  AnnouncePersistentPeerRequest,
  UploadPersistentTaskStartedRequest,
} from '../../gen/scheduler.js';
import { PersistentCacheTasks, type ReplicaRpcs } from './persistent-cache.js';
import { PersistentCacheService, type PersistentWire } from './persistent-cache-service.js';
import type { Resources } from './resources.js';
import { invalidArgument } from './status.js';

const PERSISTENT_RPCS: ReplicaRpcs = {
  noun: 'persistent task',
  delete: (c, taskId, deadline, cb) => c.deletePersistentTask({ taskId }, new Metadata(), { deadline }, cb),
  promote: (c, taskId, deadline, cb) =>
    c.updatePersistentTask({ taskId, persistent: true }, new Metadata(), { deadline }, cb),
  place: (c, task, deadline) =>
    c.downloadPersistentTask(
      {
        url: task.init.url ?? '',
        objectStorage: task.init.objectStorage,
        persistent: true,
        needPieceContent: false,
        forceHardLink: false,
        overwrite: false,
      },
      { deadline },
    ),
};

const PERSISTENT_WIRE: PersistentWire = {
  task: 'PersistentTask',
  peer: 'PersistentPeer',
  noun: 'persistent task',
  init: (r) => {
    const p = r as UploadPersistentTaskStartedRequest;
    if (!p.url) throw invalidArgument('invalid Url: value length must be at least 1');
    return { url: p.url, objectStorage: p.objectStorage, pieceLength: calculatePieceLength(p.contentLength) };
  },
  register: (r) => (r as AnnouncePersistentPeerRequest).registerPersistentPeerRequest,
  reschedule: (r) => (r as AnnouncePersistentPeerRequest).reschedulePersistentPeerRequest,
  finished: (r) => {
    const p = r as AnnouncePersistentPeerRequest;
    return !!(p.downloadPersistentPeerFinishedRequest ?? p.downloadPersistentPeerBackToSourceFinishedRequest);
  },
  failed: (r) => {
    const p = r as AnnouncePersistentPeerRequest;
    return !!(p.downloadPersistentPeerFailedRequest ?? p.downloadPersistentPeerBackToSourceFailedRequest);
  },
  normal: (parents) => ({ normalPersistentTaskResponse: { candidateParents: parents } }),
  empty: { emptyPersistentTaskResponse: {} },
  noParents: {
    needBackToSourceResponse: { description: 'no peer holds the task: fetch it from its object store' },
  },
};

/** The registry of persistent tasks (replicas placed with DfdaemonUpload's persistent task RPCs). */
export function persistentTasks(
  resources: Resources,
  log: Logger,
  creds: ChannelCredentials,
): PersistentCacheTasks {
  // Not written to the scheduler's store: persistent tasks come back from their object store, not from peers.
  return new PersistentCacheTasks({ resources, log, creds, rpcs: PERSISTENT_RPCS });
}

/** The scheduler's persistent task RPCs over that registry. */
export function persistentTaskService(
  resources: Resources,
  tasks: PersistentCacheTasks,
  log: Logger,
): PersistentCacheService {
  return new PersistentCacheService(resources, tasks, log, PERSISTENT_WIRE);
}
