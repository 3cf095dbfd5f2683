// The piece path (the upstream client's resource/piece.rs): one piece into storage, from the source or from a
// parent, side by side — with the bandwidth limits, the piece timeout, retries of a body that broke off, the
// length and digest checks of a parent's piece, and the metrics. Everything that decides *which* piece and *from
// whom* lives elsewhere (task-manager.ts, peer-task.ts, piece-picker.ts); this only moves bytes.

import type { HdfsOptions, HubOptions, ObjectStorageOptions } from '../backend/backend.js';
import type { BackendFactory } from '../backend/factory.js';
import { pieceDigest } from '../core/digest.js';
import { DfError, toDfError } from '../core/errors.js';
import type { SourceValidator } from '../core/validator.js';
import type { PieceRecord, Storage } from '../storage/storage.js';
import type { DownloadedPiece, PieceTransport } from '../vortex/piece-transport.js';
import type { BodyMeter, ReceivingBody } from './downlink-pace.js';
import type { DaemonMetrics } from './metrics.js';
import type { PieceSpec } from './task-run.js';

/** common.v2.TrafficType values (kept as numbers so storage need not import the generated code). */
export const TrafficType = { BACK_TO_SOURCE: 0, REMOTE_PEER: 1, LOCAL_PEER: 2 } as const;

/** Downloads one piece from a parent's piece server (Vortex; the transport the daemon chose). */
export type PieceDownloader = PieceTransport['downloadPiece'];

/** A shared byte-rate limit (see rate-limiter.ts). */
export interface ByteLimiter {
  acquire(bytes: number): Promise<void>;
}

/** What a source fetch needs to know about its task. */
export interface SourceTask {
  taskId: string;
  url: string;
  requestHeader: Record<string, string>;
  /**
   * The version the task started with (its stat's ETag / Last-Modified): every piece request is conditional on it
   * and a piece of another version fails with SOURCE_CHANGED (never retried here: the task must start over).
   */
  validator?: SourceValidator;
  /** The run was started on a remote caller's behalf: its source connections are checked (address-policy.ts). */
  remoteCaller?: boolean;
  /** The object store's endpoint and credentials (Download.object_storage), for the object storage schemes. */
  objectStorage?: ObjectStorageOptions;
  /** The model hub's revision, token and base URL (Download.hugging_face / model_scope / open_csg). */
  hub?: HubOptions;
  /** The WebHDFS delegation token (Download.hdfs), for hdfs. */
  hdfs?: HdfsOptions;
}

/** A parent that announced a piece: where its piece server listens. */
export interface PieceParent {
  parentId: string;
  hostId: string;
  ip: string;
  tcpPort: number;
}

async function* once(data: Buffer): AsyncIterable<Buffer> {
  yield data;
}

/** A whole piece in memory whose bytes match the digest its parent sent. */
export interface VerifiedPiece {
  data: Buffer;
  digest: string;
  parentId: string;
}

export interface PiecePathOptions {
  storage: Storage;
  backends: BackendFactory;
  metrics: DaemonMetrics;
  /** download.pieceTimeout: bounds one piece's transfer, from either side. */
  pieceTimeoutMs: number;
  /** backend.maxRetries: extra attempts for a source piece whose body broke off. */
  maxRetries: number;
  /** download.backToSourceBandwidthLimit: pieces from the source. */
  backToSourceLimiter?: ByteLimiter;
  /** Set once P2P is enabled (the transport starts after the task manager). */
  downloadPiece?: PieceDownloader;
  /** storage.server.cutThrough: a piece from a parent may be relayed to children while it arrives. */
  relay?: boolean;
  log: { warn(o: object, m: string): void };
}

const RETRY_BACKOFF_MS = 200;

/** What watches a source piece's body arrive. */
export interface SourceBodyWatch {
  /** The request goes out (after download.backToSourceBandwidthLimit let it; again for a retry). */
  requested(): void;
  /** The body of `length` bytes begins (again, when a broken body is retried). */
  bodyBegan(length: number): void;
  /** `total` bytes of the body have arrived (a retried body starts again from 0). */
  progress(total: number): void;
}

/** `body` as it is, telling `progress` the running total after each chunk. */
async function* counted(
  body: AsyncIterable<Buffer | Uint8Array>,
  progress: (total: number) => void,
): AsyncGenerator<Buffer | Uint8Array> {
  let total = 0;
  for await (const chunk of body) {
    total += chunk.length;
    progress(total);
    yield chunk;
  }
}

export class PiecePath {
  private readonly o: PiecePathOptions;

  constructor(options: PiecePathOptions) {
    this.o = options;
  }

  /** The Vortex transport for parent pieces (P2P is enabled after construction). */
  set downloadPiece(d: PieceDownloader) {
    this.o.downloadPiece = d;
  }

  /**
   * A ranged GET for exactly the piece, streamed into storage. `watch` hears when the body begins and how many
   * bytes of it arrived (source-flights.ts: the next piece's request goes out during this one's tail).
   */
  async fromSource(
    task: SourceTask,
    piece: PieceSpec,
    runSignal: AbortSignal,
    watch?: SourceBodyWatch,
  ): Promise<PieceRecord> {
    const backend = this.o.backends.get(task.url);
    // download.backToSourceBandwidthLimit, taken once a piece (as upstream).
    await this.o.backToSourceLimiter?.acquire(piece.length);
    for (let attempt = 0; ; attempt++) {
      const signal = AbortSignal.any([runSignal, AbortSignal.timeout(this.o.pieceTimeoutMs)]);
      const started = performance.now();
      this.o.metrics.backendRequest(backend.scheme, 'GET');
      watch?.requested();
      // The backend already retries failures before the body starts (backend.maxRetries); only a body that
      // breaks off (short, reset, timed out while streaming) is retried here, so a 5xx costs 1 + maxRetries
      // requests, not their square.
      let bodyStarted = false;
      try {
        const res = await backend.get({
          taskId: task.taskId,
          pieceNumber: piece.number,
          url: task.url,
          range: { start: piece.offset, length: piece.length },
          requestHeader: task.requestHeader,
          validator: task.validator,
          remoteCaller: task.remoteCaller,
          objectStorage: task.objectStorage,
          hub: task.hub,
          hdfs: task.hdfs,
          timeoutMs: this.o.pieceTimeoutMs,
          signal,
        });
        bodyStarted = true;
        watch?.bodyBegan(piece.length);
        const body = watch ? counted(res.body, (n) => watch.progress(n)) : res.body;
        const record = await this.o.storage.writePiece(task.taskId, piece, body, {
          trafficType: TrafficType.BACK_TO_SOURCE,
        });
        this.o.metrics.downloadTraffic('BACK_TO_SOURCE', record.length);
        return record;
      } catch (e) {
        this.o.metrics.backendRequestFailed(backend.scheme, 'GET');
        const err = this.timedOut(e, signal, runSignal, `piece ${piece.number} of task ${task.taskId}`);
        if (!bodyStarted || !err.retryable || attempt >= this.o.maxRetries || runSignal.aborted) throw err;
        this.o.log.warn(
          { taskId: task.taskId, piece: piece.number, attempt, err: err.message },
          'piece from source failed; retrying',
        );
        await new Promise((r) => setTimeout(r, RETRY_BACKOFF_MS * (attempt + 1)));
      } finally {
        this.o.metrics.backendRequestDuration(backend.scheme, 'GET', performance.now() - started);
      }
    }
  }

  /**
   * The piece from a parent's piece server: its length must be the piece's, its bytes must match the digest the
   * parent sent (a mismatch is never stored). One attempt; the caller chooses whom to ask next.
   */
  async fromParent(
    taskId: string,
    piece: PieceSpec,
    parent: PieceParent,
    runSignal: AbortSignal,
    downlink?: BodyMeter,
  ): Promise<PieceRecord> {
    const signal = AbortSignal.any([runSignal, AbortSignal.timeout(this.o.pieceTimeoutMs)]);
    let body: ReceivingBody | undefined;
    try {
      const res = await this.openParentPiece(taskId, piece, parent, signal);
      body = downlink?.began();
      const record = await this.o.storage.writePiece(taskId, piece, res.body, {
        trafficType: TrafficType.REMOTE_PEER,
        parentId: parent.parentId,
        expectedDigest: res.metadata.digest,
        relay: this.o.relay,
      });
      body?.ended(record.length);
      this.o.metrics.downloadTraffic('REMOTE_PEER', record.length);
      return record;
    } catch (e) {
      body?.ended();
      throw this.timedOut(e, signal, runSignal, `piece ${piece.number} from parent ${parent.parentId}`);
    }
  }

  /**
   * The piece from a parent into memory, verified against the parent's digest, not stored: a second copy of a
   * piece another parent is still writing (endgame) must not touch the content file until that one stopped.
   */
  async fromParentToMemory(
    taskId: string,
    piece: PieceSpec,
    parent: PieceParent,
    runSignal: AbortSignal,
    downlink?: BodyMeter,
  ): Promise<VerifiedPiece> {
    const signal = AbortSignal.any([runSignal, AbortSignal.timeout(this.o.pieceTimeoutMs)]);
    const what = `piece ${piece.number} from parent ${parent.parentId}`;
    let body: ReceivingBody | undefined;
    try {
      const res = await this.openParentPiece(taskId, piece, parent, signal);
      body = downlink?.began();
      const data = Buffer.allocUnsafe(piece.length);
      let at = 0;
      for await (const chunk of res.body) {
        if (at + chunk.length > data.length)
          throw new DfError('INVALID_ARGUMENT', `${what}: more bytes than its length`);
        chunk.copy(data, at);
        at += chunk.length;
      }
      if (at !== data.length) throw new DfError('INVALID_ARGUMENT', `${what}: ${at} of ${data.length} bytes`);
      body?.ended(at);
      const digest = pieceDigest(data);
      if (!res.metadata.digest || res.metadata.digest !== digest) {
        throw new DfError(
          'DIGEST_MISMATCH',
          `${what}: digest ${digest} does not match ${res.metadata.digest || '(none)'}`,
        );
      }
      return { data, digest, parentId: parent.parentId };
    } catch (e) {
      body?.ended();
      throw this.timedOut(e, signal, runSignal, what);
    }
  }

  /** Asks the parent's piece server for the piece; its metadata must give the piece's length. */
  private async openParentPiece(
    taskId: string,
    piece: PieceSpec,
    parent: PieceParent,
    signal: AbortSignal,
  ): Promise<DownloadedPiece> {
    const download = this.o.downloadPiece;
    if (!download) throw new DfError('INTERNAL', 'no piece transport: P2P is not enabled');
    const res = await download({
      ip: parent.ip,
      port: parent.tcpPort,
      taskId,
      number: piece.number,
      timeoutMs: this.o.pieceTimeoutMs,
      signal,
    });
    if (res.metadata.length !== piece.length) {
      res.cancel();
      throw new DfError(
        'INVALID_ARGUMENT',
        `parent sent ${res.metadata.length} bytes for a ${piece.length}-byte piece`,
      );
    }
    return res;
  }

  /** Stores a piece fetched into memory (fromParentToMemory). */
  async storeVerified(taskId: string, piece: PieceSpec, verified: VerifiedPiece): Promise<PieceRecord> {
    const record = await this.o.storage.writePiece(taskId, piece, once(verified.data), {
      trafficType: TrafficType.REMOTE_PEER,
      parentId: verified.parentId,
      expectedDigest: verified.digest,
    });
    this.o.metrics.downloadTraffic('REMOTE_PEER', record.length);
    return record;
  }

  /** A piece timeout is a retryable TIMEOUT naming the piece; anything else keeps its own cause. */
  private timedOut(e: unknown, signal: AbortSignal, runSignal: AbortSignal, what: string): DfError {
    if (signal.aborted && !runSignal.aborted) {
      return new DfError('TIMEOUT', `${what} timed out after ${this.o.pieceTimeoutMs} ms`, {
        cause: e,
        retryable: true,
      });
    }
    return toDfError(e, what);
  }
}
