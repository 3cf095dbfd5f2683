// The source pieces a P2P run has in flight, and which of them are in their tail. The pacer (source-pacer.ts)
// says how many connections may carry a piece at once; a piece whose remaining bytes will arrive within about one
// request's wait (its time to first byte) no longer counts, so the next piece's request goes out while it ends.
// One connection then delivers pieces back to back: piece k is stored at about k piece-times, where two
// connections over a link either can fill store pieces in pairs (piece 0 after two piece-times) and let TCP
// starve one flow (a 32-peer seed's pieces 5 and 10 came 10-20 s late). Without the overlap, one connection
// idled a request's wait after every piece (8 % at 100 Mbit/s), which is why the pacer had started at two.

import { ewma } from '../core/ewma.js';

/** How long ahead of a body's end the next request goes out: this many times the measured time to first byte. */
const LEAD_FACTOR = 1.5;
/** Added to the lead: the next response's first bytes also need the sender's window to open again. */
const LEAD_MIN_MS = 5;
/** Before this share of a piece has arrived its rate is too young to predict its end. */
const MIN_SHARE_FOR_RATE = 1 / 8;
/** Weight of the newest time to first byte in the running estimate. */
const TTFB_WEIGHT = 0.3;

export class SourceFlight {
  /** When its request went out, when its body began (ms). */
  private requestedAt: number;
  private bodyAt?: number;
  private received = 0;
  private length = Infinity;
  /** Its remaining bytes arrive within the lead: the next request may go out. */
  inTail = false;

  constructor(private readonly flights: SourceFlights) {
    this.requestedAt = flights.now();
  }

  /** The request went out (a bandwidth limit may have held it since the piece was started). */
  requested(): void {
    if (this.bodyAt === undefined) this.requestedAt = this.flights.now();
  }

  /** The response's body of `length` bytes began: its wait is the time to first byte. */
  bodyBegan(length: number): void {
    this.length = length;
    if (this.bodyAt !== undefined) return;
    this.bodyAt = this.flights.now();
    this.flights.measuredWait(this.bodyAt - this.requestedAt);
  }

  /** `total` bytes of the body have arrived. */
  progress(total: number): void {
    this.received = total;
    if (this.inTail || this.bodyAt === undefined) return;
    if (this.received < this.length * MIN_SHARE_FOR_RATE && this.received < this.length) return;
    const elapsed = this.flights.now() - this.bodyAt;
    const remaining = this.length - this.received;
    // Bytes per ms so far; the remaining bytes at that rate arrive within the lead → in the tail.
    const rate = this.received / Math.max(1, elapsed);
    if (remaining <= rate * this.flights.leadMs()) {
      this.inTail = true;
      this.flights.enteredTail();
    }
  }

  /** Done, stored or failed. */
  end(): void {
    this.flights.ended(this);
  }
}

export class SourceFlights {
  private readonly flights = new Set<SourceFlight>();
  private waitMs?: number;
  readonly now: () => number;
  private readonly onTail: () => void;

  constructor(options: { onTail: () => void; now?: () => number }) {
    this.onTail = options.onTail;
    this.now = options.now ?? (() => performance.now());
  }

  /** A source piece's request goes out. */
  begin(): SourceFlight {
    const f = new SourceFlight(this);
    this.flights.add(f);
    return f;
  }

  /** Pieces in flight, tails included. */
  get size(): number {
    return this.flights.size;
  }

  /** Pieces in flight that hold a connection: those not yet in their tail. */
  get busy(): number {
    let n = 0;
    for (const f of this.flights) if (!f.inTail) n++;
    return n;
  }

  /** How long before a body's end the next request goes out (ms). */
  leadMs(): number {
    return LEAD_FACTOR * (this.waitMs ?? 0) + LEAD_MIN_MS;
  }

  /** @internal */
  measuredWait(ms: number): void {
    this.waitMs = ewma(this.waitMs, ms, TTFB_WEIGHT);
  }

  /** @internal */
  enteredTail(): void {
    this.onTail();
  }

  /** @internal */
  ended(f: SourceFlight): void {
    this.flights.delete(f);
  }
}
