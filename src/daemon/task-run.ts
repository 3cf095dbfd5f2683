// One in-memory run of a task: which pieces are finished, in flight or wanted, shared by every request for
// the same task id, so that concurrent requests cause each piece to be fetched once. Pieces are fetched by
// a `PieceFetcher` (back-to-source today; parents first once the scheduler flow lands) with at most
// `concurrentPieceCount` in flight for the task.

import { type DfError, toDfError } from '../core/errors.js';
import type { PieceRecord } from '../storage/storage.js';

export interface PieceSpec {
  number: number;
  offset: number;
  length: number;
}

/** Fetches one piece into storage and returns its record. Throws a DfError on failure. */
export type PieceFetcher = (piece: PieceSpec, signal: AbortSignal) => Promise<PieceRecord>;

export type PieceEvent =
  { piece: PieceRecord; error?: undefined } | { piece?: undefined; number: number; error: DfError };

type Listener = (ev: PieceEvent) => void;

export class TaskRun {
  readonly taskId: string;
  readonly finished = new Map<number, PieceRecord>();
  private readonly specs = new Map<number, PieceSpec>();
  private readonly wanted = new Map<number, number>();
  /** Pieces wanted by a consumer that sends bytes in order (the proxy): fetched lowest number first. */
  private readonly wantedInOrder = new Map<number, number>();
  private readonly queue: number[] = [];
  private readonly inFlight = new Set<number>();
  private readonly listeners = new Set<Listener>();
  private readonly concurrency: number;
  private readonly controller = new AbortController();
  private fetcher?: PieceFetcher;
  /**
   * Take queued pieces in random order rather than in order. For P2P runs: peers that start together then hold
   * different pieces early and can trade them, instead of all queuing on the seed for piece 0, 1, 2, ...
   */
  private randomOrder = false;
  private readonly random: () => number;
  private readonly endListeners = new Set<() => void>();
  private ended = false;

  constructor(
    taskId: string,
    pieces: PieceSpec[],
    finished: PieceRecord[],
    concurrency: number,
    random: () => number = Math.random,
  ) {
    this.taskId = taskId;
    this.random = random;
    this.concurrency = Math.max(1, concurrency);
    for (const p of pieces) this.specs.set(p.number, p);
    for (const p of finished) this.finished.set(p.number, p);
  }

  get pieceCount(): number {
    return this.specs.size;
  }

  get isFinished(): boolean {
    return this.finished.size === this.specs.size;
  }

  /** Number of requests currently holding this run. */
  users = 0;

  get hasFetcher(): boolean {
    return this.fetcher !== undefined;
  }

  /** Sets how missing pieces are fetched; the first request to need a fetch decides (see TaskManager). */
  setFetcher(fetcher: PieceFetcher, options: { randomOrder?: boolean } = {}): void {
    if (this.fetcher) return;
    this.fetcher = fetcher;
    this.randomOrder = options.randomOrder ?? false;
    this.pump();
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Asks for pieces to be fetched. Returns a release function: pieces nobody wants any more are dropped from
   * the queue (a piece already in flight finishes and is kept).
   */
  want(numbers: Iterable<number>, options: { inOrder?: boolean } = {}): () => void {
    const mine: number[] = [];
    for (const n of numbers) {
      if (this.finished.has(n) || !this.specs.has(n)) continue;
      mine.push(n);
      const c = this.wanted.get(n) ?? 0;
      this.wanted.set(n, c + 1);
      if (options.inOrder) increment(this.wantedInOrder, n);
      if (c === 0 && !this.inFlight.has(n)) this.queue.push(n);
    }
    this.pump();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      for (const n of mine) {
        decrement(this.wanted, n);
        if (options.inOrder) decrement(this.wantedInOrder, n);
      }
    };
  }

  /** Whether the run ended: no request holds it any more, so no piece will be added by it. */
  get isEnded(): boolean {
    return this.ended;
  }

  /** Called once when the run ends (SyncPieces waits on in-flight pieces until then). */
  onEnd(listener: () => void): () => void {
    if (this.ended) {
      listener();
      return () => undefined;
    }
    this.endListeners.add(listener);
    return () => this.endListeners.delete(listener);
  }

  /** Ends the run: called by the task manager when the last request releases it. Idempotent. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    for (const l of [...this.endListeners]) l();
    this.endListeners.clear();
  }

  /** Stops every fetch of this run (daemon shutdown or task deletion). */
  abort(reason: DfError): void {
    this.controller.abort(reason);
  }

  private pump(): void {
    if (!this.fetcher) return;
    while (this.inFlight.size < this.concurrency && this.queue.length > 0) {
      const n = this.queue.splice(this.nextIndex(), 1)[0]!;
      if (!this.wanted.has(n) || this.finished.has(n) || this.inFlight.has(n)) continue;
      this.inFlight.add(n);
      void this.fetch(n);
    }
  }

  /**
   * Which queued piece goes next: the lowest one a consumer needs in order, if any (a proxy client waits for
   * piece k before it can get k + 1); else a random one for P2P runs, else the first queued.
   */
  private nextIndex(): number {
    if (this.wantedInOrder.size > 0) {
      let best = -1;
      for (let i = 0; i < this.queue.length; i++) {
        const n = this.queue[i]!;
        if (this.wantedInOrder.has(n) && (best < 0 || n < this.queue[best]!)) best = i;
      }
      if (best >= 0) return best;
    }
    return this.randomOrder ? Math.floor(this.random() * this.queue.length) : 0;
  }

  private async fetch(n: number): Promise<void> {
    const spec = this.specs.get(n)!;
    let ev: PieceEvent;
    try {
      if (this.controller.signal.aborted) throw this.controller.signal.reason;
      const piece = await this.fetcher!(spec, this.controller.signal);
      this.finished.set(n, piece);
      ev = { piece };
    } catch (e) {
      ev = { number: n, error: toDfError(e, `piece ${n}`) };
    } finally {
      this.inFlight.delete(n);
    }
    // A failed piece stays wanted by nobody until someone asks again: each request decides for itself.
    if (ev.error) {
      this.wanted.delete(n);
      this.wantedInOrder.delete(n);
    }
    for (const l of [...this.listeners]) l(ev);
    this.pump();
  }
}

function increment(m: Map<number, number>, n: number): void {
  m.set(n, (m.get(n) ?? 0) + 1);
}

function decrement(m: Map<number, number>, n: number): void {
  const c = (m.get(n) ?? 1) - 1;
  if (c <= 0) m.delete(n);
  else m.set(n, c);
}
