// The announce messages of the two persistent kinds, for fetch-from-parents.ts: AnnouncePersistentCachePeer
// (dfcache: the copies on peers are all there is) and AnnouncePersistentPeer (dfstore: object storage holds the
// copy of record, so the flow may go back to source). Field names are the only difference between them.

import type { PieceSpan } from '../../core/piece.js';
import type {
  ObjectStorage,
  PersistentCachePeer,
  PersistentCacheTask,
  PersistentPeer,
} from '../../gen/common.js';
import type {
  AnnouncePersistentCachePeerResponse,
  AnnouncePersistentPeerResponse,
} from '../../gen/scheduler.js';
import {
  AnnouncePersistentCachePeerStream,
  AnnouncePersistentPeerStream,
} from '../../scheduler/announce-peer-stream.js';
import type { PersistentCachePieceRecord } from '../../storage/persistent-cache-store.js';
import type { FlavourStream, PersistentFlavour } from './fetch-from-parents.js';

export function persistentCacheFlavour(o: {
  task: PersistentCacheTask;
  persistent: boolean;
  outputPath?: string;
  concurrentPieceCount: number;
}): PersistentFlavour {
  return {
    kind: 'persistent-cache',
    noun: 'persistent cache task',
    open: (scheduler, ids, timeoutMs) =>
      new AnnouncePersistentCachePeerStream(scheduler, ids, timeoutMs) as unknown as FlavourStream,
    sync: (client, req) => client.syncPersistentCachePieces(req),
    answer: (reply) => ({
      parents: (reply as AnnouncePersistentCachePeerResponse).normalPersistentCacheTaskResponse
        ?.candidateCacheParents,
    }),
    register: {
      registerPersistentCachePeerRequest: {
        persistent: o.persistent,
        tag: o.task.tag,
        application: o.task.application,
        pieceLength: o.task.pieceLength,
        outputPath: o.outputPath,
        concurrentPieceCount: o.concurrentPieceCount,
        pieceCount: o.task.pieceCount,
      },
    },
    started: { downloadPersistentCachePeerStartedRequest: {} },
    finished: { downloadPersistentCachePeerFinishedRequest: {} },
    failed: (description) => ({ downloadPersistentCachePeerFailedRequest: { description } }),
    reschedule: (parents, description) => ({
      reschedulePersistentCachePeerRequest: {
        candidateParents: parents as PersistentCachePeer[],
        description,
      },
    }),
  };
}

export function persistentFlavour(o: {
  url: string;
  objectStorage?: ObjectStorage;
  persistent: boolean;
  outputPath?: string;
  concurrentPieceCount: number;
  pieceCount: number;
  /** A piece from object storage into the store. */
  fromSource: (span: PieceSpan, signal: AbortSignal) => Promise<PersistentCachePieceRecord>;
}): PersistentFlavour {
  return {
    kind: 'persistent',
    noun: 'persistent task',
    open: (scheduler, ids, timeoutMs) =>
      new AnnouncePersistentPeerStream(scheduler, ids, timeoutMs) as unknown as FlavourStream,
    sync: (client, req) => client.syncPersistentPieces(req),
    answer: (reply) => {
      const r = reply as AnnouncePersistentPeerResponse;
      return {
        parents: r.normalPersistentTaskResponse?.candidateParents,
        backToSource: r.needBackToSourceResponse !== undefined,
      };
    },
    register: {
      registerPersistentPeerRequest: {
        url: o.url,
        objectStorage: o.objectStorage,
        persistent: o.persistent,
        outputPath: o.outputPath,
        concurrentPieceCount: o.concurrentPieceCount,
        pieceCount: o.pieceCount,
        needBackToSource: false,
      },
    },
    started: { downloadPersistentPeerStartedRequest: {} },
    finished: { downloadPersistentPeerFinishedRequest: {} },
    failed: (description) => ({ downloadPersistentPeerFailedRequest: { description } }),
    reschedule: (parents, description) => ({
      reschedulePersistentPeerRequest: { candidateParents: parents as PersistentPeer[], description },
    }),
    backToSource: {
      started: { downloadPersistentPeerBackToSourceStartedRequest: {} },
      finished: { downloadPersistentPeerBackToSourceFinishedRequest: {} },
      piece: o.fromSource,
    },
  };
}
