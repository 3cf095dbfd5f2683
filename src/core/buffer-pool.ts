// Buffers of one size used again and again (file reads, piece writes, socket reads), so that moving bytes makes no
// garbage: a fresh buffer per read outlives V8's young generation while its bytes wait for a write, and the
// collector's full collections then cost more than the bytes' copies.

/** Buffers of one size (file reads, piece writes), kept for reuse up to `keep` of them; more are allocated when all are in use. */
export class BufferPool {
  private readonly free: Buffer[] = [];

  constructor(
    readonly size: number,
    private readonly keep: number,
  ) {}

  take(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafeSlow(this.size);
  }

  give(buf: Buffer): void {
    if (this.free.length < this.keep) this.free.push(buf);
  }

  /** Buffers waiting for reuse (tests). */
  get idle(): number {
    return this.free.length;
  }
}
