// gRPC's length-prefixed messages on an HTTP/2 stream (PROTOCOL-HTTP2.md, "Length-Prefixed-Message"): one byte
// Compressed-Flag, four bytes big-endian length, the message. HTTP/2 cuts the stream into DATA frames wherever
// flow control and frame size say, so a message may span many frames and a frame may hold several messages.

import { DfError } from '../core/errors.js';

const PREFIX = 5;

/** `message` with its prefix (never compressed). */
export function frameMessage(message: Buffer): Buffer {
  const prefix = Buffer.allocUnsafe(PREFIX);
  prefix[0] = 0;
  prefix.writeUInt32BE(message.length, 1);
  return Buffer.concat([prefix, message]);
}

/**
 * Reassembles messages from DATA frames as they come. A message's bytes are kept as the frames that carried them
 * and joined once, when the last arrives, so a 4 MiB piece is copied once, not once per frame.
 */
export class MessageDecoder {
  private readonly header = Buffer.alloc(PREFIX);
  private headerFill = 0;
  private remaining = 0;
  private parts: Buffer[] = [];
  private partsLength = 0;

  /** The messages completed by `chunk`. */
  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let at = 0;
    while (at < chunk.length) {
      if (this.headerFill < PREFIX) {
        const n = Math.min(PREFIX - this.headerFill, chunk.length - at);
        chunk.copy(this.header, this.headerFill, at, at + n);
        this.headerFill += n;
        at += n;
        if (this.headerFill < PREFIX) break;
        this.startMessage(out);
        continue;
      }
      const n = Math.min(this.remaining, chunk.length - at);
      this.parts.push(chunk.subarray(at, at + n));
      this.partsLength += n;
      this.remaining -= n;
      at += n;
      if (this.remaining === 0) this.endMessage(out);
    }
    return out;
  }

  /** Whether the stream stopped between messages (a half message at the end is a broken stream). */
  get idle(): boolean {
    return this.headerFill === 0;
  }

  private startMessage(out: Buffer[]): void {
    const flag = this.header[0]!;
    // We never send grpc-accept-encoding, so a server may not compress; a flag of 1 is a server's error.
    if (flag !== 0) {
      throw new DfError(
        'INTERNAL',
        flag === 1
          ? 'received a compressed message, but no compression was negotiated'
          : `received a message with invalid compressed flag ${flag}`,
      );
    }
    this.remaining = this.header.readUInt32BE(1);
    if (this.remaining === 0) this.endMessage(out);
  }

  private endMessage(out: Buffer[]): void {
    out.push(this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.partsLength));
    this.parts = [];
    this.partsLength = 0;
    this.headerFill = 0;
  }
}
