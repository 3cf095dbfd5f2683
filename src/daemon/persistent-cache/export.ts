// DownloadPersistentCacheTask (dfcache export) and DownloadPersistentTask (dfstore export), and a replica the
// scheduler places through DfdaemonUpload, after resource/persistent_cache_task.rs and persistent_task.rs
// `download_started` / `download`: a task stored here is served from storage; any other is planned (the scheduler's
// stat; for a persistent task the object store's when the scheduler knows none) and fetched from the peers holding
// it, a persistent task's missing pieces from its object store. The output path is a hard link to the content
// file when it can be, else a copy once every piece is in (--force-hard-link makes a failed link an error);
// --digest is checked on the stored bytes.
//
// `PersistentExporter` is the flow; each kind says how a task is planned and announced (`ExportKind`).

import type { Caller } from '../../core/caller.js';
import { durationToMs } from '../../core/duration.js';
import { DfError, toDfError } from '../../core/errors.js';
import { peerId as makePeerId } from '../../core/ids.js';
import { pieceRanges } from '../../core/piece.js';
import type { PersistentCacheTask } from '../../gen/common.js';
import type {
  DownloadPersistentCacheTaskRequest,
  DownloadPersistentCacheTaskResponse,
} from '../../gen/dfdaemon.js';
import type { SchedulerClient } from '../../gen/scheduler.js';
import { unaryCall } from '../../grpc/unary-call.js';
import { SCHEDULER_REQUEST_TIMEOUT_MS } from '../../scheduler/channel-options.js';
import { verifyFileDigest } from '../../storage/file-digest.js';
import type { NewPersistentCacheTask } from '../../storage/persistent-cache-metadata.js';
import type {
  PersistentCachePieceRecord,
  PersistentCacheTaskRecord,
} from '../../storage/persistent-cache-store.js';
import { OutputFile } from '../output-file.js';
import { pieceMessage } from '../piece-message.js';
import { fetchFromParents, type FetchFromParentsDeps, type PersistentFlavour } from './fetch-from-parents.js';
import { persistentCacheFlavour } from './flavours.js';
import type { PersistentCacheDeps } from './import.js';
import { localTaskMessage } from './messages.js';

/** common.v2.TrafficType.LOCAL_PEER */
const LOCAL_PEER = 2;

export interface ExportDeps extends PersistentCacheDeps {
  /** storage.dir: no output may be inside it. */
  storageDir: string;
  /** How pieces come from other peers; absent without a scheduler. */
  p2p?: Omit<FetchFromParentsDeps, 'store' | 'scheduler' | 'host' | 'log'>;
}

/** The output path, and whether it is already a hard link to the content file. */
interface Output {
  file: OutputFile;
  linked: boolean;
}

/** The fields of a download request both kinds have. */
export interface ExportRequest {
  taskId: string;
  persistent: boolean;
  outputPath?: string;
  needPieceContent: boolean;
  forceHardLink: boolean;
  digest?: string;
  overwrite: boolean;
}

type Ids = { hostId: string; taskId: string; peerId: string };

/** One response message of either kind's stream, built by the kind. */
export type ExportMessage =
  { started: { contentLength: number } } | { piece: ReturnType<typeof pieceMessage> };
export type ExportWriter = (ids: Ids, msg: ExportMessage) => Promise<void>;

/** What differs between the kinds. */
export interface ExportKind {
  noun: string;
  /**
   * The task to download: what the scheduler (or the object store) says of it; TASK_NOT_FOUND if nobody has it.
   * `sourceOnly`: the scheduler knows no peer of it, so every piece comes from the source.
   */
  plan(
    scheduler: SchedulerClient | undefined,
    signal: AbortSignal,
  ): Promise<NewPersistentCacheTask & { sourceOnly?: boolean }>;
  /** The announce messages (and source) of this download. */
  flavour(plan: NewPersistentCacheTask): PersistentFlavour;
}

export class PersistentExporter {
  /** Downloads running here, by task: a second export of the same task waits for the first. */
  private readonly running = new Map<string, Promise<void>>();

  constructor(protected readonly d: ExportDeps) {}

  async run(
    req: ExportRequest,
    kind: ExportKind,
    caller: Caller,
    write: ExportWriter,
    signal: AbortSignal,
  ): Promise<void> {
    const taskId = req.taskId;
    const file = req.outputPath
      ? await OutputFile.open({
          path: req.outputPath,
          caller,
          overwrite: req.overwrite,
          storageDir: this.d.storageDir,
        })
      : undefined;
    const output: Output | undefined = file && { file, linked: false };
    try {
      const host = this.d.host();
      const ids = { hostId: host.id, taskId, peerId: makePeerId(host.ip, host.hostname) };
      // One download of a task at a time here; a later one finds the task stored.
      await this.running.get(taskId)?.catch(() => undefined);
      let local = await this.d.store.get(taskId);
      if (local?.failedAt) {
        // A copy found edited after it finished (or a download that failed) serves nobody: fetched again from the
        // peers holding the task. A hard link's removal leaves the user's file alone.
        await this.d.store.delete(taskId);
        local = undefined;
      }
      if (!local?.finishedAt) {
        const run = this.fetch(req, kind, output, ids, write, signal);
        this.running.set(taskId, run);
        try {
          await run;
        } finally {
          if (this.running.get(taskId) === run) this.running.delete(taskId);
        }
        local = (await this.d.store.get(taskId))!;
      } else {
        await this.serveLocal(local, req, ids, write, output);
        if (req.persistent && !local.persistent) this.d.store.setPersistent(taskId, true);
      }
      if (req.digest) await verifyFileDigest(this.d.store.content.taskPath(taskId), req.digest);
      if (output) await this.finishOutput(output, taskId, req);
    } finally {
      await file?.close();
    }
  }

  /** A stored task: Started, then each piece (its digest made sure of, see PersistentCacheStore.servablePiece). */
  private async serveLocal(
    t: PersistentCacheTaskRecord,
    req: ExportRequest,
    ids: Ids,
    write: ExportWriter,
    output: Output | undefined,
  ): Promise<void> {
    await write(ids, { started: { contentLength: t.contentLength } });
    if (output) await this.linkOutput(output, t.id, req);
    for (const span of pieceRanges(t.contentLength, t.pieceLength)) {
      const piece = await this.d.store.servablePiece(t.id, span.number);
      await this.writePiece(write, ids, piece, LOCAL_PEER, req.needPieceContent);
    }
  }

  private async fetch(
    req: ExportRequest,
    kind: ExportKind,
    output: Output | undefined,
    ids: Ids,
    write: ExportWriter,
    signal: AbortSignal,
  ): Promise<void> {
    const scheduler = this.d.schedulerFor(req.taskId);
    const { sourceOnly, ...plan } = await kind.plan(this.d.p2p ? scheduler : undefined, signal);
    const flavour = kind.flavour(plan);
    const p2p = scheduler && this.d.p2p && !sourceOnly ? this.d.p2p : undefined;
    if (!p2p && !flavour.backToSource) {
      throw new DfError('TASK_NOT_FOUND', `${kind.noun} ${req.taskId} not found`);
    }
    await this.d.store.startDownload({ ...plan, persistent: req.persistent });
    try {
      await write(ids, { started: { contentLength: plan.contentLength } });
      if (output) await this.linkOutput(output, plan.id, req);
      const missing = pieceRanges(plan.contentLength, plan.pieceLength);
      const onPiece = (piece: PersistentCachePieceRecord) =>
        this.writePiece(write, ids, piece, piece.trafficType, req.needPieceContent);
      if (p2p && scheduler) {
        await fetchFromParents(
          { ...p2p, store: this.d.store, scheduler, host: this.d.host(), log: this.d.log },
          { taskId: plan.id, flavour, missing, signal, onPiece },
        );
      } else {
        // No scheduler, or one that knows no peer of it: the object store has every piece, read
        // download.concurrentPieceCount at a time; the first failure stops the others.
        const fromSource = flavour.backToSource!;
        let next = 0;
        let failed = false;
        const worker = async () => {
          while (next < missing.length && !failed) {
            const span = missing[next++]!;
            try {
              await onPiece(await fromSource.piece(span, signal));
            } catch (e) {
              failed = true;
              throw e;
            }
          }
        };
        const workers = Math.min(this.d.p2p?.concurrentPieceCount ?? 1, missing.length);
        await Promise.all(Array.from({ length: workers }, worker));
      }
      await this.d.store.finishDownload(plan.id);
      this.d.log.info({ taskId: plan.id, persistent: req.persistent }, `${kind.noun} downloaded`);
    } catch (e) {
      // A partial copy serves nobody: pieces already verified are dropped with it (the scheduler was told Failed).
      await this.d.store.delete(plan.id).catch(() => undefined);
      throw toDfError(e);
    }
  }

  private async writePiece(
    write: ExportWriter,
    ids: Ids,
    piece: PersistentCachePieceRecord,
    trafficType: number,
    withContent: boolean,
  ): Promise<void> {
    const content = withContent
      ? await this.d.store.content.readPieceBuffer(piece.taskId, piece.offset, piece.length)
      : undefined;
    await write(ids, { piece: pieceMessage(piece, trafficType, content) });
  }

  /** At the start, as upstream: a hard link to the content file, or nothing yet (copied at the end). */
  private async linkOutput(output: Output, taskId: string, req: ExportRequest): Promise<void> {
    const why = await output.file.linkAtStart(this.d.store.content.taskPath(taskId), req.forceHardLink);
    output.linked = why === undefined;
  }

  private async finishOutput(output: Output, taskId: string, req: ExportRequest) {
    if (output.linked) return;
    await output.file.copy(this.d.store.content.taskPath(taskId));
    this.d.log.info({ taskId, output: req.outputPath }, 'task copied to the output');
  }
}

export type ResponseWriter = (msg: DownloadPersistentCacheTaskResponse) => Promise<void>;

/** dfcache's export: tasks only peers hold, described by the scheduler. */
export class PersistentCacheExporter extends PersistentExporter {
  /** The task as the scheduler knows it (NOT_FOUND: nobody has it), or as stored here without a scheduler. */
  async stat(taskId: string): Promise<PersistentCacheTask> {
    const scheduler = this.d.schedulerFor(taskId);
    if (!scheduler) {
      const local = await this.d.store.get(taskId);
      if (!local) throw new DfError('TASK_NOT_FOUND', `persistent cache task ${taskId} not found`);
      return localTaskMessage(local, { currentReplicas: 1 });
    }
    return unaryCall(
      scheduler.statPersistentCacheTask.bind(scheduler),
      { hostId: this.d.host().id, taskId },
      SCHEDULER_REQUEST_TIMEOUT_MS,
      `persistent cache task ${taskId}`,
    ).catch((e: DfError) => {
      throw e.code === 'TASK_NOT_FOUND'
        ? new DfError('TASK_NOT_FOUND', `persistent cache task ${taskId} not found`)
        : e;
    });
  }

  async download(
    req: DownloadPersistentCacheTaskRequest,
    caller: Caller,
    write: ResponseWriter,
    signal: AbortSignal,
  ): Promise<void> {
    if (!/^[0-9a-f]{64}$/.test(req.taskId)) {
      throw new DfError(
        'INVALID_ARGUMENT',
        `persistent cache task id "${req.taskId.slice(0, 80)}" is not 64 hex characters`,
      );
    }
    let task: PersistentCacheTask | undefined;
    const kind: ExportKind = {
      noun: 'persistent cache task',
      plan: async () => {
        task = await this.stat(req.taskId);
        return {
          id: task.id,
          persistent: req.persistent,
          persistentReplicaCount: task.persistentReplicaCount,
          tag: task.tag,
          application: task.application,
          pieceLength: task.pieceLength,
          contentLength: task.contentLength,
          pieceCount: task.pieceCount,
          // A scheduler that sent no TTL (upstream's always does): the configured default, never an expired task.
          ttlMs: task.ttl ? durationToMs(task.ttl) : this.d.defaultTtlMs,
          // The TTL runs from the import, on every peer alike.
          createdAt: task.createdAt,
        };
      },
      flavour: () =>
        persistentCacheFlavour({
          task: task!,
          persistent: req.persistent,
          outputPath: req.outputPath,
          concurrentPieceCount: this.d.p2p?.concurrentPieceCount ?? 1,
        }),
    };
    await this.run(req, kind, caller, (ids, msg) => write({ ...ids, ...cacheMessage(msg) }), signal);
  }
}

function cacheMessage(msg: ExportMessage): Partial<DownloadPersistentCacheTaskResponse> {
  return 'started' in msg
    ? { downloadPersistentCacheTaskStartedResponse: msg.started }
    : { downloadPieceFinishedResponse: { piece: msg.piece } };
}
