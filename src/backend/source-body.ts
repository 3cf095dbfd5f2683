// The body of a source response as handed to the daemon: the origin's bytes, passed through as they come and
// counted, so that a body that ends short or runs long ends in an error instead of a piece that looks finished.
// Upstream relies on the storage layer noticing a short read; counting here puts the check next to the request that
// knows how many bytes were asked for.
//
// Chunks are passed on as the source gives them and are valid until the next one is asked for (the HTTP agent
// reads into buffers it uses again: http1-agent.ts); the one reader, ContentStore.writePiece, copies what it keeps.

import { DfError } from '../core/errors.js';

export interface SourceBodyOptions {
  /** The exact number of bytes the body must carry; undefined when the origin did not say (no check). */
  expectedLength: number | undefined;
  /** Names the source in error messages (a URL without its query). */
  description: string;
  /** Turns an error from the source into the DfError to surface (timeout, cancellation, reset). */
  mapError: (error: unknown, received: number) => DfError;
  /** Called once when the body ended, failed or was abandoned: releases the request's timer and listeners. */
  onClose: () => void;
}

export class SourceBody implements AsyncIterable<Buffer> {
  private readonly source: AsyncIterable<Buffer | Uint8Array>;
  private readonly options: SourceBodyOptions;
  private received = 0;

  constructor(source: AsyncIterable<Buffer | Uint8Array>, options: SourceBodyOptions) {
    this.source = source;
    this.options = options;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer, void, undefined> {
    const { expectedLength, description } = this.options;
    const it = this.source[Symbol.asyncIterator]();
    let ended = false;
    try {
      for (;;) {
        let r: IteratorResult<Buffer | Uint8Array>;
        try {
          r = await it.next();
        } catch (e) {
          ended = true;
          throw this.options.mapError(e, this.received);
        }
        if (r.done) break;
        const chunk: unknown = r.value;
        if (!(chunk instanceof Uint8Array)) {
          throw new DfError(
            'BACKEND',
            `backend error: ${description} gave a ${typeof chunk} where bytes were expected`,
          );
        }
        this.received += chunk.length;
        if (expectedLength !== undefined && this.received > expectedLength) {
          throw new DfError(
            'BACKEND',
            `backend error: ${description} sent more than the ${expectedLength} bytes asked for`,
          );
        }
        yield Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      }
      ended = true;
      if (expectedLength !== undefined && this.received < expectedLength) {
        throw new DfError(
          'BACKEND',
          `backend error: ${description} ended after ${this.received} of ${expectedLength} bytes`,
          { retryable: true },
        );
      }
    } finally {
      // Stopped early (an overlong body, or the reader gave up): the source is abandoned, its connection ended.
      if (!ended) await it.return?.()?.catch(() => undefined);
      this.options.onClose();
    }
  }
}
