// proxy.server.requestRateLimit: requests per second, refused at once when exceeded (upstream's try_acquire on a
// token bucket; burst = one second's worth). 0 means unlimited.

export class RequestRate {
  private tokens: number;
  private last: number;

  constructor(
    private readonly perSecond: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tokens = perSecond;
    this.last = now();
  }

  tryAcquire(): boolean {
    if (!(this.perSecond > 0)) return true;
    const t = this.now();
    this.tokens = Math.min(this.perSecond, this.tokens + ((t - this.last) * this.perSecond) / 1000);
    this.last = t;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
