// Pieces still arriving from a parent, which this peer may already relay to its own children (cut-through).
//
// Store-and-forward makes every hop of a piece a full piece time (3.4 s for 4 MiB at 10 Mbit/s), so a fresh piece
// crosses a swarm of five hops in ~17 s. A piece from a parent comes with its length and digest in the Vortex
// header before its first byte, which is all a Vortex answer needs: a child can be sent that header and the bytes
// as they reach our content file, and it checks the digest at the end as it always does.
//
// Invariant: a reader is never given a piece's last byte before the piece is stored (its digest matched and its
// record is in the metadata), so even a child that does not check digests never completes a wrong piece; when the
// piece fails, every reader fails and the child takes the piece elsewhere.

import { DfError } from '../core/errors.js';

/** What SyncPieces needs to announce a piece (a PieceRecord has more). */
export interface PieceSpan {
  number: number;
  offset: number;
  length: number;
}

type Listener = (piece: ArrivingPiece) => void;

/** One piece being written from a parent: how many of its bytes are in the content file. */
export class ArrivingPiece implements PieceSpan {
  /** Bytes from the piece's start that are in the content file and may be relayed. */
  private ready = 0;
  private failure?: DfError;
  private stored = false;
  private waiters: Array<() => void> = [];

  constructor(
    readonly taskId: string,
    readonly number: number,
    readonly offset: number,
    readonly length: number,
    /** The digest the parent sent: the relayed header carries it, and the piece is stored only if it matches. */
    readonly digest: string,
    readonly parentId: string,
  ) {}

  /** `written` bytes from the start are in the content file (the last one is held back until stored()). */
  progress(written: number): void {
    const limit = this.stored ? this.length : this.length - 1;
    const next = Math.min(written, limit);
    if (next <= this.ready) return;
    this.ready = next;
    this.notify();
  }

  /** The piece is stored and verified: every byte may go. */
  finish(): void {
    this.stored = true;
    this.ready = this.length;
    this.notify();
  }

  /** The piece failed (parent gone, digest mismatch, cancelled): readers stop with this error. */
  fail(reason: DfError): void {
    if (this.stored) return;
    this.failure ??= reason;
    this.notify();
  }

  get done(): boolean {
    return this.stored || this.failure !== undefined;
  }

  /**
   * Resolves with the number of relayable bytes once it exceeds `have` (or the piece is whole); throws the
   * piece's failure, or a CANCELLED error once `signal` aborts.
   */
  async waitBeyond(have: number, signal?: AbortSignal): Promise<number> {
    for (;;) {
      if (this.failure) throw this.failure;
      if (this.ready > have || this.ready === this.length) return this.ready;
      if (signal?.aborted) throw new DfError('CANCELLED', `relay of piece ${this.number} cancelled`);
      await new Promise<void>((resolve) => {
        const onAbort = (): void => resolve();
        signal?.addEventListener('abort', onAbort, { once: true });
        this.waiters.push(() => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        });
      });
    }
  }

  private notify(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}

/** Every piece arriving on this daemon, by task, and who wants to hear of new ones. */
export class ArrivingPieces {
  private readonly tasks = new Map<string, Map<number, ArrivingPiece>>();
  private readonly listeners = new Map<string, Set<Listener>>();

  /** A piece starts arriving: it may be relayed from now on. A second writer of the same piece is not relayed. */
  start(piece: ArrivingPiece): boolean {
    let pieces = this.tasks.get(piece.taskId);
    if (!pieces) {
      pieces = new Map();
      this.tasks.set(piece.taskId, pieces);
    }
    if (pieces.has(piece.number)) return false;
    pieces.set(piece.number, piece);
    for (const l of [...(this.listeners.get(piece.taskId) ?? [])]) l(piece);
    return true;
  }

  /** The piece is no longer arriving (stored or failed); readers already holding it keep their object. */
  end(piece: ArrivingPiece): void {
    const pieces = this.tasks.get(piece.taskId);
    if (pieces?.get(piece.number) !== piece) return;
    pieces.delete(piece.number);
    if (pieces.size === 0) this.tasks.delete(piece.taskId);
  }

  get(taskId: string, number: number): ArrivingPiece | undefined {
    return this.tasks.get(taskId)?.get(number);
  }

  /** The task's pieces arriving now. */
  list(taskId: string): ArrivingPiece[] {
    return [...(this.tasks.get(taskId)?.values() ?? [])];
  }

  /** Calls `listener` for every piece of the task that starts arriving; returns the unsubscribe function. */
  subscribe(taskId: string, listener: Listener): () => void {
    let set = this.listeners.get(taskId);
    if (!set) {
      set = new Set();
      this.listeners.set(taskId, set);
    }
    set.add(listener);
    return () => {
      const s = this.listeners.get(taskId);
      s?.delete(listener);
      if (s?.size === 0) this.listeners.delete(taskId);
    };
  }
}
