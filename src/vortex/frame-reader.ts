// Streaming Vortex decoder over a byte stream (a socket, a QUIC stream, or chunks in a test). It reads a header,
// checks the announced length against a bound chosen per tag before allocating anything, reads the value, and for
// PieceContent hands back the metadata with an iterable of exactly `metadata.length` raw bytes that follow
// unframed. The piece bytes are passed through chunk by chunk, never gathered; a body chunk is valid until the next
// one is asked for, as the source's chunks are.

import type { Readable } from 'node:stream';
import { DfError } from '../core/errors.js';
import {
  DOWNLOAD_PIECE_VALUE_SIZE,
  HEADER_SIZE,
  Tag,
  decodeHeader,
  decodePieceMetadata,
  decodeValue,
  isContentTag,
  isDownloadTag,
  type Header,
  type Packet,
  type PieceContentPacket,
} from './codec.js';

/**
 * Bound for values that are not piece bytes: Error messages, PieceContent metadata, Close and reserved values.
 * Upstream only bounds them by u32 (and allocates what the header says); a conforming peer sends a few hundred
 * bytes at most (a digest, a parent id, a one-line message), so anything larger is refused unread.
 */
export const DEFAULT_MAX_CONTROL_VALUE_SIZE = 64 * 1024;

export type Frame =
  | { header: Header; packet: PieceContentPacket; body: AsyncIterable<Buffer> }
  | { header: Header; packet: Exclude<Packet, PieceContentPacket>; body?: undefined };

export interface FrameReaderOptions {
  maxControlValueSize?: number;
}

function tooLarge(what: string, length: number, max: number): DfError {
  return new DfError('INVALID_ARGUMENT', `vortex: invalid length: ${what} of ${length} bytes exceeds ${max}`);
}

/** A stream that ended or failed in the middle of a frame: the peer went away, so another try may work. */
function truncated(what: string, got: number, want: number | bigint): DfError {
  return new DfError('IO', `vortex: connection closed after ${got} of ${want} bytes of ${what}`, {
    retryable: true,
  });
}

function streamFailed(e: unknown): DfError {
  if (e instanceof DfError) return e;
  const message = e instanceof Error ? e.message : String(e);
  return new DfError('IO', `vortex: connection failed: ${message}`, { cause: e, retryable: true });
}

export class FrameReader {
  private readonly iterator: AsyncIterator<Buffer | Uint8Array | string>;
  private readonly maxControlValueSize: number;
  /** Bytes received but not consumed yet (at most one chunk's worth). */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private ended = false;
  /** Set while a piece body is being read, or after one was abandoned: the stream position is then unknown. */
  private busy = false;

  constructor(source: AsyncIterable<Buffer | Uint8Array | string>, options: FrameReaderOptions = {}) {
    this.iterator = source[Symbol.asyncIterator]();
    this.maxControlValueSize = options.maxControlValueSize ?? DEFAULT_MAX_CONTROL_VALUE_SIZE;
  }

  /**
   * Pulls one more chunk into `pending`; false at the end of the stream. A source's chunk need only stay valid until
   * the next pull (core/socket-reads.ts reads into buffers it uses again), so bytes still pending are copied first:
   * only a header or metadata split across reads, a few bytes; a body pulls with nothing pending.
   */
  private async pull(): Promise<boolean> {
    if (this.ended) return false;
    for (let i = 0; i < this.pending.length; i++) this.pending[i] = Buffer.from(this.pending[i]!);
    let next: IteratorResult<Buffer | Uint8Array | string>;
    try {
      next = await this.iterator.next();
    } catch (e) {
      this.ended = true;
      throw streamFailed(e);
    }
    if (next.done) {
      this.ended = true;
      return false;
    }
    const v = next.value;
    const chunk = Buffer.isBuffer(v)
      ? v
      : typeof v === 'string'
        ? Buffer.from(v)
        : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
    if (chunk.length > 0) {
      this.pending.push(chunk);
      this.pendingBytes += chunk.length;
    }
    return true;
  }

  /** Takes up to `max` bytes from `pending` (one chunk or part of one, never copying). */
  private take(max: number): Buffer {
    const head = this.pending[0]!;
    if (head.length <= max) {
      this.pending.shift();
      this.pendingBytes -= head.length;
      return head;
    }
    this.pending[0] = head.subarray(max);
    this.pendingBytes -= max;
    return head.subarray(0, max);
  }

  /** Exactly `n` bytes (n is bounded by the callers); null if the stream ended cleanly before the first byte. */
  private async readExact(n: number, what: string, allowEof = false): Promise<Buffer | null> {
    while (this.pendingBytes < n) {
      if (!(await this.pull())) {
        if (allowEof && this.pendingBytes === 0) return null;
        throw truncated(what, this.pendingBytes, n);
      }
    }
    if (n === 0) return Buffer.alloc(0);
    if (this.pending[0]!.length >= n) return this.take(n);
    const out = Buffer.allocUnsafe(n);
    let at = 0;
    while (at < n) {
      const part = this.take(n - at);
      part.copy(out, at);
      at += part.length;
    }
    return out;
  }

  /** Reads and drops `n` bytes without holding more than one chunk. */
  private async skip(n: number, what: string): Promise<void> {
    let left = n;
    while (left > 0) {
      if (this.pendingBytes === 0 && !(await this.pull())) throw truncated(what, n - left, n);
      if (this.pendingBytes > 0) left -= this.take(left).length;
    }
  }

  /**
   * The next frame, or null when the stream ended cleanly between frames. Malformed frames throw a DfError
   * with code INVALID_ARGUMENT; a stream that ends inside a frame throws IO (retryable).
   */
  async readFrame(): Promise<Frame | null> {
    if (this.busy) throw new DfError('INTERNAL', 'vortex: the previous piece body was not read to its end');
    const headerBytes = await this.readExact(HEADER_SIZE, 'header', true);
    if (headerBytes === null) return null;
    const header = decodeHeader(headerBytes);
    const { tag, length } = header;

    if (isContentTag(tag)) {
      // Like upstream's client, the header length is not trusted for content: metadata_length says how much
      // metadata follows, and metadata.length how many raw bytes follow that.
      const metadataLength = (await this.readExact(4, 'metadata length'))!.readUInt32BE(0);
      if (metadataLength > this.maxControlValueSize) {
        throw tooLarge('PieceContent metadata', metadataLength, this.maxControlValueSize);
      }
      const metadata = decodePieceMetadata((await this.readExact(metadataLength, 'PieceContent metadata'))!);
      if (metadata.length > BigInt(Number.MAX_SAFE_INTEGER)) {
        throw tooLarge('piece', Number(metadata.length), Number.MAX_SAFE_INTEGER);
      }
      const packet: PieceContentPacket = { kind: 'content', id: header.id, tag, metadata };
      return { header, packet, body: this.body(Number(metadata.length)) };
    }

    if (isDownloadTag(tag)) {
      // The value has a fixed size; refuse any other length before reading it.
      if (length !== DOWNLOAD_PIECE_VALUE_SIZE) {
        throw new DfError(
          'INVALID_ARGUMENT',
          `vortex: invalid length: expected ${DOWNLOAD_PIECE_VALUE_SIZE} bytes for DownloadPiece, got ${length}`,
        );
      }
    } else if (length > this.maxControlValueSize) {
      throw tooLarge(`value of tag ${tag}`, length, this.maxControlValueSize);
    }

    if (tag === Tag.Close || !(isDownloadTag(tag) || tag === Tag.Error)) {
      await this.skip(length, 'value');
      return { header, packet: decodeValue(header, Buffer.alloc(0)) as Exclude<Packet, PieceContentPacket> };
    }
    const value = (await this.readExact(length, 'value'))!;
    return { header, packet: decodeValue(header, value) as Exclude<Packet, PieceContentPacket> };
  }

  /**
   * Exactly `length` raw bytes, chunk by chunk as they arrive. Ending early throws IO (truncated). Bytes after
   * the piece stay unread. Reading stops pulling when the consumer stops, which is the backpressure.
   */
  private body(length: number): AsyncIterable<Buffer> {
    this.busy = length > 0;
    let started = false;
    return {
      [Symbol.asyncIterator]: () => {
        if (started) throw new DfError('INTERNAL', 'vortex: a piece body can be read only once');
        started = true;
        let left = length;
        let abandoned = false;
        return {
          next: async (): Promise<IteratorResult<Buffer>> => {
            if (abandoned) return { done: true, value: undefined };
            if (left === 0) {
              this.busy = false;
              return { done: true, value: undefined };
            }
            while (this.pendingBytes === 0) {
              if (!(await this.pull())) throw truncated('piece content', length - left, length);
            }
            const chunk = this.take(left);
            left -= chunk.length;
            return { done: false, value: chunk };
          },
          // An abandoned body leaves `busy` set: the stream position is unknown, so no frame may follow.
          return: async (): Promise<IteratorResult<Buffer>> => {
            abandoned = left > 0;
            if (!abandoned) this.busy = false;
            return { done: true, value: undefined };
          },
        };
      },
    };
  }

  /** Stops reading the source (for a socket iterator this destroys the socket). */
  async close(): Promise<void> {
    this.ended = true;
    try {
      await this.iterator.return?.();
    } catch {
      // The stream is being torn down; nothing useful to report.
    }
  }
}

const DONE: IteratorResult<Buffer> = { done: true, value: undefined };

/**
 * The chunks of a Readable, pulled one `read()` at a time. Unlike the Readable's own async iterator, stopping
 * early does not destroy the stream, and no listener stays attached between pulls, so a server can read one
 * request and then `resume()` the socket to discard the rest while it writes the answer. The owner must keep
 * an 'error' listener on the stream; an error that happens between pulls is reported by the next pull.
 */
export function readableChunks(stream: Readable): AsyncIterable<Buffer> {
  const next = (): Promise<IteratorResult<Buffer>> =>
    new Promise((resolve, reject) => {
      if (stream.errored) return reject(stream.errored);
      if (stream.readableEnded) return resolve(DONE);
      if (stream.destroyed)
        return reject(new DfError('IO', 'vortex: connection closed', { retryable: true }));
      const settle = (fn: () => void): void => {
        stream.off('readable', tryRead);
        stream.off('end', onEnd);
        stream.off('error', onError);
        stream.off('close', onClose);
        fn();
      };
      const tryRead = (): void => {
        const chunk = stream.read() as Buffer | null;
        if (chunk !== null) settle(() => resolve({ done: false, value: chunk }));
      };
      const onEnd = (): void => settle(() => resolve(DONE));
      const onError = (e: unknown): void => settle(() => reject(e));
      const onClose = (): void =>
        settle(() =>
          stream.readableEnded
            ? resolve(DONE)
            : reject(stream.errored ?? new DfError('IO', 'vortex: connection closed', { retryable: true })),
        );
      stream.on('readable', tryRead);
      stream.on('end', onEnd);
      stream.on('error', onError);
      stream.on('close', onClose);
      tryRead();
    });
  return {
    [Symbol.asyncIterator]: () => ({ next, return: async () => DONE }),
  };
}
