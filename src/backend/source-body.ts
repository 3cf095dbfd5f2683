// The body of a source response as handed to the daemon: the origin's bytes, passed through with backpressure and
// counted, so that a body that ends short or runs long ends in an error instead of a piece that looks finished.
// Upstream relies on the storage layer noticing a short read; counting here puts the check next to the request that
// knows how many bytes were asked for, and never buffers more than the stream's high-water mark.

import { Readable } from 'node:stream';
import { DfError } from '../core/errors.js';

/** Big enough that a piece streams without a pause/resume per network chunk. */
const SOURCE_BODY_HIGH_WATER_MARK = 64 * 1024;

export interface SourceBodyOptions {
  /** The exact number of bytes the body must carry; undefined when the origin did not say (no check). */
  expectedLength: number | undefined;
  /** Names the source in error messages (a URL without its query). */
  description: string;
  /** Turns an error from the source stream into the DfError to surface (timeout, cancellation, reset). */
  mapError: (error: unknown, received: number) => DfError;
  /** Called once when the body ended, failed or was destroyed: releases the request's timer and listeners. */
  onClose: () => void;
}

export class SourceBody extends Readable {
  private readonly source: Readable;
  private readonly expectedLength: number | undefined;
  private readonly description: string;
  private readonly mapError: SourceBodyOptions['mapError'];
  private onClose: (() => void) | undefined;
  private received = 0;
  private sourceEnded = false;

  constructor(source: Readable, options: SourceBodyOptions) {
    super({ highWaterMark: SOURCE_BODY_HIGH_WATER_MARK });
    this.source = source;
    this.expectedLength = options.expectedLength;
    this.description = options.description;
    this.mapError = options.mapError;
    this.onClose = options.onClose;
    // Bound once here rather than a closure per chunk.
    this.onSourceData = this.onSourceData.bind(this);
    this.onSourceEnd = this.onSourceEnd.bind(this);
    this.onSourceError = this.onSourceError.bind(this);
    source.on('data', this.onSourceData);
    source.on('end', this.onSourceEnd);
    source.on('error', this.onSourceError);
    // Flow only when our reader asks (see _read).
    source.pause();
  }

  /** Bytes received from the origin so far. */
  get bytesReceived(): number {
    return this.received;
  }

  override _read(): void {
    if (this.source.isPaused()) this.source.resume();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.source.off('data', this.onSourceData);
    this.source.off('end', this.onSourceEnd);
    this.source.off('error', this.onSourceError);
    // Keep a listener so a late error from the abandoned source is not unhandled.
    this.source.on('error', ignore);
    if (!this.sourceEnded) this.source.destroy();
    this.release();
    callback(error);
  }

  private onSourceData(chunk: Buffer): void {
    this.received += chunk.length;
    if (this.expectedLength !== undefined && this.received > this.expectedLength) {
      this.destroy(
        new DfError(
          'BACKEND',
          `backend error: ${this.description} sent more than the ${this.expectedLength} bytes asked for`,
        ),
      );
      return;
    }
    if (!this.push(chunk)) this.source.pause();
  }

  private onSourceEnd(): void {
    this.sourceEnded = true;
    if (this.expectedLength !== undefined && this.received < this.expectedLength) {
      this.destroy(
        new DfError(
          'BACKEND',
          `backend error: ${this.description} ended after ${this.received} of ${this.expectedLength} bytes`,
          { retryable: true },
        ),
      );
      return;
    }
    this.release();
    this.push(null);
  }

  private onSourceError(error: unknown): void {
    this.destroy(this.mapError(error, this.received));
  }

  private release(): void {
    const onClose = this.onClose;
    this.onClose = undefined;
    onClose?.();
  }
}

function ignore(): void {}
