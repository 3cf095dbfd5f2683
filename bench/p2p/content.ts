// Generated content, shared by the origin (which serves it) and the verifier (which checks every output).
// File `seed` of `size` bytes is 1 MiB chunks of SHA-256 in counter mode, each stamped with its index, so no two
// chunks (and no two pieces) are equal and nothing has to be stored.

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';

export const MIB = 2 ** 20;
export const CHUNK = MIB;

/** 1 MiB of pseudo-random bytes for file `seed`. */
export function baseBlock(seed: number): Buffer {
  const b = Buffer.allocUnsafe(CHUNK);
  for (let off = 0, i = 0; off < CHUNK; off += 32, i++) {
    createHash('sha256').update(`dfp2p:${seed}:${i}`).digest().copy(b, off);
  }
  return b;
}

/** Chunk k of a file: the base block stamped with k. */
export function chunkOf(base: Buffer, seed: number, k: number): Buffer {
  const c = Buffer.from(base);
  c.writeBigUInt64LE(BigInt(k), 0);
  c.writeUInt32LE(seed, 8);
  c.writeBigUInt64LE((BigInt(k) * 0x9e3779b97f4a7c15n) & 0xffffffffffffffffn, CHUNK / 2);
  return c;
}

export function expectedSha256(seed: number, size: number): string {
  const base = baseBlock(seed);
  const h = createHash('sha256');
  for (let k = 0; k * CHUNK < size; k++) {
    h.update(chunkOf(base, seed, k).subarray(0, Math.min(CHUNK, size - k * CHUNK)));
  }
  return h.digest('hex');
}

export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  try {
    for await (const c of createReadStream(path, { highWaterMark: MIB })) h.update(c as Buffer);
    return h.digest('hex');
  } catch {
    return 'missing';
  }
}
