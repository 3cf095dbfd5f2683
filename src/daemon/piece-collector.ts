// The piece collector (resource/piece_collector.rs): opens DfdaemonUpload.SyncPieces to every candidate parent
// and records which parent has which piece, and where its Vortex server listens. Piece downloads ask it for the
// holders of a piece; it answers as soon as one is known. One collector serves every parent set of a task run,
// rescheduled parents included, so the flow is the same for all task kinds.

import type { ClientReadableStream } from '@grpc/grpc-js';
import type { Peer } from '../gen/common.js';
import type { DfdaemonUploadClient, SyncPiecesResponse } from '../gen/dfdaemon.js';

export interface PieceHolder {
  parentId: string;
  hostId: string;
  ip: string;
  tcpPort: number;
}

export interface PieceCollectorOptions {
  hostId: string;
  taskId: string;
  interested: number[];
  /** The upload gRPC client of a parent's host (`host.ip:host.port`). */
  uploadClient: (ip: string, port: number) => DfdaemonUploadClient;
  log: { debug(o: object, m: string): void; warn(o: object, m: string): void };
}

interface Waiter {
  number: number;
  resolve: (holders: PieceHolder[] | undefined) => void;
}

export class PieceCollector {
  private readonly o: PieceCollectorOptions;
  private readonly holders = new Map<number, Map<string, PieceHolder>>();
  private readonly failed = new Set<string>();
  private readonly streams = new Map<string, ClientReadableStream<SyncPiecesResponse>>();
  private readonly knownParents = new Map<string, Peer>();
  private waiters: Waiter[] = [];
  private finished = false;
  private exhaustedListener?: () => void;

  constructor(options: PieceCollectorOptions) {
    this.o = options;
  }

  /** Parents ever given to this collector, in order (the candidate list for ReschedulePeer). */
  get parents(): Peer[] {
    return [...this.knownParents.values()];
  }

  /** Parents whose SyncPieces stream is still open. */
  get activeParents(): number {
    return this.streams.size;
  }

  /** Called when every parent stream has ended while some piece is still awaited: time to reschedule. */
  onExhausted(listener: () => void): void {
    this.exhaustedListener = listener;
  }

  addParents(parents: Peer[]): void {
    for (const parent of parents) {
      if (this.knownParents.has(parent.id) || !parent.host) continue;
      this.knownParents.set(parent.id, parent);
      this.sync(parent);
    }
    this.checkExhausted();
  }

  private sync(parent: Peer): void {
    const host = parent.host!;
    const client = this.o.uploadClient(host.ip, host.port);
    const stream = client.syncPieces({
      hostId: this.o.hostId,
      taskId: this.o.taskId,
      interestedPieceNumbers: this.o.interested,
    });
    this.streams.set(parent.id, stream);
    stream.on('data', (r: SyncPiecesResponse) => {
      if (r.tcpPort === undefined) return; // only Vortex TCP is spoken here (QUIC may come later)
      this.add(r.number, { parentId: parent.id, hostId: host.id, ip: r.ip || host.ip, tcpPort: r.tcpPort });
    });
    const done = (err?: Error) => {
      if (this.streams.get(parent.id) !== stream) return;
      this.streams.delete(parent.id);
      if (err) this.o.log.debug({ parent: parent.id, err: err.message }, 'SyncPieces ended with an error');
      this.checkExhausted();
    };
    stream.on('error', done);
    stream.on('end', () => done());
  }

  private add(number: number, holder: PieceHolder): void {
    let m = this.holders.get(number);
    if (!m) this.holders.set(number, (m = new Map()));
    m.set(holder.parentId, holder);
    const ready = this.waiters.filter((w) => w.number === number);
    if (ready.length === 0) return;
    this.waiters = this.waiters.filter((w) => w.number !== number);
    const list = this.available(number);
    for (const w of ready) w.resolve(list);
  }

  private available(number: number): PieceHolder[] {
    const m = this.holders.get(number);
    if (!m) return [];
    return [...m.values()].filter((h) => !this.failed.has(`${h.parentId}/${number}`));
  }

  /**
   * Holders of the piece not known to have failed it; waits while parent streams (or a reschedule) may still
   * bring one. Undefined when none can: every stream ended and the flow called finish(), or after `timeoutMs`.
   */
  waitFor(number: number, timeoutMs: number, signal?: AbortSignal): Promise<PieceHolder[] | undefined> {
    const now = this.available(number);
    if (now.length > 0) return Promise.resolve(now);
    if (this.finished) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const t = setTimeout(() => settle(undefined), timeoutMs);
      const onAbort = () => settle(undefined);
      const settle = (v: PieceHolder[] | undefined) => {
        clearTimeout(t);
        signal?.removeEventListener('abort', onAbort);
        this.waiters = this.waiters.filter((w) => w !== waiter);
        resolve(v);
      };
      const waiter: Waiter = { number, resolve: settle };
      this.waiters.push(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.checkExhausted();
    });
  }

  /** A parent failed to give this piece (dead, corrupt, missing): do not offer it for this piece again. */
  markFailed(parentId: string, number: number): void {
    this.failed.add(`${parentId}/${number}`);
  }

  private checkExhausted(): void {
    if (this.finished || this.streams.size > 0 || this.waiters.length === 0) return;
    // Waiters whose piece some live holder has were answered already; what is left needs new parents.
    this.exhaustedListener?.();
  }

  /** No more parents will come: every waiter (now and later) without a holder gets undefined. */
  finish(): void {
    this.finished = true;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters)
      w.resolve(this.available(w.number).length ? this.available(w.number) : undefined);
  }

  close(): void {
    this.finish();
    for (const s of this.streams.values()) s.cancel();
    this.streams.clear();
  }
}
