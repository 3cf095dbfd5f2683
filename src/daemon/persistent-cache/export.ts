// DownloadPersistentCacheTask (dfcache export, and a replica the scheduler places through DfdaemonUpload), after
// resource/persistent_cache_task.rs `download_started` / `download`: a task stored here is served from storage; any
// other is described by the scheduler (StatPersistentCacheTask) and fetched from the peers holding it. The output
// path is a hard link to the content file when it can be, else a copy once every piece is in (--force-hard-link
// makes a failed link an error); --digest is checked on the stored bytes.

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
import { unaryCall } from '../../grpc/unary-call.js';
import { SCHEDULER_REQUEST_TIMEOUT_MS } from '../../scheduler/channel-options.js';
import { verifyFileDigest } from '../../storage/file-digest.js';
import type {
  PersistentCachePieceRecord,
  PersistentCacheTaskRecord,
} from '../../storage/persistent-cache-store.js';
import { OutputFile } from '../output-file.js';
import { pieceMessage } from '../piece-message.js';
import { fetchFromParents, type FetchFromParentsDeps } from './fetch-from-parents.js';
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

export type ResponseWriter = (msg: DownloadPersistentCacheTaskResponse) => Promise<void>;

export class PersistentCacheExporter {
  /** Downloads running here, by task: a second export of the same task waits for the first. */
  private readonly running = new Map<string, Promise<void>>();

  constructor(private readonly d: ExportDeps) {}

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
    const taskId = req.taskId;
    if (!/^[0-9a-f]{64}$/.test(taskId)) {
      throw new DfError(
        'INVALID_ARGUMENT',
        `persistent cache task id "${taskId.slice(0, 80)}" is not 64 hex characters`,
      );
    }
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
        const run = this.fetch(req, output, ids, write, signal);
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
    req: DownloadPersistentCacheTaskRequest,
    ids: { hostId: string; taskId: string; peerId: string },
    write: ResponseWriter,
    output: Output | undefined,
  ): Promise<void> {
    await write({ ...ids, downloadPersistentCacheTaskStartedResponse: { contentLength: t.contentLength } });
    if (output) await this.linkOutput(output, t.id, req);
    for (const span of pieceRanges(t.contentLength, t.pieceLength)) {
      const piece = await this.d.store.servablePiece(t.id, span.number);
      await this.writePiece(write, ids, piece, LOCAL_PEER, req.needPieceContent);
    }
  }

  private async fetch(
    req: DownloadPersistentCacheTaskRequest,
    output: Output | undefined,
    ids: { hostId: string; taskId: string; peerId: string },
    write: ResponseWriter,
    signal: AbortSignal,
  ): Promise<void> {
    const scheduler = this.d.schedulerFor(req.taskId);
    if (!scheduler || !this.d.p2p) {
      throw new DfError('TASK_NOT_FOUND', `persistent cache task ${req.taskId} not found`);
    }
    const task = await this.stat(req.taskId);
    // A scheduler that sent no TTL (upstream's always does): the configured default, never an expired task.
    const ttlMs = task.ttl ? durationToMs(task.ttl) : this.d.defaultTtlMs;
    await this.d.store.startDownload({
      id: task.id,
      persistent: req.persistent,
      persistentReplicaCount: task.persistentReplicaCount,
      tag: task.tag,
      application: task.application,
      pieceLength: task.pieceLength,
      contentLength: task.contentLength,
      pieceCount: task.pieceCount,
      ttlMs,
      // The TTL runs from the import, on every peer alike.
      createdAt: task.createdAt,
    });
    try {
      await write({
        ...ids,
        downloadPersistentCacheTaskStartedResponse: { contentLength: task.contentLength },
      });
      if (output) await this.linkOutput(output, task.id, req);
      await fetchFromParents(
        { ...this.d.p2p, store: this.d.store, scheduler, host: this.d.host(), log: this.d.log },
        {
          taskId: task.id,
          flavour: persistentCacheFlavour({
            task,
            persistent: req.persistent,
            outputPath: req.outputPath,
            concurrentPieceCount: this.d.p2p.concurrentPieceCount,
          }),
          missing: pieceRanges(task.contentLength, task.pieceLength),
          signal,
          onPiece: (piece) => this.writePiece(write, ids, piece, piece.trafficType, req.needPieceContent),
        },
      );
      await this.d.store.finishDownload(task.id);
      this.d.log.info({ taskId: task.id, persistent: req.persistent }, 'persistent cache task downloaded');
    } catch (e) {
      // A partial copy serves nobody: pieces already verified are dropped with it (the scheduler was told Failed).
      await this.d.store.delete(task.id).catch(() => undefined);
      throw toDfError(e);
    }
  }

  private async writePiece(
    write: ResponseWriter,
    ids: { hostId: string; taskId: string; peerId: string },
    piece: PersistentCachePieceRecord,
    trafficType: number,
    withContent: boolean,
  ): Promise<void> {
    const content = withContent
      ? await this.d.store.content.readPieceBuffer(piece.taskId, piece.offset, piece.length)
      : undefined;
    await write({
      ...ids,
      downloadPieceFinishedResponse: { piece: pieceMessage(piece, trafficType, content) },
    });
  }

  /** At the start, as upstream: a hard link to the content file, or nothing yet (copied at the end). */
  private async linkOutput(
    output: Output,
    taskId: string,
    req: DownloadPersistentCacheTaskRequest,
  ): Promise<void> {
    const why = await output.file.linkAtStart(this.d.store.content.taskPath(taskId), req.forceHardLink);
    output.linked = why === undefined;
  }

  private async finishOutput(output: Output, taskId: string, req: DownloadPersistentCacheTaskRequest) {
    if (output.linked) return;
    await output.file.copy(this.d.store.content.taskPath(taskId));
    this.d.log.info({ taskId, output: req.outputPath }, 'persistent cache task copied to the output');
  }
}
