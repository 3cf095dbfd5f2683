// Piece math: how a task's content is cut into pieces (resource/piece.rs). Every peer of a task must cut it the
// same way, since pieces are exchanged and verified by number. Plain numbers are exact here: content lengths stay
// below 2^53 (8 PiB).

import { DfError } from './errors.js';

const MiB = 1024 * 1024;

/** Smallest piece (dragonfly-client-config MIN_PIECE_LENGTH); also the least a user may request. */
export const MIN_PIECE_LENGTH = 4 * MiB;

/** Largest computed piece; a user-requested length is not clamped to it. */
export const MAX_PIECE_LENGTH = 64 * MiB;

/**
 * Target piece count when the length is computed: content/500 rounded up to a power of two. Past 64 MiB pieces
 * the count grows above it (a 1 TiB file has 16384 pieces).
 */
export const MAX_PIECE_COUNT = 500;

export interface PieceSpan {
  number: number;
  offset: number;
  length: number;
}

/** A byte range of the content, as common.v2.Range. */
export interface ContentRange {
  start: number;
  length: number;
}

// Rust u64::next_power_of_two: the smallest power of two >= n, with 0 -> 1. A loop rather than Math.log2,
// which can round an exact power the wrong way.
function nextPowerOfTwo(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

/**
 * Piece length for content of this size when the request names none: nextPow2(trunc(len / 500)) clamped to
 * [4 MiB, 64 MiB]. So up to ~1.95 GiB → 4 MiB, ~3.9 GiB → 8 MiB, … , larger → 64 MiB.
 */
export function calculatePieceLength(contentLength: number): number {
  const candidate = nextPowerOfTwo(Math.trunc(contentLength / MAX_PIECE_COUNT));
  if (candidate >= MAX_PIECE_LENGTH) return MAX_PIECE_LENGTH;
  if (candidate > MIN_PIECE_LENGTH) return candidate;
  return MIN_PIECE_LENGTH;
}

/**
 * Checks a user-requested piece length (dfget --piece-length, Download.piece_length): at least 4 MiB, no upper
 * bound, as upstream dfget validates. Returns it unchanged.
 */
export function validatePieceLength(pieceLength: number): number {
  if (!Number.isSafeInteger(pieceLength)) {
    throw new DfError('INVALID_ARGUMENT', `piece length ${pieceLength} is not a whole number of bytes`);
  }
  if (pieceLength < MIN_PIECE_LENGTH) {
    throw new DfError(
      'INVALID_ARGUMENT',
      `piece length ${pieceLength} bytes is less than the minimum piece length ${MIN_PIECE_LENGTH} bytes`,
    );
  }
  return pieceLength;
}

function checkLengths(contentLength: number, pieceLength: number): void {
  if (!Number.isSafeInteger(contentLength) || contentLength < 0) {
    throw new DfError('INVALID_ARGUMENT', `invalid content length ${contentLength}`);
  }
  if (!Number.isSafeInteger(pieceLength) || pieceLength <= 0) {
    throw new DfError('INVALID_ARGUMENT', `invalid piece length ${pieceLength}`);
  }
}

/** ceil(contentLength / pieceLength); 0 for empty content. */
export function pieceCount(contentLength: number, pieceLength: number): number {
  checkLengths(contentLength, pieceLength);
  return Math.ceil(contentLength / pieceLength);
}

/** Piece `number` of the content: full pieces from offset 0, the last one holds the remainder. */
export function pieceRange(number: number, contentLength: number, pieceLength: number): PieceSpan {
  const count = pieceCount(contentLength, pieceLength);
  if (!Number.isInteger(number) || number < 0 || number >= count) {
    throw new DfError('INVALID_ARGUMENT', `piece ${number} out of range: content has ${count} pieces`);
  }
  const offset = number * pieceLength;
  return { number, offset, length: Math.min(pieceLength, contentLength - offset) };
}

/** Every piece of the content, in order; empty for empty content. */
export function pieceRanges(contentLength: number, pieceLength: number): PieceSpan[] {
  const count = pieceCount(contentLength, pieceLength);
  const pieces: PieceSpan[] = new Array(count);
  for (let n = 0; n < count; n++) {
    const offset = n * pieceLength;
    pieces[n] = { number: n, offset, length: Math.min(pieceLength, contentLength - offset) };
  }
  return pieces;
}

/**
 * The pieces a download needs (Piece::calculate_interested): all of them, or with a range only those
 * overlapping [start, start + length). Pieces keep their whole-content boundaries, so a range still fetches
 * whole pieces and shares them with full downloads.
 *
 * Edge cases follow upstream: empty content needs no pieces (even with a range); a zero-length range, or one
 * that starts past the last piece, is INVALID_ARGUMENT; a range running past the end is cut at the end.
 * Upstream walks piece by piece; this computes the same bounds directly.
 */
export function interestedPieces(
  contentLength: number,
  pieceLength: number,
  range?: ContentRange,
): PieceSpan[] {
  const count = pieceCount(contentLength, pieceLength);
  if (count === 0) return [];
  if (range === undefined) return pieceRanges(contentLength, pieceLength);

  if (!Number.isSafeInteger(range.start) || range.start < 0 || !Number.isSafeInteger(range.length)) {
    throw new DfError('INVALID_ARGUMENT', `invalid range start ${range.start} length ${range.length}`);
  }
  if (range.length <= 0) {
    throw new DfError(
      'INVALID_ARGUMENT',
      `invalid range start ${range.start} length ${range.length}: length is 0`,
    );
  }
  const first = Math.floor(range.start / pieceLength);
  // The last piece is short: a start inside its nominal slot but at or past the content's end overlaps nothing.
  if (first >= count || range.start >= contentLength) {
    throw new DfError(
      'INVALID_ARGUMENT',
      `range start ${range.start} is beyond content length ${contentLength}`,
    );
  }
  const last = Math.min(count - 1, Math.floor((range.start + range.length - 1) / pieceLength));
  const pieces: PieceSpan[] = [];
  for (let n = first; n <= last; n++) {
    const offset = n * pieceLength;
    pieces.push({ number: n, offset, length: Math.min(pieceLength, contentLength - offset) });
  }
  return pieces;
}
