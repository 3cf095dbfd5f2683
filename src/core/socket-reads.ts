// A socket's bytes as an async iterable of views into pooled buffers, for a reader that handles each chunk before
// it asks for the next one (a piece body written to its file). The socket reads into buffers taken from a pool
// (net's and tls's `onread`) instead of a fresh 64 KiB buffer per read, and pauses while views of its last reads
// are out: a chunk is valid until the next one is asked for. Reading 1 GiB of Vortex pieces this way costs the
// receiving process about a third of the CPU of `readable.read()` per 'readable' event (fresh buffers, listeners
// and promises per read, and the collector's work on the buffers that outlive the young generation).
//
// Which buffers may be read into again is read-buffers.ts's job. Every buffer goes back to the pool when the owner
// calls release(), after the socket is destroyed and the reader is done with the last chunk.

import type { Socket } from 'node:net';
import type { BufferPool } from './buffer-pool.js';
import { DfError } from './errors.js';
import { ReadBuffers } from './read-buffers.js';

const DONE: IteratorResult<Buffer> = { done: true, value: undefined };

export class SocketReads implements AsyncIterable<Buffer> {
  /** Every buffer taken from the pool, given back at release(). */
  private readonly owned: Buffer[] = [];
  private readonly buffers = new ReadBuffers(() => {
    const buf = this.pool.take();
    this.owned.push(buf);
    return buf;
  });
  /** Views of the last reads not handed to the reader yet (`viewAt` is the next). */
  private views: Buffer[] = [];
  private viewAt = 0;
  private socket: Socket | undefined;
  private ended = false;
  private failure: Error | undefined;
  private released = false;
  private waiter: { resolve: (r: IteratorResult<Buffer>) => void; reject: (e: Error) => void } | undefined;

  /** Give as `onread` to net.connect or tls.connect (tls ignores it when it wraps an existing `socket`). */
  readonly onread = {
    buffer: (): Buffer => this.buffers.next(),
    callback: (n: number, buf: Buffer): boolean => this.onRead(n, buf),
  };

  constructor(private readonly pool: BufferPool) {}

  /** Starts reading `socket`, which was connected with `onread` above. */
  attach(socket: Socket): void {
    this.socket = socket;
    socket.on('end', () => {
      this.ended = true;
      this.settle();
    });
    socket.on('error', (e) => {
      this.failure ??= e;
      this.settle();
    });
    socket.on('close', () => {
      if (!this.ended) this.failure ??= new DfError('IO', 'connection closed', { retryable: true });
      this.settle();
    });
    socket.resume();
  }

  [Symbol.asyncIterator](): AsyncIterator<Buffer> {
    return { next: () => this.next(), return: async () => DONE };
  }

  /** The next chunk: a view valid until the next call. Rejects with the socket's error, resolves done at its end. */
  next(): Promise<IteratorResult<Buffer>> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.viewAt < this.views.length)
      return Promise.resolve({ done: false, value: this.views[this.viewAt++]! });
    this.views = [];
    this.viewAt = 0;
    this.buffers.recycle();
    if (this.ended) return Promise.resolve(DONE);
    if (this.released) return Promise.reject(new DfError('IO', 'connection closed', { retryable: true }));
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
      const socket = this.socket;
      if (socket && !socket.destroyed) socket.resume();
    });
  }

  /** Gives every buffer back to the pool. Call once the socket is destroyed and the last chunk is no longer used. */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.socket?.destroy();
    for (const b of this.owned) this.pool.give(b);
    this.owned.length = 0;
    this.views = [];
    this.settle();
  }

  /** Handles `n` bytes just read into `buf`; false pauses the socket (a view of `buf` is out). */
  private onRead(n: number, buf: Buffer): boolean {
    if (this.released) return false;
    this.views.push(buf.subarray(0, n));
    this.buffers.filled(buf, true);
    this.settle();
    return false;
  }

  /** Answers a waiting reader if there is anything to answer with. */
  private settle(): void {
    const waiter = this.waiter;
    if (!waiter) return;
    if (this.failure) {
      this.waiter = undefined;
      waiter.reject(this.failure);
    } else if (this.viewAt < this.views.length) {
      this.waiter = undefined;
      waiter.resolve({ done: false, value: this.views[this.viewAt++]! });
    } else if (this.ended) {
      this.waiter = undefined;
      waiter.resolve(DONE);
    } else if (this.released) {
      this.waiter = undefined;
      waiter.reject(new DfError('IO', 'connection closed', { retryable: true }));
    }
  }
}
