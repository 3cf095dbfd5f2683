import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { crc32, crc32Implementation, loadFastCrc32, zlibCrc32 } from '../../../src/core/crc32.js';
import { Crc32, pieceDigest } from '../../../src/core/digest.js';

// The check value of CRC-32/ISO-HDLC (the catalogue's "123456789" vector).
const CHECK_INPUT = '123456789';
const CHECK_VALUE = 0xcbf43926;

test('the native CRC-32 loads on the platforms the project is measured on', () => {
  if (process.platform !== 'linux' || process.arch !== 'x64') return;
  assert.ok(loadFastCrc32(), '@node-rs/crc32 should load on linux-x64 (its prebuilt optional dependency)');
  if (process.env.DF_CRC32 !== 'zlib') assert.equal(crc32Implementation(), 'crc32fast');
});

test('both implementations give the catalogue check value', () => {
  const fast = loadFastCrc32();
  assert.equal(zlibCrc32(CHECK_INPUT, 0), CHECK_VALUE);
  if (fast) assert.equal(fast(CHECK_INPUT, 0), CHECK_VALUE);
  assert.equal(crc32(Buffer.from(CHECK_INPUT)), CHECK_VALUE);
  assert.equal(pieceDigest(Buffer.from(CHECK_INPUT)), `crc32:${CHECK_VALUE}`);
});

test('chunked updates of random sizes equal one call, and equal zlib, for buffers, views and strings', () => {
  const fast = loadFastCrc32();
  for (let round = 0; round < 20; round++) {
    const data = randomBytes(1 + Math.floor(Math.random() * 300_000));
    const whole = zlibCrc32(data, 0);
    if (fast) assert.equal(fast(data, 0), whole);
    const c = new Crc32();
    for (let at = 0; at < data.length;) {
      const n = Math.min(data.length - at, Math.floor(Math.random() * 70_000));
      // Alternate Buffer slices, plain Uint8Array views and DataViews over the same memory.
      const slice = data.subarray(at, at + n);
      const view =
        round % 3 === 0
          ? slice
          : round % 3 === 1
            ? new Uint8Array(slice.buffer, slice.byteOffset, slice.byteLength)
            : new DataView(slice.buffer, slice.byteOffset, slice.byteLength);
      c.update(view);
      at += n;
    }
    assert.equal(c.value32(), whole, `round ${round}: ${data.length} bytes`);
  }
  const text = 'piece digest ✓ über alles';
  assert.equal(crc32(text), zlibCrc32(Buffer.from(text, 'utf8'), 0));
  assert.equal(crc32(''), 0);
  assert.equal(crc32(Buffer.alloc(0), 1234), 1234);
});
