// One AnnouncePeer bidi stream of a peer (grpc/scheduler.rs, resource/task.rs): typed sends that carry the ids,
// and `next()` for the scheduler's replies, each bounded by scheduler.scheduleTimeout. The client never relies on
// half-close semantics: it ends its side after a terminal request and cancels when it gives up.

import type { ClientDuplexStream } from '@grpc/grpc-js';
import { DfError } from '../core/errors.js';
import type {
  AnnouncePeerRequest,
  AnnouncePeerResponse,
  AnnouncePersistentCachePeerRequest,
  AnnouncePersistentCachePeerResponse,
  AnnouncePersistentPeerRequest,
  AnnouncePersistentPeerResponse,
  SchedulerClient,
} from '../gen/scheduler.js';

export interface PeerIds {
  hostId: string;
  taskId: string;
  peerId: string;
}

/** The oneof part of an AnnouncePeerRequest (exactly one field set). */
export type AnnouncePeerMessage = Omit<AnnouncePeerRequest, keyof PeerIds>;

/**
 * One announce stream of any kind (AnnouncePeer, AnnouncePersistentPeer, AnnouncePersistentCachePeer): the same
 * lifecycle, only the messages differ. `rpc` names it in errors.
 */
export class AnnounceStream<Req extends PeerIds, Res> {
  readonly ids: PeerIds;
  private readonly call: ClientDuplexStream<Req, Res>;
  private readonly replies: Res[] = [];
  private failure?: DfError;
  /** The gRPC status code the stream failed with, if it did (NOT_FOUND = the scheduler forgot our host). */
  failureCode?: number;
  private ended = false;
  private wake?: () => void;
  private readonly scheduleTimeoutMs: number;

  private readonly rpc: string;

  constructor(call: ClientDuplexStream<Req, Res>, ids: PeerIds, scheduleTimeoutMs: number, rpc: string) {
    this.ids = ids;
    this.scheduleTimeoutMs = scheduleTimeoutMs;
    this.rpc = rpc;
    this.call = call;
    this.call.on('data', (r: Res) => {
      this.replies.push(r);
      this.wake?.();
    });
    this.call.on('error', (e: Error & { code?: number; details?: string }) => {
      this.failureCode ??= e.code;
      this.failure ??= new DfError('UNAVAILABLE', `scheduler ${rpc} failed: ${e.details ?? e.message}`, {
        cause: e,
      });
      this.wake?.();
    });
    this.call.on('end', () => {
      this.ended = true;
      this.wake?.();
    });
  }

  get closed(): boolean {
    return this.ended || this.failure !== undefined;
  }

  /** Sends one request; errors after the stream failed are ignored (the flow learns it from next()). */
  send(message: Omit<Req, keyof PeerIds>): void {
    if (this.closed || this.call.writableEnded) return;
    this.call.write({ ...this.ids, ...message } as Req);
  }

  /** The scheduler's next reply; fails on error, on end of stream, or after scheduleTimeout. */
  async next(signal?: AbortSignal): Promise<Res> {
    const deadline = Date.now() + this.scheduleTimeoutMs;
    while (this.replies.length === 0) {
      if (this.failure) throw this.failure;
      if (this.ended) throw new DfError('UNAVAILABLE', `scheduler ended the ${this.rpc} stream`);
      if (signal?.aborted) throw new DfError('CANCELLED', 'download cancelled');
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new DfError('TIMEOUT', `scheduler did not answer within ${this.scheduleTimeoutMs} ms`);
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        const onAbort = () => resolve();
        signal?.addEventListener('abort', onAbort, { once: true });
        this.wake = () => {
          clearTimeout(t);
          signal?.removeEventListener('abort', onAbort);
          resolve();
        };
      });
      this.wake = undefined;
    }
    return this.replies.shift()!;
  }

  /** Sends a terminal request and ends our side. */
  finish(message: Omit<Req, keyof PeerIds>): void {
    this.send(message);
    this.close();
  }

  /** Ends our side and drops the call. Idempotent. */
  close(): void {
    if (!this.call.writableEnded) this.call.end();
    // The scheduler ends the call after a terminal request; cancel shortly after in case it does not, so the
    // HTTP/2 stream is never left open.
    const t = setTimeout(() => this.call.cancel(), 1000);
    t.unref();
  }
}

export class AnnouncePeerStream extends AnnounceStream<AnnouncePeerRequest, AnnouncePeerResponse> {
  constructor(client: SchedulerClient, ids: PeerIds, scheduleTimeoutMs: number) {
    super(client.announcePeer(), ids, scheduleTimeoutMs, 'AnnouncePeer');
  }
}

/** The stream of a persistent cache task's export or replica (AnnouncePersistentCachePeer). */
export class AnnouncePersistentCachePeerStream extends AnnounceStream<
  AnnouncePersistentCachePeerRequest,
  AnnouncePersistentCachePeerResponse
> {
  constructor(client: SchedulerClient, ids: PeerIds, scheduleTimeoutMs: number) {
    super(client.announcePersistentCachePeer(), ids, scheduleTimeoutMs, 'AnnouncePersistentCachePeer');
  }
}

/** The stream of a persistent task's export or replica (AnnouncePersistentPeer, dfstore). */
export class AnnouncePersistentPeerStream extends AnnounceStream<
  AnnouncePersistentPeerRequest,
  AnnouncePersistentPeerResponse
> {
  constructor(client: SchedulerClient, ids: PeerIds, scheduleTimeoutMs: number) {
    super(client.announcePersistentPeer(), ids, scheduleTimeoutMs, 'AnnouncePersistentPeer');
  }
}
