// How many pieces a P2P run fetches from the source at once. Its children take piece k as soon as it is stored,
// so the source should deliver pieces in order, one after another, not in batches: pieces fetched together
// finish together (fair sharing of one link), and piece k is usable only after the whole batch. So start with
// few connections and add one only while doing so raises the throughput — which it does only when the origin is
// slow per connection (latency, per-connection limits, or our own uplink so busy serving children that the
// download's ACKs queue behind it), not when the link is the bottleneck.
//
// The count climbs a hill, phase by phase: a phase is `limit + 1` pieces at one limit; if its throughput beat the
// previous phase's, keep moving the same way; if it fell, turn around. If it held above the initial count, a step
// up that bought nothing is taken back: staying there kept three pieces in flight over a link two connections
// fill, and on a shaped 10 Mbit/s link one of the three flows starved — a 32-peer seed stored pieces 5 and 10
// after 27-37 s instead of 3.4 s, the last the swarm waited for. A P2P run starts at one: the next piece's request
// goes out during the previous body's tail (source-flights.ts), so one connection does not idle a request's wait
// after each piece (which had cost 8 % at 100 Mbit/s). Conditions change during a run (children start pulling
// from this peer), so the climb never stops.

export interface SourcePacerOptions {
  /** Connections at first. */
  initial: number;
  /** Never more (download.concurrentPieceCount). */
  max: number;
  /** A phase counts as better (or worse) when its throughput differs by more than this factor. */
  gain?: number;
  now?: () => number;
}

const DEFAULT_GAIN = 1.15;

export class SourcePacer {
  private current: number;
  private readonly max: number;
  private readonly gain: number;
  private readonly now: () => number;
  private direction: 1 | -1 = 1;
  /** The phase at the current limit: when it started, bytes and pieces finished in it. */
  private phaseStart: number;
  private phaseBytes = 0;
  private phasePieces = 0;
  private previousRate?: number;
  private firstStarted = false;
  private readonly initial: number;

  constructor(options: SourcePacerOptions) {
    this.max = Math.max(1, options.max);
    this.current = Math.min(Math.max(1, options.initial), this.max);
    this.initial = this.current;
    this.gain = options.gain ?? DEFAULT_GAIN;
    this.now = options.now ?? (() => performance.now());
    this.phaseStart = this.now();
  }

  /**
   * A source piece started. The first one starts the first phase: the time before it (registration, the
   * scheduler's answer) is not the source's, and counted in, it made the second phase look faster than it was.
   */
  started(): void {
    if (this.firstStarted) return;
    this.firstStarted = true;
    this.phaseStart = this.now();
  }

  /** Source pieces allowed in flight now. */
  get limit(): number {
    return this.current;
  }

  /** A source piece finished; at the end of a phase, the limit moves (or not). */
  finished(bytes: number): void {
    this.phaseBytes += bytes;
    this.phasePieces++;
    // The phase's first pieces started together under the previous limit; one more shows the steady rate.
    if (this.phasePieces < this.current + 1) return;
    const rate = this.phaseBytes / Math.max(1, this.now() - this.phaseStart);
    const previous = this.previousRate;
    if (previous === undefined || rate > previous * this.gain) {
      this.step(this.direction);
    } else if (rate * this.gain < previous) {
      this.direction = this.direction === 1 ? -1 : 1;
      this.step(this.direction);
    } else if (this.current > this.initial) {
      this.direction = -1;
      this.step(-1);
    }
    this.previousRate = rate;
    this.phaseStart = this.now();
    this.phaseBytes = 0;
    this.phasePieces = 0;
  }

  /** Moves one step; at a bound it stays (a falling phase turns it around). */
  private step(direction: 1 | -1): void {
    this.current = Math.min(this.max, Math.max(1, this.current + direction));
  }
}
