// One in-memory run of a task: which pieces are finished, in flight or wanted, shared by every request for
// the same task id, so that concurrent requests cause each piece to be fetched once. Which wanted piece starts
// next, and from where, is the run's `PieceSource`'s choice (the source in piece order, or the P2P flow by
// availability and rarity); the run bounds the pieces in flight by `concurrentPieceCount`.

import { type DfError, toDfError } from '../core/errors.js';
import type { PieceRecord } from '../storage/storage.js';

export interface PieceSpec {
  number: number;
  offset: number;
  length: number;
}

/** Fetches one piece into storage and returns its record. Throws a DfError on failure. */
export type PieceFetcher = (piece: PieceSpec, signal: AbortSignal) => Promise<PieceRecord>;

/**
 * Thrown by a PieceJob's fetch when this attempt failed but the piece may still come from elsewhere (another
 * parent, a reschedule, the source): the piece goes back into the queue, and no request sees an error.
 */
export class RetryPiece extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'RetryPiece';
  }
}

/** The pieces a source may start now. */
export interface PieceCandidates {
  /** Wanted, neither finished nor in flight. */
  readonly queued: ReadonlySet<number>;
  /** The subset an in-order consumer (the proxy) waits for: lowest first, whatever else the source prefers. */
  readonly inOrder: ReadonlySet<number>;
  /** Pieces in flight now. */
  readonly inFlight: ReadonlySet<number>;
}

/** A piece the source decided to start, and how. */
export interface PieceJob {
  number: number;
  fetch: PieceFetcher;
}

/**
 * Decides which queued piece starts next and where it comes from. `next` returns undefined when nothing should
 * start now (no parent has a wanted piece yet, a parent's slots are full, the scheduler has not answered); the
 * source then calls the wake function it was given once it could start more.
 */
export interface PieceSource {
  next(candidates: PieceCandidates): PieceJob | undefined;
  onWake(wake: () => void): void;
  /** Pieces in flight at most, when the source knows better than the run's concurrency (a swarm). */
  maxInFlight?(): number;
}

/** A source that takes pieces in piece order from one fetcher (the origin; the lowest in-order piece first). */
export function inOrderSource(fetcher: PieceFetcher): PieceSource {
  return {
    next: (c) => {
      const n = lowest(c.inOrder.size > 0 ? c.inOrder : c.queued);
      return n === undefined ? undefined : { number: n, fetch: fetcher };
    },
    onWake: () => undefined,
  };
}

/** The lowest number of a set, or undefined. */
export function lowest(numbers: Iterable<number>): number | undefined {
  let best: number | undefined;
  for (const n of numbers) if (best === undefined || n < best) best = n;
  return best;
}

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
  /** Wanted pieces neither finished nor in flight. */
  private readonly queue = new Set<number>();
  private readonly inFlight = new Set<number>();
  private readonly listeners = new Set<Listener>();
  private readonly concurrency: number;
  private readonly controller = new AbortController();
  private source?: PieceSource;
  private readonly endListeners = new Set<() => void>();
  /** Waiting for no fetch to be in flight (settled()). */
  private readonly idleWaiters = new Set<() => void>();
  private ended = false;

  constructor(taskId: string, pieces: PieceSpec[], finished: PieceRecord[], concurrency: number) {
    this.taskId = taskId;
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

  get hasSource(): boolean {
    return this.source !== undefined;
  }

  /** Sets where missing pieces come from; the first request to need a fetch decides (see TaskManager). */
  setSource(source: PieceSource): void {
    if (this.source) return;
    this.source = source;
    source.onWake(() => this.pump());
    this.pump();
  }

  /** setSource with one fetcher, in piece order. */
  setFetcher(fetcher: PieceFetcher): void {
    this.setSource(inOrderSource(fetcher));
  }

  /** Pieces fetched by this run right now. */
  get piecesInFlight(): ReadonlySet<number> {
    return this.inFlight;
  }

  /** Wanted pieces waiting for their fetch to start. */
  get piecesQueued(): ReadonlySet<number> {
    return this.queue;
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
      if (c === 0 && !this.inFlight.has(n)) this.queue.add(n);
    }
    this.pump();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      for (const n of mine) {
        decrement(this.wanted, n);
        if (!this.wanted.has(n)) this.queue.delete(n);
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

  /**
   * Resolves true once no fetch of this run is in flight (after abort() they end quickly: every fetch gets the
   * run's signal), or false after `timeoutMs`. An eviction waits for it so no late piece of this run lands in the
   * task's next content file.
   */
  settled(timeoutMs: number): Promise<boolean> {
    if (this.inFlight.size === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.idleWaiters.delete(done);
        resolve(false);
      }, timeoutMs);
      timer.unref();
      this.idleWaiters.add(done);
    });
  }

  private pump(): void {
    const source = this.source;
    if (!source) return;
    const inOrder = new Set<number>();
    for (const n of this.wantedInOrder.keys()) if (this.queue.has(n)) inOrder.add(n);
    const cap = Math.max(1, source.maxInFlight?.() ?? this.concurrency);
    while (this.inFlight.size < cap && this.queue.size > 0) {
      const job = source.next({ queued: this.queue, inOrder, inFlight: this.inFlight });
      // A source may only start a queued piece (the queue holds wanted pieces neither finished nor in flight).
      if (!job || !this.queue.has(job.number)) break;
      const n = job.number;
      this.queue.delete(n);
      inOrder.delete(n);
      this.inFlight.add(n);
      void this.fetch(n, job.fetch);
    }
  }

  private async fetch(n: number, fetcher: PieceFetcher): Promise<void> {
    const spec = this.specs.get(n)!;
    let ev: PieceEvent;
    try {
      if (this.controller.signal.aborted) throw this.controller.signal.reason;
      const piece = await fetcher(spec, this.controller.signal);
      this.finished.set(n, piece);
      ev = { piece };
    } catch (e) {
      ev = { number: n, error: toDfError(e, `piece ${n}`) };
      if (e instanceof RetryPiece && !this.controller.signal.aborted) {
        this.inFlight.delete(n);
        if (this.wanted.has(n)) this.queue.add(n);
        this.pump();
        this.notifyIdle();
        return;
      }
    }
    this.inFlight.delete(n);
    // A failed piece stays wanted by nobody until someone asks again: each request decides for itself.
    if (ev.error) {
      this.wanted.delete(n);
      this.wantedInOrder.delete(n);
      this.queue.delete(n);
    }
    for (const l of [...this.listeners]) l(ev);
    this.pump();
    this.notifyIdle();
  }

  private notifyIdle(): void {
    if (this.inFlight.size > 0 || this.idleWaiters.size === 0) return;
    const waiters = [...this.idleWaiters];
    this.idleWaiters.clear();
    for (const w of waiters) w();
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
