// dfget's transfer mode (--transfer-from-dfdaemon): the pieces arrive in DownloadTask's responses and dfget
// writes them itself. Loaded only in that mode: a dfget that lets dfdaemon write the output does not pay for it.

import { open, type FileHandle } from 'node:fs/promises';
import { Crc32, pieceDigest } from '../core/digest.js';
import { DfError } from '../core/errors.js';

/**
 * Transfer mode: the pieces arrive in the responses; we write them at their offsets, verified by CRC. dfdaemon
 * sends a piece in parts when we ask for that (PIECE_CHUNKS_METADATA): messages of the same piece number, each with
 * its part's offset and length, in order; the piece's digest is checked once its last part is written.
 */
export class TransferWriter {
  private fh?: FileHandle;
  private readonly specs = new Map<number, { offset: number; length: number }>();
  private readonly partial = new Map<number, { crc: Crc32; next: number }>();
  private received = new Set<number>();

  constructor(private readonly path: string) {}

  async open(): Promise<void> {
    this.fh = await open(this.path, 'w', 0o644);
  }

  async started(
    contentLength: number,
    pieces: ReadonlyArray<{ number: number; offset: number; length: number }>,
  ): Promise<void> {
    for (const p of pieces) this.specs.set(p.number, { offset: p.offset, length: p.length });
    await this.fh!.truncate(contentLength);
  }

  async piece(p: {
    number: number;
    offset: number;
    length: number;
    digest: string;
    content?: Buffer;
  }): Promise<void> {
    const { number, offset, digest, content } = p;
    if (!content) throw new DfError('INTERNAL', `piece ${number} arrived without content`);
    const spec = this.specs.get(number);
    if (!spec) throw new DfError('INTERNAL', `piece ${number} arrived but was not announced`);
    const end = spec.offset + spec.length;
    if (offset === spec.offset && content.length === spec.length) {
      if (digest && pieceDigest(content) !== digest) throw mismatch(number, digest);
      await this.write(content, offset);
      this.received.add(number);
      return;
    }
    // A part of the piece: the next one in order, inside the piece.
    const part = this.partial.get(number) ?? { crc: new Crc32(), next: spec.offset };
    if (offset !== part.next || offset + content.length > end || content.length === 0) {
      throw new DfError(
        'INTERNAL',
        `piece ${number}: unexpected part of ${content.length} bytes at offset ${offset} (expected offset ${part.next})`,
      );
    }
    part.crc.update(content);
    part.next += content.length;
    if (part.next < end) this.partial.set(number, part);
    else {
      this.partial.delete(number);
      if (digest && part.crc.digest() !== digest) throw mismatch(number, digest);
    }
    await this.write(content, offset);
    if (part.next === end) this.received.add(number);
  }

  private async write(content: Buffer, offset: number): Promise<void> {
    let done = 0;
    while (done < content.length) {
      done += (await this.fh!.write(content, done, content.length - done, offset + done)).bytesWritten;
    }
  }

  async close(): Promise<void> {
    await this.fh?.close();
    this.fh = undefined;
    if (this.received.size !== this.specs.size) {
      throw new DfError(
        'INTERNAL',
        `download ended with ${this.specs.size - this.received.size} pieces missing`,
      );
    }
  }

  async abort(): Promise<void> {
    await this.fh?.close().catch(() => undefined);
  }
}

function mismatch(number: number, digest: string): DfError {
  return new DfError('DIGEST_MISMATCH', `piece ${number} content does not match its digest ${digest}`);
}
