// How many pieces a P2P run fetches from the source at once. Its children take piece k as soon as it is stored,
// so the source should deliver pieces in order, one after another, not in batches: pieces fetched together
// finish together (fair sharing of one link), and piece k is usable only after the whole batch. So start with
// few connections and add one only while doing so raises the throughput — which it does only when the origin is
// slow per connection (latency, per-connection limits), not when the link is the bottleneck.

export interface SourcePacerOptions {
  /** Connections at first. */
  initial: number;
  /** Never more (download.concurrentPieceCount). */
  max: number;
  /** A step counts as better when it raises the throughput by more than this factor. */
  gain?: number;
  now?: () => number;
}

const DEFAULT_GAIN = 1.15;

export class SourcePacer {
  private current: number;
  private readonly max: number;
  private readonly gain: number;
  private readonly now: () => number;
  private frozen = false;
  /** The phase at the current limit: when it started, bytes and pieces finished in it. */
  private phaseStart: number;
  private phaseBytes = 0;
  private phasePieces = 0;
  private bestRate = 0;

  constructor(options: SourcePacerOptions) {
    this.max = Math.max(1, options.max);
    this.current = Math.min(Math.max(1, options.initial), this.max);
    this.gain = options.gain ?? DEFAULT_GAIN;
    this.now = options.now ?? (() => performance.now());
    this.phaseStart = this.now();
  }

  /** Source pieces allowed in flight now. */
  get limit(): number {
    return this.current;
  }

  /**
   * A source piece finished. After `limit + 1` pieces at this limit (the first ones started together, so one more
   * shows the steady rate), compare the phase's throughput with the best so far: better → one more connection;
   * not better → stay here for the rest of the run.
   */
  finished(bytes: number): void {
    if (this.frozen || this.current >= this.max) return;
    this.phaseBytes += bytes;
    this.phasePieces++;
    if (this.phasePieces < this.current + 1) return;
    const elapsed = Math.max(1, this.now() - this.phaseStart);
    const rate = this.phaseBytes / elapsed;
    if (rate > this.bestRate * this.gain) {
      this.bestRate = rate;
      this.current++;
    } else {
      this.frozen = true;
    }
    this.phaseStart = this.now();
    this.phaseBytes = 0;
    this.phasePieces = 0;
  }
}
