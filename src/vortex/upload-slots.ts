// How many piece bodies the piece server sends at once, and which waiting request goes next. Sending every
// requested piece at once splits the uplink between them: all finish late and together, so a child that will
// relay a piece gets it only when everyone does. A few at a time, the same bytes leave at the same rate, but each
// piece is complete sooner and its holder can pass it on sooner (store-and-forward pipelines are only as fast as
// a piece's time through one hop). Waiting requests go by priority — a seed ranks the pieces only one child has
// heard of first, since the swarm waits on them — then in arrival order.

export interface UploadSlotsOptions {
  /**
   * Bodies sent at once: a number, or a function of the length of the piece about to go (so that the count can
   * follow the uplink: a slow link sends one piece at a time, whole in a few seconds, not four in four times that).
   */
  slots: number | ((pieceLength: number) => number);
  /** Lower goes first; default: every request ranks the same (arrival order). */
  priority?: (taskId: string, number: number) => number;
}

interface Waiting {
  taskId: string;
  number: number;
  length: number;
  grant: () => void;
  signal?: AbortSignal;
}

export class UploadSlots {
  private readonly slotsFor: (pieceLength: number) => number;
  private readonly priority?: (taskId: string, number: number) => number;
  private busy = 0;
  private waiting: Waiting[] = [];

  constructor(options: UploadSlotsOptions) {
    const slots = options.slots;
    this.slotsFor = typeof slots === 'number' ? () => slots : slots;
    this.priority = options.priority;
  }

  get inUse(): number {
    return this.busy;
  }

  get queued(): number {
    return this.waiting.length;
  }

  /**
   * Resolves with a release function once a slot is free for this piece; rejects with the signal's reason if it
   * aborts first (the child went away), without taking a slot.
   */
  acquire(taskId: string, number: number, length: number, signal?: AbortSignal): Promise<() => void> {
    if (this.busy < this.slots(length) && this.waiting.length === 0) {
      this.busy++;
      return Promise.resolve(this.releaser());
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
      };
      const onAbort = (): void => {
        this.waiting = this.waiting.filter((x) => x !== w);
        reject(signal!.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(w);
    });
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
    while (this.waiting.length > 0 && this.busy < this.slots(this.waiting[0]!.length)) {
      // Priorities can change while a request waits (a seed releases a piece to everyone): rank now.
      const rank = (w: Waiting): number => this.priority?.(w.taskId, w.number) ?? 0;
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

/** Slots when uploading at most this many piece bodies at once. */
const UPLOAD_SLOTS_MAX = 4;

/**
 * Enough slots to fill a link with a few TCP streams, few enough that each piece leaves whole soon and its child
 * can relay it: about one piece per second of the upload rate measured now (one at a time on a slow link, where
 * four at once took four times as long each), 1 to UPLOAD_SLOTS_MAX.
 */
export function uploadSlotsFor(uploadBytesPerSecond: number, pieceLength: number): number {
  return Math.min(UPLOAD_SLOTS_MAX, Math.max(1, Math.ceil(uploadBytesPerSecond / Math.max(1, pieceLength))));
}
