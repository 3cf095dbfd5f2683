// The buffers one socket reads into with net's or tls's `onread` when its reader gets views of them, valid until it
// asks for the next chunk (the HTTP agent's connections, the Vortex client's piece connections). The socket asks
// for the next buffer right after each read, even when the callback pauses it, and TLS can hand over several
// records before a pause takes effect: so a buffer whose views the reader may still hold is `held`, and read into
// again only once the reader has asked past them (recycle()).

export class ReadBuffers {
  private readonly spare: Buffer[] = [];
  private held: Buffer[] = [];

  /**
   * `take`: a buffer when none is spare. `keepSpare`: how many buffers to keep for reuse (others are dropped to
   * the collector, or were the caller's to give back).
   */
  constructor(
    private readonly take: () => Buffer,
    private readonly keepSpare = Infinity,
  ) {}

  /** The buffer for the next read (onread's `buffer`). */
  next(): Buffer {
    return this.spare.pop() ?? this.take();
  }

  /** A read into `buf` was handled; `viewsOut`: the reader got views of it. */
  filled(buf: Buffer, viewsOut: boolean): void {
    if (viewsOut) this.held.push(buf);
    else this.keep(buf);
  }

  /** The reader asked past every view it was given: their buffers may be read into again. */
  recycle(): void {
    for (const b of this.held) this.keep(b);
    this.held = [];
  }

  private keep(buf: Buffer): void {
    if (this.spare.length < this.keepSpare) this.spare.push(buf);
  }
}
