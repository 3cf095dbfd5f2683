// Announcement control on a seed peer (BitTorrent's super-seeding, within SyncPieces as it is): while the seed's
// own download of a task runs, a fresh piece is announced to one child only — the child told the fewest pieces —
// and to every child once its first copy left the seed a while ago (a few times the time the seed takes to send
// one piece). The clock starts at that first copy, not at the store: with a busy uplink (a 32-peer seed at
// 10 Mbit/s) a piece released by its age alone was asked of the seed by every child before any child held it —
// up to seven seed copies of one piece, while fresher pieces waited 100 s for their first. A piece nobody has
// asked for yet is told to one more child every release time (its child may be busy with other parents).
// Streams opened while the download ran keep this pace after it finished (telling everyone everything at that
// moment made every child take the last pieces from the seed); streams opened later hear of everything at once,
// and so does everyone if the seed's download fails. The other children learn of it from the child that took it, whose parents
// they are, and take it from there. So the seed's uplink carries each piece about once and the children trade
// the rest among themselves, instead of every child queuing on the seed for every piece. (Widening the audience
// as copies leave the seed was tried: children told by the seed take the piece from the seed before the first
// holder has announced it — 3 seed uploads per piece in an 8-host run.)
// Children that cannot reach the piece elsewhere still get it from the seed after the release time — an upstream
// child, which may not trade with our peers, never starves.

import type { PieceRecord } from '../storage/storage.js';
import { ewma } from '../core/ewma.js';

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
  /** The release while no piece has been served yet (see releaseMs). */
  unmeasuredReleaseMs?: number;
  now?: () => number;
}

export const DEFAULT_SUPER_SEEDING: SuperSeedingOptions = {
  minReleaseMs: 2000,
  releaseServeFactor: 4,
  unmeasuredReleaseMs: 10_000,
};

/** A piece no copy of which left the seed is told to everyone this many release times after it was stored. */
const UNSERVED_RELEASE_FACTOR = 4;
/** How often stored pieces are checked against the release time while children listen. */
const TICK_MS = 250;
const EWMA_ALPHA = 0.3;

interface StoredPiece {
  record: PieceRecord;
  at: number;
  told: Set<ChildStream>;
  /** Told to everyone once: a release is never taken back when the release time grows with the serve time. */
  released: boolean;
  /** When the seed finished sending its first copy. */
  servedAt?: number;
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

  /** The piece server finished sending piece `number` to some child in `ms`: the release time follows it. */
  served(number: number, ms: number): void {
    this.serveMs = ewma(this.serveMs, ms, EWMA_ALPHA);
    const p = this.pieces.get(number);
    if (p && p.servedAt === undefined) p.servedAt = this.now();
  }

  /**
   * Upload priority of a piece (lower first): pieces no copy of which has left the seed yet, which the swarm waits
   * on; a second copy of anything never goes before them. Also after our download finished: the last pieces
   * stored are fresh then, and ranked with every released one a 32-peer seed refused them as busy for 50-90 s.
   */
  priority(number: number): number {
    const p = this.pieces.get(number);
    return p && p.servedAt === undefined ? 0 : 1;
  }

  /** The seed's download failed or stopped: nothing more comes, so everyone hears of everything stored now. */
  abandoned(): void {
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
    this.pieces.set(record.number, { record, at, told: new Set(), released: false });
  }

  /**
   * Before any piece was served the time to send one is unknown: the release waits for the first measure (the
   * told child's copy), up to unmeasuredReleaseMs. Releasing at the 2 s floor then gave the first pieces to every
   * child of a 32-peer seed on a 10 Mbit/s link: 10 seed copies each.
   */
  private releaseMs(): number {
    if (this.serveMs === undefined) return Math.max(this.o.minReleaseMs, this.o.unmeasuredReleaseMs ?? 0);
    return Math.max(this.o.minReleaseMs, this.serveMs * this.o.releaseServeFactor);
  }

  /** How many children may know of the piece now. */
  private audience(p: StoredPiece): number {
    const now = this.now();
    const release = this.releaseMs();
    const sinceServed = p.servedAt === undefined ? -Infinity : now - p.servedAt;
    if (
      p.released ||
      this.complete ||
      sinceServed >= release ||
      // Nobody asked the seed for it at all (the children found it elsewhere): nobody is kept waiting for ever.
      (p.servedAt === undefined && now - p.at >= UNSERVED_RELEASE_FACTOR * release)
    ) {
      // Sticky: before any piece was served the release time is its 2 s floor, and it grows once serving is
      // measured (to 46 s at 10 Mbit); taking releases back made the children that had heard of a piece
      // outrank the one child told of the next fresh piece, which waited a minute at a 32-peer seed.
      p.released = true;
      return Infinity;
    }
    // One child, and one more for every release time the piece waited for its first copy to leave.
    return 1 + Math.floor((Math.min(now, p.servedAt ?? now) - p.at) / release);
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

/**
 * Announcement state of every task whose run is active here, created on a child's first SyncPieces; it lives
 * while the run does or a child listens.
 */
export class SuperSeeding {
  private readonly tasks = new Map<string, { announcements: TaskAnnouncements; runEnded: boolean }>();

  constructor(private readonly o: SuperSeedingOptions = DEFAULT_SUPER_SEEDING) {}

  /** The task's announcements, created on first use (then the caller feeds it the run's pieces). */
  forTask(taskId: string): { announcements: TaskAnnouncements; created: boolean } {
    const entry = this.tasks.get(taskId);
    if (entry) return { announcements: entry.announcements, created: false };
    const announcements = new TaskAnnouncements(this.o);
    this.tasks.set(taskId, { announcements, runEnded: false });
    return { announcements, created: true };
  }

  /** A child's stream of the task opens; the returned function closes it. */
  addChild(taskId: string, child: ChildStream, stored: Iterable<PieceRecord>): () => void {
    const entry = this.tasks.get(taskId);
    if (!entry) return () => undefined;
    const remove = entry.announcements.addChild(child, stored);
    return () => {
      remove();
      this.disposeIfIdle(taskId);
    };
  }

  /** The task's run ended (finished or not). */
  runEnded(taskId: string): void {
    const entry = this.tasks.get(taskId);
    if (!entry) return;
    entry.runEnded = true;
    this.disposeIfIdle(taskId);
  }

  private disposeIfIdle(taskId: string): void {
    const entry = this.tasks.get(taskId);
    if (!entry || !entry.runEnded || entry.announcements.childCount > 0) return;
    entry.announcements.close();
    this.tasks.delete(taskId);
  }

  /** Upload priority of a piece of any task (see TaskAnnouncements.priority). */
  priority(taskId: string, number: number): number {
    return this.tasks.get(taskId)?.announcements.priority(number) ?? 1;
  }

  served(taskId: string, number: number, ms: number): void {
    this.tasks.get(taskId)?.announcements.served(number, ms);
  }
}
