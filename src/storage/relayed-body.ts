// The body of a piece answered while it still arrives (cut-through; storage/arriving-pieces.ts): the bytes are read
// back from the content file as the piece's writer puts them there, so memory holds one read buffer per child, not
// the piece. The piece's failure (its parent went away, its digest did not match) ends the body with an error,
// and the Vortex server then cuts the connection: the child sees a short body and takes the piece elsewhere.

import { Readable } from 'node:stream';
import type { ArrivingPiece } from './arriving-pieces.js';
import type { ContentReader } from './content.js';

/** A readable of the arriving piece's bytes, `chunkSize` at most per read; closes `reader` when it ends. */
export function relayedBody(
  piece: ArrivingPiece,
  reader: ContentReader,
  chunkSize: number,
  signal: AbortSignal,
): Readable {
  async function* chunks(): AsyncGenerator<Buffer> {
    try {
      let sent = 0;
      while (sent < piece.length) {
        const ready = await piece.waitBeyond(sent, signal);
        while (sent < ready) {
          const buf = Buffer.allocUnsafe(Math.min(chunkSize, ready - sent));
          await reader.read(piece.offset + sent, buf);
          sent += buf.length;
          yield buf;
        }
      }
    } finally {
      await reader.close();
    }
  }
  return Readable.from(chunks(), { objectMode: false });
}
