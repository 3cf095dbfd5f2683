// The P2P half of a persistent cache export (resource/persistent_cache_task.rs `download_partial_with_scheduler`):
// AnnouncePersistentCachePeer registers the peer and gets candidate parents; their pieces are learned over
// DfdaemonUpload.SyncPersistentCachePieces (the same PieceCollector as standard tasks) and fetched over Vortex with
// the persistent-cache tags, each verified against its parent's digest before it counts. There is no
// back-to-source: when no parent can give the missing pieces the peer reschedules (blocking the parents it had),
// at most maxScheduleCount times, and then fails.

import { DfError, toDfError } from '../../core/errors.js';
import { peerId as makePeerId } from '../../core/ids.js';
import type { PieceSpan } from '../../core/piece.js';
import type { PersistentCachePeer, PersistentCacheTask } from '../../gen/common.js';
import type { DfdaemonUploadClient } from '../../gen/dfdaemon.js';
import type { SchedulerClient } from '../../gen/scheduler.js';
import { AnnouncePersistentCachePeerStream } from '../../scheduler/announce-peer-stream.js';
import type {
  PersistentCachePieceRecord,
  PersistentCacheStore,
} from '../../storage/persistent-cache-store.js';
import type { PieceTransport } from '../../vortex/piece-transport.js';
import { PieceCollector } from '../piece-collector.js';
import { pieceMessage } from '../piece-message.js';
import { PiecePicker, type PieceHolder } from '../piece-picker.js';
import type { PersistentCacheHost } from './import.js';

/** common.v2.TrafficType.REMOTE_PEER */
const REMOTE_PEER = 1;
/** A parent that timed out or dropped the connection is asked for that piece again after this long. */
const RETRY_AFTER_MS = 1000;

export interface FetchFromParentsDeps {
  store: PersistentCacheStore;
  scheduler: SchedulerClient;
  host: PersistentCacheHost;
  uploadClient: (ip: string, port: number) => DfdaemonUploadClient;
  transport: PieceTransport;
  concurrentPieceCount: number;
  pieceTimeoutMs: number;
  scheduleTimeoutMs: number;
  maxScheduleCount: number;
  log: {
    debug(o: object, m: string): void;
    warn(o: object, m: string): void;
    info(o: object, m: string): void;
  };
}

export interface FetchRequest {
  task: PersistentCacheTask;
  /** Register as a persistent replica (the scheduler placed us) rather than a cached export. */
  persistent: boolean;
  outputPath?: string;
  missing: PieceSpan[];
  signal: AbortSignal;
  /** A piece is stored and verified. */
  onPiece: (piece: PersistentCachePieceRecord) => Promise<void>;
}

export async function fetchFromParents(d: FetchFromParentsDeps, r: FetchRequest): Promise<void> {
  const ids = { hostId: d.host.id, taskId: r.task.id, peerId: makePeerId(d.host.ip, d.host.hostname) };
  const stream = new AnnouncePersistentCachePeerStream(d.scheduler, ids, d.scheduleTimeoutMs);
  const picker = new PiecePicker({
    perParentLimit: d.concurrentPieceCount,
    targetInFlight: d.concurrentPieceCount,
  });
  const queued = new Set(r.missing.map((p) => p.number));
  const spans = new Map(r.missing.map((p) => [p.number, p]));
  const inFlight = new Set<number>();
  let wake: (() => void) | undefined;
  const poke = () => wake?.();
  const collector = new PieceCollector<PersistentCachePeer>({
    hostId: ids.hostId,
    taskId: ids.taskId,
    interested: [...queued],
    uploadClient: d.uploadClient,
    sync: (client, req) => client.syncPersistentCachePieces(req),
    onPiece: (number, holder) => {
      if (picker.announce(number, holder)) poke();
    },
    onParentEnded: poke,
    log: d.log,
  });
  let failure: Error | undefined;
  const fetchOne = async (number: number, parent: PieceHolder): Promise<void> => {
    const span = spans.get(number)!;
    picker.started(parent.parentId);
    const started = performance.now();
    try {
      const got = await d.transport.downloadPiece({
        ip: parent.ip,
        port: parent.tcpPort,
        taskId: ids.taskId,
        number,
        timeoutMs: d.pieceTimeoutMs,
        signal: r.signal,
        kind: 'persistent-cache',
      });
      const piece = await d.store.writePiece(ids.taskId, span, got.body, {
        parentId: parent.parentId,
        expectedDigest: got.metadata.digest,
        trafficType: REMOTE_PEER,
      });
      picker.ended(parent.parentId, { bytes: span.length, ms: performance.now() - started });
      stream.send({ downloadPieceFinishedRequest: { piece: pieceMessage(piece, REMOTE_PEER) } });
      await r.onPiece(piece);
    } catch (e) {
      picker.ended(parent.parentId);
      const err = toDfError(e);
      if (err.code === 'CANCELLED') throw err;
      const temporary = err.code === 'TIMEOUT' || err.code === 'UNAVAILABLE';
      picker.markFailed(parent.parentId, number, temporary ? RETRY_AFTER_MS : Infinity);
      if (err.code === 'UNAVAILABLE') picker.dropParent(parent.parentId);
      d.log.debug({ taskId: ids.taskId, number, parent: parent.parentId, err: err.message }, 'piece failed');
      stream.send({
        downloadPieceFailedRequest: { pieceNumber: number, parentId: parent.parentId, temporary },
      });
      queued.add(number);
    } finally {
      inFlight.delete(number);
      poke();
    }
  };

  try {
    stream.send({
      registerPersistentCachePeerRequest: {
        persistent: r.persistent,
        tag: r.task.tag,
        application: r.task.application,
        pieceLength: r.task.pieceLength,
        outputPath: r.outputPath,
        concurrentPieceCount: d.concurrentPieceCount,
        pieceCount: r.task.pieceCount,
      },
    });
    let schedules = 0;
    const schedule = async (): Promise<void> => {
      if (++schedules > d.maxScheduleCount) {
        throw new DfError(
          'UNAVAILABLE',
          `no parent could give the missing ${queued.size + inFlight.size} pieces of persistent cache task ` +
            `${ids.taskId} after ${d.maxScheduleCount} schedules`,
        );
      }
      const reply = await stream.next(r.signal);
      const normal = reply.normalPersistentCacheTaskResponse;
      if (normal) collector.addParents(normal.candidateCacheParents);
    };
    await schedule();
    stream.send({ downloadPersistentCachePeerStartedRequest: {} });
    const running = new Set<Promise<void>>();
    while (queued.size > 0 || inFlight.size > 0) {
      if (failure) throw failure;
      r.signal.throwIfAborted();
      let picked =
        inFlight.size < d.concurrentPieceCount
          ? picker.pick({ queued, inOrder: new Set(), inFlight })
          : undefined;
      while (picked) {
        queued.delete(picked.number);
        inFlight.add(picked.number);
        const p = fetchOne(picked.number, picked.parent).catch((e: Error) => {
          failure ??= e;
        });
        running.add(p);
        void p.finally(() => running.delete(p));
        picked =
          inFlight.size < d.concurrentPieceCount
            ? picker.pick({ queued, inOrder: new Set(), inFlight })
            : undefined;
      }
      // Nothing can start and nothing runs: every parent we have is done and none holds what is missing.
      const stuck =
        inFlight.size === 0 && collector.activeParents === 0 && ![...queued].some((n) => picker.available(n));
      if (stuck) {
        stream.send({
          reschedulePersistentCachePeerRequest: {
            candidateParents: collector.parents,
            description: `${queued.size} pieces missing and no parent holds them`,
          },
        });
        await schedule();
        continue;
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 100);
        wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      wake = undefined;
    }
    await Promise.all(running);
    if (failure) throw failure;
    stream.finish({ downloadPersistentCachePeerFinishedRequest: {} });
  } catch (e) {
    const err = r.signal.aborted ? new DfError('CANCELLED', 'the export was cancelled') : toDfError(e);
    stream.finish({ downloadPersistentCachePeerFailedRequest: { description: err.message } });
    throw err;
  } finally {
    collector.close();
  }
}
