// Measures this peer's upload rate (bytes served to children over Vortex), so SyncHost can tell children how
// busy we are and their parent selectors can prefer idle parents (weight = max − tx).

/** The window the rate is averaged over; short enough to follow load, long enough to smooth bursts. */
const WINDOW_MS = 2000;

export class UploadMeter {
  private readonly samples: Array<{ at: number; bytes: number }> = [];
  private readonly now: () => number;

  constructor(now: () => number = Date.now) {
    this.now = now;
  }

  /** Called by the piece server before it sends a piece (its uploadLimiter hook). */
  async acquire(bytes: number): Promise<void> {
    this.samples.push({ at: this.now(), bytes });
    this.trim();
  }

  /** Upload rate over the last window, bits per second (the unit of common.v2.Network.tx_bandwidth). */
  rateBps(): number {
    this.trim();
    const bytes = this.samples.reduce((sum, s) => sum + s.bytes, 0);
    return Math.round((bytes * 8 * 1000) / WINDOW_MS);
  }

  private trim(): void {
    const cutoff = this.now() - WINDOW_MS;
    while (this.samples.length > 0 && this.samples[0]!.at < cutoff) this.samples.shift();
  }
}
