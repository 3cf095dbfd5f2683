// Piece bytes to transfer-mode clients (Download.need_piece_content: `dfget --transfer-from-dfdaemon`, SDKs), with
// memory bounded by backpressure rather than by the number of streams.
//
// Each DownloadPieceFinishedResponse with content costs what its bytes cost until HTTP/2 has handed them to the
// socket. grpc-js buffers 16 messages per stream before write() says "wait" and copies each message three times on
// its way (encode, Buffer.from, framing), so 100 streams of 4 MiB pieces once held gigabytes. Here:
// - every message with content is written only when `download.server.transferBufferSize` has room for its bytes
//   (one budget for all calls, first come first served), and the bytes are given back when grpc-js reports the
//   message written to the transport (its write callback), or when the call ends;
// - a stream has one such message in flight at a time, and nothing is read ahead;
// - the message is encoded by hand around the content in a pooled buffer with room for the gRPC prefix in front, so
//   the file is read straight into the frame that goes to HTTP/2 (grpc/framed-responses.ts lets it past grpc-js's
//   framing copy) and the buffer is used again once HTTP/2 has written it: no garbage per message;
// - a client that says it takes pieces in parts (gRPC metadata `x-dragonfly-piece-content-chunks: true`, which
//   our dfget sends) gets each piece as messages of at most `chunkSize` bytes (storage.readBufferSize): the same
//   `number` and `digest` (of the whole piece), the part's own `offset` and `length`, in order, one piece after
//   the other. Upstream's dfget writes each message's content at its offset, so parts would suit it too, but
//   clients that did not ask get whole pieces, as from upstream.

import { BinaryWriter } from '@bufbuild/protobuf/wire';
import type { Metadata, ServerWritableStream } from '@grpc/grpc-js';
import { DfError } from '../../core/errors.js';
import { PIECE_CHUNKS_METADATA } from '../../core/piece-chunks.js';
import { FRAME_PREFIX_BYTES, framedMessage } from '../../grpc/framed-responses.js';
import { Piece } from '../../gen/common.js';
import type { DownloadTaskResponse } from '../../gen/dfdaemon.js';

/** Whether the call's client takes pieces in parts. */
export function acceptsPieceChunks(metadata: Metadata): boolean {
  return metadata.get(PIECE_CHUNKS_METADATA).some((v) => String(v) === 'true');
}

/**
 * A byte budget shared by all calls: `acquire(n)` resolves once n bytes (at most the capacity, so one message larger
 * than the whole budget still goes, alone) fit beside what is held, in the order asked.
 */
export class ByteBudget {
  readonly capacity: number;
  private held = 0;
  private readonly waiting: Array<{ bytes: number; grant: () => void }> = [];

  constructor(capacity: number) {
    if (!(capacity > 0))
      throw new DfError('INVALID_CONFIG', `a byte budget must be positive, got ${capacity}`);
    this.capacity = capacity;
  }

  /** Bytes held now. */
  get used(): number {
    return this.held;
  }

  /** Resolves with the release of `bytes`; rejects with the signal's reason if it aborts first. */
  acquire(bytes: number, signal: AbortSignal): Promise<() => void> {
    const n = Math.min(Math.max(0, bytes), this.capacity);
    if (signal.aborted) return Promise.reject(toError(signal.reason));
    const release = this.releaser(n);
    if (this.waiting.length === 0 && this.held + n <= this.capacity) {
      this.held += n;
      return Promise.resolve(release);
    }
    return new Promise((resolve, reject) => {
      const entry = {
        bytes: n,
        grant: () => {
          signal.removeEventListener('abort', onAbort);
          resolve(release);
        },
      };
      const onAbort = () => {
        const i = this.waiting.indexOf(entry);
        if (i >= 0) this.waiting.splice(i, 1);
        this.grantWaiting();
        reject(toError(signal.reason));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(entry);
    });
  }

  private releaser(n: number): () => void {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.held -= n;
      this.grantWaiting();
    };
  }

  private grantWaiting(): void {
    while (this.waiting.length > 0 && this.held + this.waiting[0]!.bytes <= this.capacity) {
      const next = this.waiting.shift()!;
      this.held += next.bytes;
      next.grant();
    }
  }
}

function toError(reason: unknown): Error {
  return reason instanceof Error ? reason : new DfError('CANCELLED', 'the download was cancelled');
}

/** DownloadTaskResponse field tags (field << 3 | wire type 2) and Piece.content's. */
const TAG_DOWNLOAD_PIECE_FINISHED_RESPONSE = (5 << 3) | 2;
const TAG_PIECE = (1 << 3) | 2;
const TAG_CONTENT = (6 << 3) | 2;

/**
 * The encoded DownloadTaskResponse{ids, download_piece_finished_response{piece}} up to the first byte of
 * piece.content, for `contentLength` bytes of content that follow it. The content field goes last in the piece
 * (protobuf readers take fields in any order), so nothing before it depends on the bytes.
 */
export function encodePieceResponseHead(
  ids: { hostId: string; taskId: string; peerId: string },
  piece: Omit<Piece, 'content'>,
  contentLength: number,
): Uint8Array {
  const pieceHead = Piece.encode({ ...piece, content: undefined }).finish();
  const contentField = 1 + varintLength(contentLength) + contentLength;
  const pieceLength = pieceHead.length + contentField;
  const finishedLength = 1 + varintLength(pieceLength) + pieceLength;
  const head = new BinaryWriter();
  if (ids.hostId) head.uint32(10).string(ids.hostId);
  if (ids.taskId) head.uint32(18).string(ids.taskId);
  if (ids.peerId) head.uint32(26).string(ids.peerId);
  head.uint32(TAG_DOWNLOAD_PIECE_FINISHED_RESPONSE).uint32(finishedLength);
  head.uint32(TAG_PIECE).uint32(pieceLength);
  head.raw(pieceHead);
  head.uint32(TAG_CONTENT).uint32(contentLength);
  return head.finish();
}

function varintLength(n: number): number {
  let len = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 0x80);
    len++;
  }
  return len;
}

export type DownloadTaskCall = ServerWritableStream<unknown, DownloadTaskResponse>;

/**
 * Writes one message and resolves once HTTP/2 has written it to the socket (the write callback), so a stream never
 * has more than this message queued and a framed message's buffer may then be used again. Rejects when `signal`
 * aborts first (a cancelled call's write never calls back).
 */
export function writeFlushed(call: DownloadTaskCall, message: Buffer, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(toError(signal.reason));
      return;
    }
    const onAbort = () => reject(toError(signal.reason));
    signal.addEventListener('abort', onAbort, { once: true });
    // The method accepts framed messages (acceptFramedResponses); the stream's type names the decoded form.
    call.write(message as unknown as DownloadTaskResponse, (err: Error | null | undefined) => {
      signal.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else resolve();
    });
  });
}

/** How long pooled message buffers outlive the last transfer. */
const POOL_IDLE_MS = 1000;
/** Free message buffers kept for reuse. */
const POOL_SIZE = 8;
/** Room for the gRPC prefix and a message's head (ids, piece fields) beside a part's bytes in a pooled buffer. */
const HEAD_ROOM = 4096;

export interface PieceContentSenderOptions {
  /** download.server.transferBufferSize */
  capacity: number;
  /** The largest part of a piece in one message (storage.readBufferSize). */
  chunkSize: number;
}

/**
 * Sends pieces with their bytes (see the top of this file). A message holds its share of the budget from before
 * its bytes are read until HTTP/2 has written it. The message is framed in a buffer reused from a small pool, given
 * back once written (a message whose write failed or was cancelled keeps its buffer: HTTP/2 may still hold it); a
 * whole piece for a client that takes no parts gets a buffer of its own.
 */
export class PieceContentSender {
  readonly budget: ByteBudget;
  readonly chunkSize: number;
  private readonly free: Buffer[] = [];
  private idle?: NodeJS.Timeout;

  constructor(o: PieceContentSenderOptions) {
    this.budget = new ByteBudget(o.capacity);
    this.chunkSize = Math.max(1, Math.min(o.chunkSize, o.capacity));
  }

  /**
   * One piece: in one message, or in parts of at most chunkSize bytes (`chunks`), each read from `reader` straight
   * into its message and written only once the budget has room for it. Resolves when the last one is written.
   */
  async send(
    call: DownloadTaskCall,
    ids: { hostId: string; taskId: string; peerId: string },
    piece: Omit<Piece, 'content'>,
    reader: { read(offset: number, target: Buffer): Promise<void> },
    chunks: boolean,
    signal: AbortSignal,
  ): Promise<void> {
    const step = chunks ? this.chunkSize : Math.max(1, piece.length);
    let at = 0;
    do {
      const length = Math.min(step, piece.length - at);
      const offset = piece.offset + at;
      const head = encodePieceResponseHead(ids, { ...piece, offset, length }, length);
      const release = await this.budget.acquire(length, signal);
      try {
        const contentAt = FRAME_PREFIX_BYTES + head.length;
        const pooled = contentAt <= HEAD_ROOM && length <= this.chunkSize;
        const buffer = pooled
          ? (this.free.pop() ?? Buffer.allocUnsafeSlow(this.chunkSize + HEAD_ROOM))
          : Buffer.allocUnsafe(contentAt + length);
        const frame = buffer.subarray(0, contentAt + length);
        frame.set(head, FRAME_PREFIX_BYTES);
        try {
          await reader.read(offset, frame.subarray(contentAt));
        } catch (e) {
          if (pooled) this.giveBack(buffer);
          throw e;
        }
        await writeFlushed(call, framedMessage(frame), signal);
        if (pooled) this.giveBack(buffer);
      } finally {
        release();
        this.dropPoolWhenIdle();
      }
      at += length;
    } while (at < piece.length);
  }

  private giveBack(buffer: Buffer): void {
    if (this.free.length < POOL_SIZE) this.free.push(buffer);
  }

  /** Pooled buffers are freed once no message has been in flight for a second: an idle daemon holds none. */
  private dropPoolWhenIdle(): void {
    if (this.budget.used > 0 || this.free.length === 0) return;
    if (this.idle) this.idle.refresh();
    else {
      this.idle = setTimeout(() => {
        if (this.budget.used === 0) this.free.length = 0;
      }, POOL_IDLE_MS);
      this.idle.unref();
    }
  }
}
