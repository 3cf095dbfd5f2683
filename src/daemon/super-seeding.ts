// Announcement control on a seed peer (BitTorrent's super-seeding, within SyncPieces as it is): while the seed's
// own download of a task runs, a fresh piece is announced to one child first, and to more children as copies of
// it leave the seed (each upload doubles the audience); pieces stored a while ago, and every piece once the seed
// holds the whole task, go to every child. So the seed's uplink carries each piece about once and the children
// trade the rest among themselves, instead of every child queuing on the seed for every piece.
// Children that cannot reach the piece elsewhere still get it from the seed after the release time — an upstream
// child, which may not trade with our peers, never starves.

import type { PieceRecord } from '../storage/storage.js';

/** One child's SyncPieces stream: the pieces it asked for, and how to tell it about one. */
export interface ChildStream {
  interested: ReadonlySet<number>;
  announce(piece: PieceRecord): void;
}

export interface SuperSeedingOptions {
  /** A piece stored at least this long ago is announced to everyone (also the floor of the adaptive release). */
  minReleaseMs: number;
  /** The release is at least this many times the typical time to serve one piece. */
  releaseServeFactor: number;
  now?: () => number;
}

export const DEFAULT_SUPER_SEEDING: SuperSeedingOptions = { minReleaseMs: 2000, releaseServeFactor: 4 };

/** How often stored pieces are checked against the release time while children listen. */
const TICK_MS = 250;
const EWMA_ALPHA = 0.3;

interface StoredPiece {
  record: PieceRecord;
  at: number;
  served: number;
  told: Set<ChildStream>;
}

/** The announcement state of one task while its run is active on this seed. */
export class TaskAnnouncements {
  private readonly pieces = new Map<number, StoredPiece>();
  private readonly children = new Map<ChildStream, number>();
  private complete = false;
  private timer?: NodeJS.Timeout;
  private serveMs?: number;
  private readonly now: () => number;

  constructor(private readonly o: SuperSeedingOptions) {
    this.now = o.now ?? Date.now;
  }

  get childCount(): number {
    return this.children.size;
  }

  /** A child's stream opened: it is told the pieces it may know now, and later ones as they are released. */
  addChild(child: ChildStream, stored: Iterable<PieceRecord>): () => void {
    this.children.set(child, 0);
    for (const p of stored) this.track(p);
    this.releaseDue();
    this.timer ??= setInterval(() => this.releaseDue(), TICK_MS).unref();
    return () => {
      this.children.delete(child);
      if (this.children.size === 0 && this.timer) {
        clearInterval(this.timer);
        this.timer = undefined;
      }
    };
  }

  /** Our download stored a piece. */
  stored(piece: PieceRecord): void {
    this.track(piece);
    this.distribute(this.pieces.get(piece.number)!);
  }

  /** The piece server finished sending a piece to some child in `ms`: one more copy is out there. */
  served(number: number, ms: number): void {
    this.serveMs = this.serveMs === undefined ? ms : this.serveMs * (1 - EWMA_ALPHA) + ms * EWMA_ALPHA;
    const p = this.pieces.get(number);
    if (!p) return;
    p.served++;
    this.distribute(p);
  }

  /** The seed holds every piece: everyone hears of everything from now on. */
  completed(): void {
    this.complete = true;
    this.releaseDue();
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.children.clear();
  }

  private track(record: PieceRecord): void {
    if (this.pieces.has(record.number)) return;
    const at = record.finishedAt?.getTime() ?? this.now();
    this.pieces.set(record.number, { record, at, served: 0, told: new Set() });
  }

  private releaseMs(): number {
    return Math.max(this.o.minReleaseMs, (this.serveMs ?? 0) * this.o.releaseServeFactor);
  }

  /** How many children may know of the piece now. */
  private audience(p: StoredPiece): number {
    if (this.complete || this.now() - p.at >= this.releaseMs()) return Infinity;
    return p.served === 0 ? 1 : 2 ** (p.served + 1);
  }

  /** Tells every piece to as many children as it may reach now (the timer calls this; so do events). */
  releaseDue(): void {
    for (const p of this.pieces.values()) this.distribute(p);
  }

  /** Tells the piece to more children, those told the fewest pieces so far first, up to its audience. */
  private distribute(p: StoredPiece): void {
    const audience = this.audience(p);
    if (p.told.size >= audience) return;
    const waiting = [...this.children.entries()]
      .filter(([c]) => !p.told.has(c) && c.interested.has(p.record.number))
      .sort((a, b) => a[1] - b[1]);
    for (const [child, count] of waiting) {
      if (p.told.size >= audience) break;
      p.told.add(child);
      this.children.set(child, count + 1);
      child.announce(p.record);
    }
  }
}

/** Announcement state of every task whose run is active here, created on a child's first SyncPieces. */
export class SuperSeeding {
  private readonly tasks = new Map<string, TaskAnnouncements>();

  constructor(private readonly o: SuperSeedingOptions = DEFAULT_SUPER_SEEDING) {}

  /** The task's announcements, created on first use; `dispose` must be called when the run ends. */
  forTask(taskId: string): { announcements: TaskAnnouncements; created: boolean } {
    let a = this.tasks.get(taskId);
    if (a) return { announcements: a, created: false };
    a = new TaskAnnouncements(this.o);
    this.tasks.set(taskId, a);
    return { announcements: a, created: true };
  }

  dispose(taskId: string): void {
    this.tasks.get(taskId)?.close();
    this.tasks.delete(taskId);
  }

  served(taskId: string, number: number, ms: number): void {
    this.tasks.get(taskId)?.served(number, ms);
  }
}
