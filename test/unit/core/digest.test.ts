import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  Crc32,
  createDigester,
  formatDigest,
  parseDigest,
  pieceDigest,
  pieceMetadataDigest,
  verifyDigest,
  type DigestAlgorithm,
} from '../../../src/core/digest.js';
import { DfError } from '../../../src/core/errors.js';
import { loadClientVectors, type VectorEntry } from './client-vectors.js';

const vectors = loadClientVectors();
const isCode = (code: string) => (e: unknown) => e instanceof DfError && e.code === code;

const fileVector = vectors.digests.vectors.find((v: VectorEntry) => v.input_ascii !== undefined);
const metadataVector = vectors.digests.vectors.find((v: VectorEntry) => v.crc_input !== undefined);
const displayVector = vectors.digests.vectors.find((v: VectorEntry) => v.input?.algorithm !== undefined);

test('every digest vector is covered by a test below', () => {
  assert.equal(vectors.digests.vectors.length, 3);
  assert.ok(fileVector && metadataVector && displayVector);
});

test('file digest vector: crc32 (decimal), sha256, sha512 of "test content"', () => {
  const input = Buffer.from(fileVector.input_ascii, 'ascii');
  assert.equal(pieceDigest(input), fileVector.digest_string);
  assert.equal(fileVector.digest_string, `crc32:${fileVector.crc32_decimal}`);
  assert.equal(new Crc32().update(input).value32(), Number(fileVector.crc32_decimal));
  const want: Record<DigestAlgorithm, string> = {
    crc32: fileVector.digest_string,
    sha256: `sha256:${fileVector.sha256}`,
    sha512: `sha512:${fileVector.sha512}`,
  };
  for (const [algorithm, expected] of Object.entries(want) as Array<[DigestAlgorithm, string]>) {
    const d = createDigester(algorithm);
    assert.equal(d.algorithm, algorithm);
    assert.equal(d.update(input).digest(), expected);
    // test_verify_file_digest: the expected string parses and verifies.
    assert.deepEqual(parseDigest(expected), { algorithm, encoded: expected.slice(algorithm.length + 1) });
    verifyDigest(expected, createDigester(algorithm).update(input).digest());
  }
});

test('piece metadata digest vector (Piece::calculate_digest)', () => {
  assert.equal(pieceMetadataDigest(metadataVector.inputs), metadataVector.expected);
});

test('digest display vector', () => {
  assert.equal(formatDigest(displayVector.input), displayVector.expected);
});

test('parse rule: split on the first ":"; sha256 64 and sha512 128 hex characters', () => {
  const sha256 = 'a'.repeat(64);
  assert.deepEqual(parseDigest(`sha256:${sha256}`), { algorithm: 'sha256', encoded: sha256 });
  assert.deepEqual(parseDigest(`sha512:${'B'.repeat(128)}`), {
    algorithm: 'sha512',
    encoded: 'B'.repeat(128),
  });
  for (const bad of [
    'nocolon',
    '',
    `sha256:${'a'.repeat(63)}`,
    `sha256:${'a'.repeat(65)}`,
    `sha512:${'a'.repeat(64)}`,
    `sha256:${'g'.repeat(64)}`,
    `sha256:${'a'.repeat(32)}:${'a'.repeat(31)}`,
    'crc32:',
    'crc32:12345678901',
    'crc32:4294967296',
    'crc32:-1',
    'crc32:0x1234567',
  ]) {
    assert.throws(() => parseDigest(bad), isCode('INVALID_ARGUMENT'), bad);
  }
});

test('unknown algorithm is UNSUPPORTED_DIGEST naming it', () => {
  for (const alg of ['md5', 'blake3', 'crc32c', 'SHA256', '']) {
    assert.throws(
      () => parseDigest(`${alg}:${'a'.repeat(64)}`),
      (e: unknown) => isCode('UNSUPPORTED_DIGEST')(e) && (e as Error).message.includes(`"${alg}"`),
    );
  }
  assert.throws(() => createDigester('md5' as DigestAlgorithm), isCode('UNSUPPORTED_DIGEST'));
});

test('crc32 shorter than 10 digits: accepted (upstream cannot parse it; see parseDigest)', () => {
  // Upstream's rule, as the vectors state it, would refuse this.
  assert.match(vectors.digests.digest_string_parse_rule, /crc32 requires encoded length == 10/);
  const input = Buffer.from('a');
  const actual = pieceDigest(input); // crc32:3904355907 — 10 digits
  assert.equal(actual, 'crc32:3904355907');
  // Find a short CRC: "abc" → 891568578 (9 digits).
  const short = pieceDigest(Buffer.from('abc'));
  assert.equal(short, 'crc32:891568578');
  assert.deepEqual(parseDigest(short), { algorithm: 'crc32', encoded: '891568578' });
  verifyDigest(short, short);
  // The zero-padded 10-character form upstream's length rule asks for verifies too.
  verifyDigest('crc32:0891568578', short);
  assert.deepEqual(parseDigest('crc32:0'), { algorithm: 'crc32', encoded: '0' });
  verifyDigest('crc32:0', pieceDigest(Buffer.alloc(0)));
});

test('verifyDigest: mismatch is DIGEST_MISMATCH with both values', () => {
  const expected = `sha256:${'0'.repeat(64)}`;
  const actual = createDigester('sha256').update('test content').digest();
  assert.throws(
    () => verifyDigest(expected, actual),
    (e: unknown) =>
      isCode('DIGEST_MISMATCH')(e) &&
      (e as Error).message.includes(expected) &&
      (e as Error).message.includes(actual),
  );
  // Different algorithms never match.
  assert.throws(() => verifyDigest(fileVector.digest_string, actual), isCode('DIGEST_MISMATCH'));
  assert.throws(() => verifyDigest('crc32:1475635038', fileVector.digest_string), isCode('DIGEST_MISMATCH'));
  // Uppercase hex in the expected digest still matches the lowercase we compute.
  verifyDigest(`sha256:${fileVector.sha256.toUpperCase()}`, actual);
  // A malformed expected digest is the caller's error, not a mismatch.
  assert.throws(() => verifyDigest('sha256:short', actual), isCode('INVALID_ARGUMENT'));
});

test('incremental CRC-32 equals one-shot CRC-32 for any split', () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 4096 }),
      fc.array(fc.nat(4096), { maxLength: 8 }),
      (bytes, cuts) => {
        const buf = Buffer.from(bytes);
        const points = [...new Set(cuts.map((c) => c % (buf.length + 1)))].sort((a, b) => a - b);
        const crc = new Crc32();
        const digester = createDigester('crc32');
        let from = 0;
        for (const to of [...points, buf.length]) {
          crc.update(buf.subarray(from, to));
          digester.update(buf.subarray(from, to));
          from = to;
        }
        assert.equal(crc.digest(), pieceDigest(buf));
        assert.equal(digester.digest(), pieceDigest(buf));
        assert.match(crc.digest(), /^crc32:(0|[1-9][0-9]{0,9})$/);
      },
    ),
  );
});
