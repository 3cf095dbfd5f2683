// A token bucket in bytes per second, shared by every transfer it is given to (upstream uses leaky-bucket
// limiters per direction: upload, download, back-to-source). `acquire(n)` resolves when n bytes may pass;
// callers take a piece's worth before sending it, as upstream's piece server does. Waiters are served in order,
// so concurrent transfers share the rate fairly.

export class RateLimiter {
  private readonly rate: number;
  private readonly burst: number;
  private tokens: number;
  private last: number;
  private tail: Promise<void> = Promise.resolve();
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;

  /**
   * @param bytesPerSecond the sustained rate; 0 or Infinity means unlimited.
   * @param burst bytes that may pass at once after idling (default: one second's worth).
   */
  constructor(
    bytesPerSecond: number,
    options: { burst?: number; now?: () => number; sleep?: (ms: number) => Promise<void> } = {},
  ) {
    this.rate = bytesPerSecond > 0 ? bytesPerSecond : Infinity;
    this.burst = options.burst ?? this.rate;
    this.now = options.now ?? (() => performance.now());
    this.sleep = options.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.tokens = this.burst;
    this.last = this.now();
  }

  get unlimited(): boolean {
    return this.rate === Infinity;
  }

  /** Waits until `bytes` may pass. A request larger than the burst waits for the deficit (tokens go negative). */
  acquire(bytes: number): Promise<void> {
    if (this.unlimited || bytes <= 0) return Promise.resolve();
    const turn = this.tail.then(() => this.take(bytes));
    this.tail = turn.catch(() => undefined);
    return turn;
  }

  private async take(bytes: number): Promise<void> {
    const now = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.rate) / 1000);
    this.last = now;
    this.tokens -= bytes;
    if (this.tokens < 0) await this.sleep((-this.tokens / this.rate) * 1000);
  }
}
