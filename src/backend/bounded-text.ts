// A small answer read whole (a listing, a file status): bounded, so a source that streams without end cannot make
// the daemon hold it all in memory. Shared by the backends that read JSON from their source's API.

import { DfError } from '../core/errors.js';

/** The body as UTF-8 text; BACKEND naming `what` when it is longer than `limit` bytes. */
export async function readBoundedText(
  body: AsyncIterable<Buffer>,
  limit: number,
  what: string,
): Promise<string> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of body) {
    length += chunk.length;
    if (length > limit) throw new DfError('BACKEND', `${what} is larger than ${limit} bytes`);
    chunks.push(Buffer.from(chunk)); // a body's chunk is valid only until the next one is asked for
  }
  return Buffer.concat(chunks).toString('utf8');
}
