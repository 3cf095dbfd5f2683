// Which piece to take next from which parent, for a P2P run (the choice BitTorrent clients make, within what the
// Dragonfly wire gives us: parents announce pieces over SyncPieces; we only ever ask a parent for a piece it
// announced).
// - Availability first: a piece starts only when some live parent has announced it and has a free slot. Parking
//   a request on a piece nobody has yet makes every child queue on the seed.
// - Rarest first among our parents, random tie-break: pieces only a seed holds go first (a seed tells a fresh piece
//   to one child, and the swarm waits on that child), then those only one parent holds, so copies spread and
//   children end up holding pieces to trade. An in-order consumer (the
//   proxy) keeps its priority: the lowest piece it waits for goes first when some parent has it.
// - Each parent has at most a few of our requests at once — `perParentLimit` with one to three parents, fewer
//   with more, about `targetInFlight` in all — so one fast-to-announce parent (the seed) does not carry all of
//   them, and a request waiting in a busy parent's upload queue does not keep us from asking an idle one.
// - A piece some normal peer among our parents holds is taken from a normal peer, waiting for a free slot if need
//   be: the seed's uplink is for pieces nobody else has. Among the holders allowed, parents are weighed by the
//   throughput we measured from them (announced NIC speeds are not credible: a veth says 10 Gbps behind a
//   100 Mbit link).

import type { PieceParent } from './piece-path.js';
import type { PieceCandidates } from './task-run.js';
import { ewma } from '../core/ewma.js';

/** A parent holding a piece: where to fetch it, and whether its host is a seed peer. */
export interface PieceHolder extends PieceParent {
  seed: boolean;
}

export interface PickedPiece {
  number: number;
  parent: PieceHolder;
}

export interface PiecePickerOptions {
  /** Requests in flight to one parent at most (with few parents). */
  perParentLimit: number;
  /** Requests in flight to all parents together that the per-parent limit aims at (default 8). */
  targetInFlight?: number;
  random?: () => number;
  /** Clock for temporary failures (ms). */
  now?: () => number;
}

/** Weight of a smoothed throughput sample: the last few pieces matter, one slow piece does not decide. */
const EWMA_ALPHA = 0.3;

interface ParentStats {
  inFlight: number;
  /** Smoothed bytes per millisecond of the pieces we took from it; undefined until one finished. */
  rate?: number;
}

export class PiecePicker {
  private readonly holders = new Map<number, Map<string, PieceHolder>>();
  /** parentId/number → until when (ms; Infinity: for good) the parent is not asked for the piece. */
  private readonly failed = new Map<string, number>();
  private readonly dead = new Set<string>();
  private readonly stats = new Map<string, ParentStats>();
  private readonly maxPerParent: number;
  private readonly targetInFlight: number;
  private readonly random: () => number;
  private readonly now: () => number;
  private seedsHeld = false;

  constructor(options: PiecePickerOptions) {
    this.maxPerParent = Math.max(1, options.perParentLimit);
    this.targetInFlight = Math.max(1, options.targetInFlight ?? 8);
    this.random = options.random ?? Math.random;
    this.now = options.now ?? (() => performance.now());
  }

  /** A parent announced a piece. False when it was known already (or the parent is dead). */
  announce(number: number, holder: PieceHolder): boolean {
    if (this.dead.has(holder.parentId)) return false;
    let m = this.holders.get(number);
    if (!m) this.holders.set(number, (m = new Map()));
    if (m.has(holder.parentId)) return false;
    m.set(holder.parentId, holder);
    if (!this.stats.has(holder.parentId)) this.stats.set(holder.parentId, { inFlight: 0 });
    return true;
  }

  /**
   * The parent failed this piece: do not ask it for this piece again — for `forMs` when the failure may pass (it
   * timed out, the connection dropped), for good otherwise (corrupt, missing).
   */
  markFailed(parentId: string, number: number, forMs = Infinity): void {
    this.failed.set(`${parentId}/${number}`, this.now() + forMs);
  }

  /** The parent is gone (refused or reset connections): ask it for nothing more. */
  dropParent(parentId: string): void {
    this.dead.add(parentId);
    for (const m of this.holders.values()) m.delete(parentId);
  }

  /** Live holders of a piece that did not fail it. */
  holdersOf(number: number): PieceHolder[] {
    const m = this.holders.get(number);
    if (!m) return [];
    const now = this.now();
    return [...m.values()].filter((h) => (this.failed.get(`${h.parentId}/${number}`) ?? -Infinity) <= now);
  }

  /** Whether some live parent could still give the piece (now or once a slot frees). */
  available(number: number): boolean {
    return this.holdersOf(number).length > 0;
  }

  /** Requests in flight to a parent. */
  inFlight(parentId: string): number {
    return this.stats.get(parentId)?.inFlight ?? 0;
  }

  /** Parents that announced something and are not dead. */
  get liveParents(): number {
    let n = 0;
    for (const id of this.stats.keys()) if (!this.dead.has(id)) n++;
    return n;
  }

  started(parentId: string): void {
    const s = this.statsOf(parentId);
    s.inFlight++;
  }

  /** A piece from the parent ended: `bytes` in `ms` when it succeeded (a throughput sample), else nothing. */
  ended(parentId: string, sample?: { bytes: number; ms: number }): void {
    const s = this.statsOf(parentId);
    s.inFlight = Math.max(0, s.inFlight - 1);
    if (sample && sample.ms > 0) {
      const rate = sample.bytes / sample.ms;
      s.rate = ewma(s.rate, rate, EWMA_ALPHA);
    }
  }

  /** The next piece to start and its parent, or undefined when no queued piece has a holder with a free slot. */
  pick(c: PieceCandidates): PickedPiece | undefined {
    // In-order consumers first: the lowest piece they wait for that some parent can give now.
    if (c.inOrder.size > 0) {
      for (const n of [...c.inOrder].sort((a, b) => a - b)) {
        const parent = this.chooseParent(n);
        if (parent) return { number: n, parent };
      }
    }
    let best: number | undefined;
    let bestCount = Infinity;
    let ties = 0;
    for (const n of c.queued) {
      const holders = this.holdersOf(n);
      const rarity = this.rarity(holders);
      if (holders.length === 0 || rarity > bestCount) continue;
      if (!this.eligible(holders).some((h) => this.hasSlot(h.parentId))) continue;
      if (rarity < bestCount) {
        best = n;
        bestCount = rarity;
        ties = 1;
      } else if (this.random() * ++ties < 1) {
        // Reservoir sampling: each of the equally rare pieces is chosen with the same probability.
        best = n;
      }
    }
    if (best === undefined) return undefined;
    return { number: best, parent: this.chooseParent(best)! };
  }

  /**
   * How rare a piece is among our parents: its holders, or 0 when only seeds hold it — a seed tells a fresh piece
   * to one child, and the swarm waits for that child to take it and pass it on (super-seeding.ts).
   */
  private rarity(holders: PieceHolder[]): number {
    return holders.every((h) => h.seed) ? 0 : holders.length;
  }

  /** Whether seeds are the only parents that announced the piece (a fresh piece a seed told us of). */
  onlySeedsHold(number: number): boolean {
    const holders = this.holdersOf(number);
    return holders.length > 0 && this.rarity(holders) === 0;
  }

  /**
   * Takes nothing from seeds while held: new normal-peer parents have not told us yet what they hold, and the
   * seed's announcements arrive first.
   */
  holdSeeds(hold: boolean): void {
    this.seedsHeld = hold;
  }

  /** The holders a piece may come from: the normal peers if any holds it, else the seeds (unless held). */
  private eligible(holders: PieceHolder[]): PieceHolder[] {
    const peers = holders.filter((h) => !h.seed);
    if (peers.length > 0 || this.seedsHeld) return peers;
    return holders;
  }

  /** An eligible holder of the piece with a free slot (not `exclude`), weighted by measured throughput. */
  chooseParent(number: number, exclude?: string): PieceHolder | undefined {
    const pool = this.eligible(this.holdersOf(number)).filter(
      (h) => h.parentId !== exclude && this.hasSlot(h.parentId),
    );
    if (pool.length === 0) return undefined;
    if (pool.length === 1) return pool[0];
    const weights = pool.map((h) => this.weight(h.parentId));
    let r = this.random() * weights.reduce((a, b) => a + b, 0);
    for (let i = 0; i < pool.length; i++) {
      r -= weights[i]!;
      if (r < 0) return pool[i];
    }
    return pool[pool.length - 1];
  }

  /** Measured throughput; a parent not measured yet gets the best known rate, so new parents get tried. */
  private weight(parentId: string): number {
    const rate = this.stats.get(parentId)?.rate;
    if (rate !== undefined) return Math.max(rate, 1e-6);
    let best = 0;
    for (const s of this.stats.values()) if (s.rate !== undefined && s.rate > best) best = s.rate;
    return best > 0 ? best : 1;
  }

  /** Requests in flight to one parent at most now: about targetInFlight spread over the live parents. */
  get perParentLimit(): number {
    const parents = Math.max(1, this.liveParents);
    return Math.min(this.maxPerParent, Math.max(1, Math.ceil(this.targetInFlight / parents)));
  }

  private hasSlot(parentId: string): boolean {
    return this.inFlight(parentId) < this.perParentLimit;
  }

  private statsOf(parentId: string): ParentStats {
    let s = this.stats.get(parentId);
    if (!s) this.stats.set(parentId, (s = { inFlight: 0 }));
    return s;
  }
}
