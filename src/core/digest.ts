// Digests: the CRC-32 that every piece carries, and the `algorithm:encoded` strings a user may pass as
// Download.digest to verify a whole file. Follows dragonfly-client-util/src/digest/mod.rs and the piece digest
// in dragonfly-client-storage (see spec §3).

import { createHash, type Hash } from 'node:crypto';
import { crc32 } from './crc32.js';
import { DfError } from './errors.js';

export type DigestAlgorithm = 'crc32' | 'sha256' | 'sha512';

export interface Digest {
  algorithm: DigestAlgorithm;
  encoded: string;
}

/** Upstream's separator between algorithm and encoded value. */
export const DIGEST_SEPARATOR = ':';

const UINT32_MAX = 0xffff_ffff;

// Hex lengths upstream requires (Digest::from_str). crc32 is handled separately, see parseDigest.
const HEX_LENGTH: Record<'sha256' | 'sha512', number> = { sha256: 64, sha512: 128 };

/** `algorithm:encoded`, the form upstream prints and compares (Display for Digest). No validation. */
export function formatDigest(digest: Digest): string {
  return `${digest.algorithm}${DIGEST_SEPARATOR}${digest.encoded}`;
}

/**
 * Incremental CRC-32/IEEE (ISO-HDLC, the same polynomial as crc32fast and zlib; crc32.ts): feeding chunks gives
 * the same result as one call over the whole buffer.
 */
export class Crc32 {
  private value = 0;

  update(data: NodeJS.ArrayBufferView | string): this {
    this.value = crc32(data, this.value);
    return this;
  }

  /** The unsigned 32-bit value. */
  value32(): number {
    return this.value;
  }

  /**
   * `crc32:<decimal>`. Decimal, not hex, and not zero-padded: peers compare piece digests as exact strings, so
   * this must match upstream's `u32::to_string()` byte for byte.
   */
  digest(): string {
    return `crc32${DIGEST_SEPARATOR}${this.value}`;
  }
}

/** The digest of one piece's bytes, as stored in piece metadata and sent to other peers: `crc32:<decimal>`. */
export function pieceDigest(data: NodeJS.ArrayBufferView | string): string {
  return `crc32${DIGEST_SEPARATOR}${crc32(data)}`;
}

/** Fields of a piece's metadata that its integrity digest covers (Piece::calculate_digest in storage/metadata.rs). */
export interface PieceMetadataFields {
  number: number;
  offset: number;
  length: number;
  digest: string;
}

/**
 * Integrity digest over a piece's metadata: CRC-32 of u32_be(number) ‖ u64_be(offset) ‖ u64_be(length) ‖
 * utf8(digest). Upstream stores it to detect a torn or corrupted metadata record.
 */
export function pieceMetadataDigest(piece: PieceMetadataFields): string {
  const head = Buffer.alloc(4 + 8 + 8);
  head.writeUInt32BE(piece.number, 0);
  head.writeBigUInt64BE(BigInt(piece.offset), 4);
  head.writeBigUInt64BE(BigInt(piece.length), 12);
  return new Crc32().update(head).update(Buffer.from(piece.digest, 'utf8')).digest();
}

/**
 * Parses a user digest such as Download.digest or `dfget --digest`.
 *
 * Rules (upstream Digest::from_str): split on the first ':'; the algorithm must be crc32, sha256 or sha512;
 * sha256 needs 64 and sha512 128 characters. We additionally require those to be hex, so a typo fails here
 * with a clear message instead of later as a mismatch.
 *
 * crc32 deviation: upstream demands exactly 10 characters, but a CRC rendered in decimal without padding (the
 * form upstream itself computes) has fewer digits whenever the value is below 1,000,000,000 — about a quarter of
 * all files — so upstream can never verify those. We accept 1 to 10 decimal digits whose value fits in a u32
 * (leading zeros allowed), and verifyDigest compares crc32 values numerically, so both the short canonical form and
 * a zero-padded 10-digit form verify. Every string upstream accepts and that is a real CRC still parses.
 */
export function parseDigest(input: string): Digest {
  const at = input.indexOf(DIGEST_SEPARATOR);
  if (at < 0) {
    throw new DfError('INVALID_ARGUMENT', `invalid digest "${input}": expected <algorithm>:<encoded>`);
  }
  const algorithm = input.slice(0, at);
  const encoded = input.slice(at + 1);
  switch (algorithm) {
    case 'crc32':
      if (!/^[0-9]{1,10}$/.test(encoded) || Number(encoded) > UINT32_MAX) {
        throw new DfError(
          'INVALID_ARGUMENT',
          `invalid crc32 digest "${encoded}": expected the decimal CRC-32 value (0 to ${UINT32_MAX})`,
        );
      }
      return { algorithm, encoded };
    case 'sha256':
    case 'sha512': {
      const want = HEX_LENGTH[algorithm];
      if (encoded.length !== want || !/^[0-9a-fA-F]*$/.test(encoded)) {
        throw new DfError(
          'INVALID_ARGUMENT',
          `invalid ${algorithm} digest length ${encoded.length}: expected ${want} hex characters`,
        );
      }
      return { algorithm, encoded };
    }
    default:
      throw new DfError(
        'UNSUPPORTED_DIGEST',
        `unsupported digest algorithm "${algorithm}": expected crc32, sha256 or sha512`,
      );
  }
}

/** A running digest of one algorithm; digest() returns `algorithm:encoded` as upstream formats it. */
export interface Digester {
  readonly algorithm: DigestAlgorithm;
  update(data: NodeJS.ArrayBufferView | string): this;
  digest(): string;
}

class HashDigester implements Digester {
  private readonly hash: Hash;

  constructor(readonly algorithm: 'sha256' | 'sha512') {
    this.hash = createHash(algorithm);
  }

  update(data: NodeJS.ArrayBufferView | string): this {
    this.hash.update(data);
    return this;
  }

  // Lowercase hex, as upstream's hex::encode.
  digest(): string {
    return `${this.algorithm}${DIGEST_SEPARATOR}${this.hash.digest('hex')}`;
  }
}

class Crc32Digester implements Digester {
  readonly algorithm = 'crc32' as const;
  private readonly crc = new Crc32();

  update(data: NodeJS.ArrayBufferView | string): this {
    this.crc.update(data);
    return this;
  }

  digest(): string {
    return this.crc.digest();
  }
}

export function createDigester(algorithm: DigestAlgorithm): Digester {
  switch (algorithm) {
    case 'crc32':
      return new Crc32Digester();
    case 'sha256':
    case 'sha512':
      return new HashDigester(algorithm);
    default:
      throw new DfError('UNSUPPORTED_DIGEST', `unsupported digest algorithm "${String(algorithm)}"`);
  }
}

// The comparable form of a parsed digest: crc32 by value (so padding does not matter), hex in lowercase.
function canonical(d: Digest): string {
  const encoded = d.algorithm === 'crc32' ? String(Number(d.encoded)) : d.encoded.toLowerCase();
  return formatDigest({ algorithm: d.algorithm, encoded });
}

/**
 * Throws DIGEST_MISMATCH unless `actual` (what a Digester produced) matches `expected` (a user or parent
 * digest). Upstream compares the two strings exactly; we compare canonical forms, which agrees with upstream on
 * every digest upstream can parse except that it also accepts uppercase hex and short/padded crc32 values.
 */
export function verifyDigest(expected: string, actual: string): void {
  const want = parseDigest(expected);
  const got = parseDigest(actual);
  if (canonical(want) !== canonical(got)) {
    throw new DfError('DIGEST_MISMATCH', `digest mismatch: expected ${expected}, got ${actual}`);
  }
}
