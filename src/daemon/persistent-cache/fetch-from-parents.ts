// The P2P half of a persistent cache export and of a persistent (dfstore) export
// (resource/persistent_cache_task.rs and persistent_task.rs `download_partial_with_scheduler`): the announce stream
// registers the peer and gets candidate parents; their pieces are learned over DfdaemonUpload.Sync*Pieces (the same
// PieceCollector as standard tasks) and fetched over Vortex with the kind's tags, each verified against its
// parent's digest before it counts. When no parent can give the missing pieces the peer reschedules (blocking the
// parents it had), at most maxScheduleCount times. Then a persistent cache task fails (its only copies are on
// peers); a persistent task, whose copy of record is in object storage, takes the missing pieces from there, as
// it does when the scheduler answers NeedBackToSource.
//
// The two kinds differ only in their messages: a `PersistentFlavour` names them (flavours.ts).

import { DfError, toDfError } from '../../core/errors.js';
import { peerId as makePeerId } from '../../core/ids.js';
import type { PieceSpan } from '../../core/piece.js';
import type { DfdaemonUploadClient } from '../../gen/dfdaemon.js';
import type { SchedulerClient } from '../../gen/scheduler.js';
import type { PeerIds } from '../../scheduler/announce-peer-stream.js';
import type {
  PersistentCachePieceRecord,
  PersistentCacheStore,
} from '../../storage/persistent-cache-store.js';
import type { PieceKind, PieceTransport } from '../../vortex/piece-transport.js';
import { PieceCollector, type CollectedParent, type SyncPiecesCall } from '../piece-collector.js';
import { pieceMessage } from '../piece-message.js';
import { PiecePicker, type PieceHolder } from '../piece-picker.js';
import type { PersistentCacheHost } from './import.js';

/** common.v2.TrafficType.REMOTE_PEER */
const REMOTE_PEER = 1;
/** common.v2.TrafficType.BACK_TO_SOURCE */
const BACK_TO_SOURCE = 0;
/** A parent that timed out or dropped the connection is asked for that piece again after this long. */
const RETRY_AFTER_MS = 1000;

/** The oneof part of an announce request: one field set. */
export type AnnounceMessage = Record<string, unknown>;

/** An announce stream as this flow uses it (scheduler/announce-peer-stream.ts). */
export interface FlavourStream {
  send(message: AnnounceMessage): void;
  finish(message: AnnounceMessage): void;
  next(signal?: AbortSignal): Promise<unknown>;
}

/** What the scheduler's reply says to do. */
export interface ScheduleAnswer {
  parents?: CollectedParent[];
  backToSource?: boolean;
}

/** The messages of one task kind's announce stream. */
export interface PersistentFlavour {
  kind: Extract<PieceKind, 'persistent' | 'persistent-cache'>;
  /** "persistent cache task" / "persistent task", for messages. */
  noun: string;
  open(scheduler: SchedulerClient, ids: PeerIds, scheduleTimeoutMs: number): FlavourStream;
  sync: SyncPiecesCall;
  answer(reply: unknown): ScheduleAnswer;
  register: AnnounceMessage;
  started: AnnounceMessage;
  finished: AnnounceMessage;
  failed(description: string): AnnounceMessage;
  reschedule(parents: CollectedParent[], description: string): AnnounceMessage;
  /** Only for kinds with a source (persistent tasks: object storage). */
  backToSource?: {
    started: AnnounceMessage;
    finished: AnnounceMessage;
    /** Fetches one piece from the source into the store. */
    piece(span: PieceSpan, signal: AbortSignal): Promise<PersistentCachePieceRecord>;
  };
}

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
  taskId: string;
  flavour: PersistentFlavour;
  missing: PieceSpan[];
  signal: AbortSignal;
  /** A piece is stored and verified. */
  onPiece: (piece: PersistentCachePieceRecord) => Promise<void>;
}

export async function fetchFromParents(d: FetchFromParentsDeps, r: FetchRequest): Promise<void> {
  const flavour = r.flavour;
  const ids = { hostId: d.host.id, taskId: r.taskId, peerId: makePeerId(d.host.ip, d.host.hostname) };
  const stream = flavour.open(d.scheduler, ids, d.scheduleTimeoutMs);
  const picker = new PiecePicker({
    perParentLimit: d.concurrentPieceCount,
    targetInFlight: d.concurrentPieceCount,
  });
  const queued = new Set(r.missing.map((p) => p.number));
  const spans = new Map(r.missing.map((p) => [p.number, p]));
  const inFlight = new Set<number>();
  let wake: (() => void) | undefined;
  const poke = () => wake?.();
  const collector = new PieceCollector<CollectedParent>({
    hostId: ids.hostId,
    taskId: ids.taskId,
    interested: [...queued],
    uploadClient: d.uploadClient,
    sync: flavour.sync,
    onPiece: (number, holder) => {
      if (picker.announce(number, holder)) poke();
    },
    onParentEnded: poke,
    log: d.log,
  });
  let failure: Error | undefined;
  /** Set once the remaining pieces come from the source (persistent tasks only). */
  let fromSource = false;
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
        kind: flavour.kind,
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
  const fetchFromSource = async (number: number): Promise<void> => {
    try {
      const piece = await flavour.backToSource!.piece(spans.get(number)!, r.signal);
      stream.send({
        downloadPieceBackToSourceFinishedRequest: { piece: pieceMessage(piece, BACK_TO_SOURCE) },
      });
      await r.onPiece(piece);
    } finally {
      inFlight.delete(number);
      poke();
    }
  };
  const goBackToSource = (why: string) => {
    if (fromSource) return;
    fromSource = true;
    d.log.info({ taskId: ids.taskId, missing: queued.size, why }, `${flavour.noun} back to source`);
    stream.send(flavour.backToSource!.started);
  };
  const start = (number: number, parent?: PieceHolder) => {
    queued.delete(number);
    inFlight.add(number);
    const p = (parent ? fetchOne(number, parent) : fetchFromSource(number)).catch((e: Error) => {
      failure ??= e;
    });
    running.add(p);
    void p.finally(() => running.delete(p));
  };
  const running = new Set<Promise<void>>();

  try {
    stream.send(flavour.register);
    let schedules = 0;
    const schedule = async (): Promise<void> => {
      if (++schedules > d.maxScheduleCount) {
        const why = `no parent could give the missing ${queued.size + inFlight.size} pieces of ${flavour.noun} ${ids.taskId} after ${d.maxScheduleCount} schedules`;
        if (flavour.backToSource) return goBackToSource(why);
        throw new DfError('UNAVAILABLE', why);
      }
      const answer = flavour.answer(await stream.next(r.signal));
      if (answer.backToSource) {
        if (!flavour.backToSource) {
          throw new DfError('UNAVAILABLE', `the scheduler sent ${flavour.noun} ${ids.taskId} back to source`);
        }
        goBackToSource('the scheduler answered NeedBackToSource');
      } else if (answer.parents) collector.addParents(answer.parents);
    };
    await schedule();
    if (!fromSource) stream.send(flavour.started);
    while (queued.size > 0 || inFlight.size > 0) {
      if (failure) throw failure;
      r.signal.throwIfAborted();
      if (fromSource) {
        for (const number of queued) {
          if (inFlight.size >= d.concurrentPieceCount) break;
          start(number);
        }
      } else {
        let picked =
          inFlight.size < d.concurrentPieceCount
            ? picker.pick({ queued, inOrder: new Set(), inFlight })
            : undefined;
        while (picked) {
          start(picked.number, picked.parent);
          picked =
            inFlight.size < d.concurrentPieceCount
              ? picker.pick({ queued, inOrder: new Set(), inFlight })
              : undefined;
        }
        // Nothing can start and nothing runs: every parent we have is done and none holds what is missing.
        const stuck =
          inFlight.size === 0 &&
          collector.activeParents === 0 &&
          ![...queued].some((n) => picker.available(n));
        if (stuck) {
          stream.send(
            flavour.reschedule(collector.parents, `${queued.size} pieces missing and no parent holds them`),
          );
          await schedule();
          continue;
        }
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
    stream.finish(fromSource ? flavour.backToSource!.finished : flavour.finished);
  } catch (e) {
    const err = r.signal.aborted ? new DfError('CANCELLED', 'the export was cancelled') : toDfError(e);
    stream.finish(flavour.failed(err.message));
    throw err;
  } finally {
    collector.close();
  }
}
