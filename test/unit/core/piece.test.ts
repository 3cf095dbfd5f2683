import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  MAX_PIECE_COUNT,
  MAX_PIECE_LENGTH,
  MIN_PIECE_LENGTH,
  calculatePieceLength,
  interestedPieces,
  pieceCount,
  pieceRange,
  pieceRanges,
  validatePieceLength,
} from '../../../src/core/piece.js';
import { DfError } from '../../../src/core/errors.js';
import { loadClientVectors, type VectorEntry } from './client-vectors.js';

const vectors = loadClientVectors();
const isCode = (code: string) => (e: unknown) => e instanceof DfError && e.code === code;

test('piece length constants', () => {
  const c = vectors.piece_length.constants;
  assert.equal(MIN_PIECE_LENGTH, c.MIN_PIECE_LENGTH);
  assert.equal(MAX_PIECE_LENGTH, c.MAX_PIECE_LENGTH);
  assert.equal(MAX_PIECE_COUNT, c.MAX_PIECE_COUNT);
});

for (const v of vectors.piece_length.vectors) {
  test(`piece_length vector: content ${v.content_length}`, () => {
    const contentLength = Number(v.content_length);
    assert.ok(Number.isSafeInteger(contentLength));
    const pieceLength = calculatePieceLength(contentLength);
    assert.equal(pieceLength, Number(v.expected_piece_length));
    assert.equal(pieceCount(contentLength, pieceLength), v.expected_piece_count);
    assert.equal(pieceRanges(contentLength, pieceLength).length, v.expected_piece_count);
  });
}

for (const [i, v] of (vectors.calculate_interested.vectors as VectorEntry[]).entries()) {
  test(`calculate_interested vector ${i}: piece ${v.piece_length}, content ${v.content_length}`, () => {
    const range = v.range === null ? undefined : v.range;
    const pieces = interestedPieces(v.content_length, v.piece_length, range);
    assert.equal(pieces.length, v.expected_count);
    assert.deepEqual(
      pieces.map((p) => p.number),
      v.expected_numbers,
    );
    const last = pieces.at(-1)!;
    assert.equal(last.offset, v.last_offset);
    assert.equal(last.length, v.last_length);
  });
}

test('interested pieces edge cases (upstream calculate_interested)', () => {
  // Empty content needs no pieces, with or without a range.
  assert.deepEqual(interestedPieces(0, 1000), []);
  assert.deepEqual(interestedPieces(0, 1000, { start: 0, length: 10 }), []);
  // A zero-length range is invalid.
  assert.throws(() => interestedPieces(5000, 1000, { start: 0, length: 0 }), isCode('INVALID_ARGUMENT'));
  // A range that starts past the last piece is invalid.
  assert.throws(() => interestedPieces(5000, 1000, { start: 5000, length: 1 }), isCode('INVALID_ARGUMENT'));
  // A range running past the end is cut at the end; the last piece keeps the remainder.
  assert.deepEqual(interestedPieces(4800, 1000, { start: 3500, length: 10_000 }), [
    { number: 3, offset: 3000, length: 1000 },
    { number: 4, offset: 4000, length: 800 },
  ]);
  // Inside the short last piece.
  assert.deepEqual(interestedPieces(4800, 1000, { start: 4500, length: 100 }), [
    { number: 4, offset: 4000, length: 800 },
  ]);
  // Exactly on piece boundaries.
  assert.deepEqual(
    interestedPieces(5000, 1000, { start: 1000, length: 1000 }).map((p) => p.number),
    [1],
  );
  assert.deepEqual(
    interestedPieces(5000, 1000, { start: 999, length: 2 }).map((p) => p.number),
    [0, 1],
  );
});

test('pieceRange agrees with pieceRanges and rejects numbers outside the content', () => {
  assert.deepEqual(pieceRange(10, 101, 10), { number: 10, offset: 100, length: 1 });
  assert.deepEqual(pieceRange(0, 1, 1000), { number: 0, offset: 0, length: 1 });
  assert.throws(() => pieceRange(11, 101, 10), isCode('INVALID_ARGUMENT'));
  assert.throws(() => pieceRange(-1, 101, 10), isCode('INVALID_ARGUMENT'));
  assert.throws(() => pieceRange(0, 0, 10), isCode('INVALID_ARGUMENT'));
});

test('pieceCount rejects bad lengths', () => {
  assert.equal(pieceCount(0, MIN_PIECE_LENGTH), 0);
  assert.throws(() => pieceCount(10, 0), isCode('INVALID_ARGUMENT'));
  assert.throws(() => pieceCount(-1, 10), isCode('INVALID_ARGUMENT'));
  assert.throws(() => pieceCount(1.5, 10), isCode('INVALID_ARGUMENT'));
});

test('validatePieceLength: at least 4 MiB, no upper bound, error names the value', () => {
  assert.equal(validatePieceLength(MIN_PIECE_LENGTH), MIN_PIECE_LENGTH);
  assert.equal(validatePieceLength(MAX_PIECE_LENGTH * 4), MAX_PIECE_LENGTH * 4);
  for (const bad of [MIN_PIECE_LENGTH - 1, 0, 1024]) {
    assert.throws(
      () => validatePieceLength(bad),
      (e: unknown) => isCode('INVALID_ARGUMENT')(e) && (e as Error).message.includes(String(bad)),
    );
  }
  assert.throws(() => validatePieceLength(MIN_PIECE_LENGTH + 0.5), isCode('INVALID_ARGUMENT'));
  assert.throws(() => validatePieceLength(Number.NaN), isCode('INVALID_ARGUMENT'));
});

test('calculatePieceLength is a power of two in [4 MiB, 64 MiB] and monotonic', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), fc.nat(1 << 30), (len, more) => {
      const p = calculatePieceLength(len);
      assert.ok(p >= MIN_PIECE_LENGTH && p <= MAX_PIECE_LENGTH);
      assert.equal(p & (p - 1), 0);
      assert.ok(calculatePieceLength(len + more) >= p);
    }),
  );
});

test('pieceRanges covers the content exactly, in order, with no gaps or overlaps', () => {
  // Lengths up to 2^40 with at most ~2000 pieces each, so a run stays fast while exercising large offsets.
  const lengths = fc
    .integer({ min: 0, max: 2 ** 40 })
    .chain((len) =>
      fc.tuple(fc.constant(len), fc.integer({ min: Math.max(1, Math.ceil(len / 2000)), max: 2 ** 31 })),
    );
  fc.assert(
    fc.property(lengths, ([len, pl]) => {
      const pieces = pieceRanges(len, pl);
      let next = 0;
      for (const [i, p] of pieces.entries()) {
        assert.equal(p.number, i);
        assert.equal(p.offset, next);
        assert.ok(p.length > 0 && p.length <= pl);
        if (i < pieces.length - 1) assert.equal(p.length, pl);
        assert.deepEqual(pieceRange(i, len, pl), p);
        next += p.length;
      }
      assert.equal(next, len);
      assert.deepEqual(interestedPieces(len, pl), pieces);
    }),
  );
});

test('interested pieces with a range are exactly the pieces overlapping it', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 100_000 }),
      fc.integer({ min: 1, max: 10_000 }),
      fc.nat(),
      fc.integer({ min: 1, max: 200_000 }),
      (len, pl, startSeed, length) => {
        const start = startSeed % len;
        const want = pieceRanges(len, pl).filter(
          (p) => p.offset < start + length && p.offset + p.length > start,
        );
        assert.deepEqual(interestedPieces(len, pl, { start, length }), want);
      },
    ),
  );
});
