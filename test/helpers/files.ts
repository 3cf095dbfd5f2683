// File checks shared by tests.

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';

/** The sha256 of a file, streamed. */
export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(path)) h.update(c as Buffer);
  return h.digest('hex');
}
