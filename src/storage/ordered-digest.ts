// The digest of a task's whole content computed while its pieces are being stored, in any order: a piece's bytes go
// to a hash job (hash-worker.ts: read back from the page cache, where they were just written, and hashed in a worker
// thread) as soon as it and every piece before it are stored, so when the last piece lands only the pieces after
// the last gap are left. A task whose identity names its content's digest (an OCI blob URL's sha256) is finished
// only once its content matches it; hashing the whole file after the download read it all again on the main thread
// and held the finish (and the proxy's last piece) for it: 0.45-0.5 CPU-s of a cold 512 MiB layer through the
// registry mirror that took 1.2-1.3 s without the check.

import type { HashJob } from './hash-worker.js';

export interface OrderedDigestPiece {
  number: number;
  offset: number;
  length: number;
}

export class OrderedContentDigest {
  /** The pieces by offset; `next` is the first not given to the job yet. */
  private readonly pieces: OrderedDigestPiece[];
  private next = 0;
  private readonly stored = new Set<number>();
  private result: Promise<string | undefined> | undefined;

  constructor(
    pieces: readonly OrderedDigestPiece[],
    private readonly job: HashJob,
  ) {
    this.pieces = [...pieces].sort((a, b) => a.offset - b.offset);
  }

  /** Piece `number` is stored: it is hashed once every piece before it is. */
  pieceStored(number: number): void {
    this.stored.add(number);
    for (let p = this.pieces[this.next]; p && this.stored.has(p.number); p = this.pieces[this.next]) {
      this.job.range(p.offset, p.length);
      this.next++;
    }
  }

  /**
   * The digest of the whole content (`algorithm:encoded`); undefined if a piece was never reported stored.
   * Rejects if the job could not read or hash the content.
   */
  digest(): Promise<string | undefined> {
    // Asked once of the job; every caller (the task's known digest, a download's --digest) gets that answer.
    this.result ??= this.finish();
    return this.result;
  }

  private async finish(): Promise<string | undefined> {
    if (this.next < this.pieces.length) {
      this.job.close();
      return undefined;
    }
    return this.job.digest();
  }

  /** Drops the job (the run ended without asking for the digest). */
  close(): void {
    this.job.close();
  }
}
