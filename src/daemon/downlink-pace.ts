// How many piece bodies a download takes from parents at once, from how fast this host's downlink turned out to
// be. A parent on a slow uplink sends one body at a time (upload-pace.ts), at its full uplink rate; a child that
// receives two or three such bodies at once splits its downlink between them, so each of those parents sends at a
// half or a third of its uplink while other children, whose requests wait or were refused as busy, get nothing.
// In a 32-peer swarm at 10 Mbit/s the children received 2–4 bodies at once 60 % of the time and nothing half the
// time; the swarm moved ~45 pieces per 10 s against ~95 its links could carry. One body at a time: ~65.
//
// A body's share of the downlink is its rate × the bodies received alongside it (averaged over its time), which
// estimates what the downlink carries when it is the bottleneck and more when parents are (each body then runs at
// its parent's pace, whatever the count). So when that estimate says a piece takes seconds, one body at a time
// fills the link; when it says a fraction of a second, request latency matters more and the count stays open.
// A downlink faster than its parents (an asymmetric link, slow parents) shows itself differently: a body
// received beside others keeps the rate it had alone. Then there is no limit, whatever the estimate says. Every
// few bodies under a limit one more is let through, so that such a downlink is found out.

import { ewma } from '../core/ewma.js';

/** A piece taking at least this long at the downlink's rate is received one body at a time … */
const ONE_AT_A_TIME_S = 2;
/** … at least this long, two at a time; shorter, no limit here (download.concurrentPieceCount and the picker). */
const TWO_AT_A_TIME_S = 0.8;
/** After this many bodies under a limit, one more is let through once, to measure again. */
const PROBE_EVERY = 8;
/** A body whose average company was below this ran alone; at or above SHARED, beside others. */
const ALONE = 1.3;
const SHARED = 1.7;
/** Bodies beside others that keep this share of the rate alone show the downlink has room: no limit. */
const ROOM = 0.75;
/**
 * A request that got no body this long waits in a parent's queue: it makes room for another (a parent answering
 * busy at once, queueLimit 0, never gets here; one that queues is asked beside others, the first body wins).
 */
const QUEUED_PATIENCE_MS = 500;
const EWMA_ALPHA = 0.3;

/** One body being received: ended() when it is stored (a sample) or failed (none). */
export interface ReceivingBody {
  ended(bytes?: number): void;
}

/** What the piece path tells when a parent's body begins to arrive. */
export interface BodyMeter {
  began(): ReceivingBody;
}

export class DownlinkPace implements BodyMeter {
  /** Smoothed bytes per millisecond the downlink carried, from every body's rate × the bodies alongside it. */
  private rate?: number;
  /** Smoothed bytes per millisecond of one body received alone, and of one received beside others. */
  private aloneRate?: number;
  private sharedRate?: number;
  private active = 0;
  /** ∫ active dt (ms) up to `lastChange`: a body's average company is the growth of this over its lifetime. */
  private area = 0;
  private lastChange: number;
  private sinceProbe = 0;
  private readonly now: () => number;

  constructor(now: () => number = () => performance.now()) {
    this.now = now;
    this.lastChange = now();
  }

  /** Bodies being received now. */
  get receiving(): number {
    return this.active;
  }

  /** A body began to arrive (its parent's header came). */
  began(): ReceivingBody {
    this.advance();
    this.active++;
    const start = this.now();
    const areaAtStart = this.area;
    let done = false;
    return {
      ended: (bytes?: number) => {
        if (done) return;
        done = true;
        this.advance();
        this.active--;
        const ms = this.now() - start;
        if (bytes === undefined || bytes <= 0 || ms <= 0) return;
        const company = Math.max(1, (this.area - areaAtStart) / ms);
        const rate = bytes / ms;
        this.rate = ewma(this.rate, rate * company, EWMA_ALPHA);
        if (company < ALONE) this.aloneRate = ewma(this.aloneRate, rate, EWMA_ALPHA);
        else if (company >= SHARED) this.sharedRate = ewma(this.sharedRate, rate, EWMA_ALPHA);
        this.sinceProbe++;
      },
    };
  }

  /**
   * Requests to have out at once when pieces have `pieceLength` bytes (Infinity: no limit from the downlink),
   * one more when a probe is due.
   */
  limit(pieceLength: number): number {
    const base = this.baseLimit(pieceLength);
    return base < Infinity && this.sinceProbe >= PROBE_EVERY ? base + 1 : base;
  }

  /** A request starts with `out` others out: past the base limit it is the probe, and the next is due later. */
  starting(out: number, pieceLength: number): void {
    if (out >= this.baseLimit(pieceLength)) this.sinceProbe = 0;
  }

  /**
   * How long a request may wait in a parent's queue before it no longer holds its place under the limit (ms): a
   * piece's time at the downlink's rate, at most QUEUED_PATIENCE_MS.
   */
  patienceMs(pieceLength: number): number {
    return this.rate === undefined
      ? QUEUED_PATIENCE_MS
      : Math.min(QUEUED_PATIENCE_MS, pieceLength / this.rate);
  }

  private baseLimit(pieceLength: number): number {
    // Before anything was measured: one body (a request that waits in a parent's queue makes room for another
    // after QUEUED_PATIENCE_MS). On a fast link the first body is measured in a fraction of a second and the
    // limit opens.
    if (this.rate === undefined) return 1;
    if (
      this.aloneRate !== undefined &&
      this.sharedRate !== undefined &&
      this.sharedRate >= ROOM * this.aloneRate
    ) {
      return Infinity;
    }
    const seconds = pieceLength / this.rate / 1000;
    return seconds >= ONE_AT_A_TIME_S ? 1 : seconds >= TWO_AT_A_TIME_S ? 2 : Infinity;
  }

  private advance(): void {
    const t = this.now();
    this.area += this.active * (t - this.lastChange);
    this.lastChange = t;
  }
}
