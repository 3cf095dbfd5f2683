// Whole-file digests for user-level verification (dfget --digest): streamed, never read whole into memory.

import { createReadStream } from 'node:fs';
import { createDigester, parseDigest, verifyDigest } from '../core/digest.js';

/** Computes the digest of a file in the algorithm of `expected` and throws DIGEST_MISMATCH if they differ. */
export async function verifyFileDigest(path: string, expected: string): Promise<void> {
  const { algorithm } = parseDigest(expected);
  const digester = createDigester(algorithm);
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 }))
    digester.update(chunk as Buffer);
  verifyDigest(expected, digester.digest());
}
