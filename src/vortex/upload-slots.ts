// How many piece bodies the piece server sends at once, and which waiting request goes next. Sending every
// requested piece at once splits the uplink between them: all finish late and together, so a child that will
// relay a piece gets it only when everyone does. A few at a time, the same bytes leave at the same rate, but each
// piece is complete sooner and its holder can pass it on sooner (store-and-forward pipelines are only as fast as
// a piece's time through one hop). Waiting requests go by priority — a seed ranks the pieces no copy of which has
// left it first, since the swarm waits on them — then in arrival order.
// The queue is short (maxWaiting): a request beyond it is refused at once as busy (UploadBusy), so the child asks
// another holder now or this one again shortly, instead of waiting behind every other child. In a 32-peer swarm
// every child asked the first holder of each fresh piece and waited there up to 100 s while later holders idled.
// Requests the priority ranks 0 while others rank higher (a seed's pieces no copy of which has left it) are not
// refused while they rank 0: that child has nowhere else to go. One whose rank fell while it waited is refused
// then, beyond the queue, as on arrival (refuseOutranked).

/** How the busy answer's message begins: the piece client knows a busy parent by it. */
export const BUSY_PREFIX = 'busy: ';

/** The refusal of a request beyond the queue: the piece server answers it as busy. */
export class UploadBusy extends Error {
  constructor(readonly queued: number) {
    super(
      `${BUSY_PREFIX}${queued} requests are waiting for an upload slot, ask another parent or again shortly`,
    );
    this.name = 'UploadBusy';
  }
}

export interface UploadSlotsOptions {
  /**
   * Bodies sent at once: a number, or a function of the length of the piece about to go (so that the count can
   * follow the uplink: a slow link sends one piece at a time, whole in a few seconds, not four in four times that).
   */
  slots: number | ((pieceLength: number) => number);
  /** Lower goes first; default: every request ranks the same (arrival order). */
  priority?: (taskId: string, number: number) => number;
  /** Requests that may wait for a slot; one more is refused with UploadBusy (default: no limit). */
  maxWaiting?: number;
}

interface Waiting {
  taskId: string;
  number: number;
  length: number;
  grant: () => void;
  /** Refused after all, as busy (see grantNext). */
  refuse: (e: UploadBusy) => void;
  signal?: AbortSignal;
}

export class UploadSlots {
  private readonly slotsFor: (pieceLength: number) => number;
  private readonly priority?: (taskId: string, number: number) => number;
  private readonly maxWaiting: number;
  private busy = 0;
  private waiting: Waiting[] = [];

  constructor(options: UploadSlotsOptions) {
    const slots = options.slots;
    this.slotsFor = typeof slots === 'number' ? () => slots : slots;
    this.priority = options.priority;
    this.maxWaiting = options.maxWaiting ?? Infinity;
  }

  get inUse(): number {
    return this.busy;
  }

  get queued(): number {
    return this.waiting.length;
  }

  /**
   * Resolves with a release function once a slot is free for this piece; rejects with the signal's reason if it
   * aborts first (the child went away), without taking a slot, and with UploadBusy at once when the queue is full.
   */
  acquire(taskId: string, number: number, length: number, signal?: AbortSignal): Promise<() => void> {
    if (this.busy < this.slots(length) && this.waiting.length === 0) {
      this.busy++;
      return Promise.resolve(this.releaser());
    }
    if (this.waiting.length >= this.maxWaiting && !this.mustWait(taskId, number)) {
      return Promise.reject(new UploadBusy(this.waiting.length));
    }
    return new Promise((resolve, reject) => {
      const w: Waiting = {
        taskId,
        number,
        length,
        signal,
        grant: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve(this.releaser());
        },
        refuse: (e) => {
          signal?.removeEventListener('abort', onAbort);
          reject(e);
        },
      };
      const onAbort = (): void => {
        this.waiting = this.waiting.filter((x) => x !== w);
        reject(signal!.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(w);
    });
  }

  /**
   * A request let in past maxWaiting because it ranked first may have lost that rank while it waited: a seed's
   * fresh piece whose first copy went to another child meanwhile. Every later fresh piece would go before it — a
   * 32-peer child waited 34 s at the seed — while the piece is now to be had elsewhere. Beyond maxWaiting such a
   * request is refused as busy now, as it would be on arrival.
   */
  private refuseOutranked(rank: (w: Waiting) => number): void {
    if (this.maxWaiting === Infinity || this.priority === undefined) return;
    let kept = 0;
    const refused: Waiting[] = [];
    this.waiting = this.waiting.filter((w) => {
      if (rank(w) === 0) return true;
      if (kept < this.maxWaiting) {
        kept++;
        return true;
      }
      refused.push(w);
      return false;
    });
    for (const w of refused) w.refuse(new UploadBusy(this.waiting.length));
  }

  /** A piece ranked first by a priority that ranks others lower: its child can take it nowhere else. */
  private mustWait(taskId: string, number: number): boolean {
    return this.priority !== undefined && this.priority(taskId, number) === 0;
  }

  private slots(length: number): number {
    return Math.max(1, Math.floor(this.slotsFor(length)));
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.busy--;
      this.grantNext();
    };
  }

  private grantNext(): void {
    // Priorities can change while a request waits (a seed releases a piece to everyone): rank now.
    const rank = (w: Waiting): number => this.priority?.(w.taskId, w.number) ?? 0;
    this.refuseOutranked(rank);
    while (this.waiting.length > 0 && this.busy < this.slots(this.waiting[0]!.length)) {
      let best = 0;
      let bestRank = rank(this.waiting[0]!);
      for (let i = 1; i < this.waiting.length; i++) {
        const r = rank(this.waiting[i]!);
        // Arrival order within a rank: the queue is kept in arrival order, so the first of a rank wins.
        if (r < bestRank) {
          best = i;
          bestRank = r;
        }
      }
      const [w] = this.waiting.splice(best, 1);
      this.busy++;
      w!.grant();
    }
  }
}
