import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatByteSize, parseByteSize } from '../../../src/core/bytesize.js';
import { DfError } from '../../../src/core/errors.js';

const KIB = 1024;
const MIB = 1024 * KIB;
const GIB = 1024 * MIB;

test('decimal units are powers of 1000, binary units powers of 1024', () => {
  assert.equal(parseByteSize('50GB'), 50_000_000_000);
  assert.equal(parseByteSize('10GB'), 10_000_000_000);
  assert.equal(parseByteSize('256MB'), 256_000_000);
  assert.equal(parseByteSize('1KB'), 1000);
  assert.equal(parseByteSize('512KiB'), 512 * KIB);
  assert.equal(parseByteSize('4MiB'), 4 * MIB);
  assert.equal(parseByteSize('64MiB'), 64 * MIB);
  assert.equal(parseByteSize('2GiB'), 2 * GIB);
  assert.equal(parseByteSize('1TiB'), 1024 * GIB);
  assert.equal(parseByteSize('1TB'), 1e12);
  assert.equal(parseByteSize('1PB'), 1e15);
});

test('units are case-insensitive and the B may be left out (bytesize FromStr)', () => {
  assert.equal(parseByteSize('2mib'), 2 * MIB); // upstream's own test uses "2mib"
  assert.equal(parseByteSize('2MIB'), 2 * MIB);
  assert.equal(parseByteSize('50gb'), 50e9);
  assert.equal(parseByteSize('1K'), 1000);
  assert.equal(parseByteSize('1Ki'), 1024);
  assert.equal(parseByteSize('8P'), 8e15);
  assert.equal(parseByteSize('5 B'), 5);
});

test('whitespace between number and unit, and fractions truncated to bytes', () => {
  assert.equal(parseByteSize('3 MB'), 3e6);
  assert.equal(parseByteSize('4 MiB'), 4 * MIB);
  assert.equal(parseByteSize('1.5KiB'), 1536);
  assert.equal(parseByteSize('1.5Ki'), 1536);
  assert.equal(parseByteSize('0.3KB'), 300);
  assert.equal(parseByteSize('1.1B'), 1);
});

test('plain integers are bytes, as numbers or strings', () => {
  assert.equal(parseByteSize(0), 0);
  assert.equal(parseByteSize(8388608), 8 * MIB);
  assert.equal(parseByteSize('8388608'), 8 * MIB);
  assert.equal(parseByteSize('0'), 0);
  assert.equal(parseByteSize('+5'), 5);
});

test('invalid sizes throw INVALID_ARGUMENT naming the value and the expected form', () => {
  for (const bad of ['', 'abc', 'a124GB', '1.5', '12 XB', '1.2.3MB', 'GB', '-1', ' 5MB', '5MB ']) {
    assert.throws(
      () => parseByteSize(bad),
      (e: unknown) =>
        e instanceof DfError &&
        e.code === 'INVALID_ARGUMENT' &&
        e.message.includes(JSON.stringify(bad)) &&
        e.message.includes('"50GB"'),
      bad,
    );
  }
  assert.throws(() => parseByteSize(1.5), DfError);
  assert.throws(() => parseByteSize(-1), DfError);
  assert.throws(() => parseByteSize(Number.NaN), DfError);
});

test('formatByteSize uses binary units for humans', () => {
  assert.equal(formatByteSize(0), '0 B');
  assert.equal(formatByteSize(1023), '1023 B');
  assert.equal(formatByteSize(512 * KIB), '512 KiB');
  assert.equal(formatByteSize(4 * MIB), '4 MiB');
  assert.equal(formatByteSize(1536), '1.5 KiB');
  assert.equal(formatByteSize(50e9), '46.6 GiB');
});

test('formatByteSize output parses back (for whole units)', () => {
  for (const n of [0, 1, 512 * KIB, 4 * MIB, 3 * GIB]) {
    assert.equal(parseByteSize(formatByteSize(n)), n);
  }
});
