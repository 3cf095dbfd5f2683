// Sends a byte range of a content file to a stream (a Vortex child's socket, a proxy client's response) through
// a few read buffers that are used again, instead of `createReadStream`, which allocates a fresh buffer for every
// read: at 4 MiB pieces and 8 children at once that is a new 512 KiB buffer every ~0.5 ms, and the garbage
// collector and the allocator's page faults were a tenth of the piece server's time in a profile. A buffer goes
// back to the pool only when the stream's write callback says the bytes left it (the kernel has them or the
// stream was destroyed), so a buffer is never refilled under bytes still queued.

import type { FileHandle } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import type { BufferPool } from './buffer-pool.js';
import { DfError } from './errors.js';

const closedEarly = (): DfError => new DfError('IO', 'the receiving end closed before the range was sent');

/** Resolves when the stream can take more, rejects when it closed or failed first (or already had). */
function writable(out: Writable): Promise<void> {
  // A stream destroyed before we listen has emitted its 'close' already: waiting for one would never end.
  if (out.destroyed) return Promise.reject(closedEarly());
  return new Promise((resolve, reject) => {
    const done = (err?: Error): void => {
      out.off('drain', onDrain);
      out.off('close', onClose);
      out.off('error', onError);
      if (err) reject(err);
      else resolve();
    };
    const onDrain = (): void => done();
    const onClose = (): void => done(closedEarly());
    const onError = (e: Error): void => done(e);
    out.on('drain', onDrain);
    out.on('close', onClose);
    out.on('error', onError);
  });
}

/**
 * Writes `length` bytes of `file` from `offset` to `out`, waiting whenever `out` buffers more than its high-water
 * mark. Returns the bytes written: fewer than `length` when the file ended first (the caller decides what a short
 * file means). Does not end `out`.
 */
export async function sendFileRange(
  file: FileHandle,
  offset: number,
  length: number,
  out: Writable,
  pool: BufferPool,
): Promise<number> {
  let sent = 0;
  while (sent < length) {
    if (out.destroyed) throw closedEarly();
    const buf = pool.take();
    let n: number;
    try {
      n = (await file.read(buf, 0, Math.min(buf.length, length - sent), offset + sent)).bytesRead;
    } catch (e) {
      pool.give(buf);
      throw e;
    }
    if (n === 0) {
      pool.give(buf);
      break;
    }
    if (out.destroyed) {
      // It went away while we read.
      pool.give(buf);
      throw closedEarly();
    }
    sent += n;
    const more = out.write(n === buf.length ? buf : buf.subarray(0, n), () => pool.give(buf));
    if (!more && sent < length) await writable(out);
  }
  return sent;
}
