import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  children,
  namedBits,
  oid,
  oidText,
  readElement,
  sequence,
  time,
  unsignedInteger,
} from '../../../src/proxy/der.js';

const hex = (b: Buffer): string => b.toString('hex');

test('OBJECT IDENTIFIER: multi-byte arcs, and back to text', () => {
  assert.equal(hex(oid('1.2.840.113549.1.1.11')), '06092a864886f70d01010b');
  assert.equal(hex(oid('2.5.29.19')), '0603551d13');
  assert.equal(oidText(readElement(oid('1.3.6.1.5.5.7.3.1')).contents), '1.3.6.1.5.5.7.3.1');
});

test('INTEGER: leading zeros dropped, a 0x00 before a high bit', () => {
  assert.equal(hex(unsignedInteger(Buffer.from('0001', 'hex'))), '020101');
  assert.equal(hex(unsignedInteger(Buffer.from('80', 'hex'))), '02020080');
  assert.equal(hex(unsignedInteger(Buffer.from('00', 'hex'))), '020100');
});

test('named bits (keyUsage): trailing zero bits dropped and counted', () => {
  assert.equal(hex(namedBits(1 << 0)), '03020780'); // digitalSignature
  assert.equal(hex(namedBits((1 << 5) | (1 << 6))), '03020106'); // keyCertSign, cRLSign
  assert.equal(hex(namedBits(1 << 8)), '0303070080'); // decipherOnly
});

test('time: UTCTime through 2049, GeneralizedTime from 2050, no fraction', () => {
  assert.equal(readElement(time(new Date('2049-12-31T23:59:59.999Z'))).contents.toString(), '491231235959Z');
  assert.equal(readElement(time(new Date('2050-01-01T00:00:00Z'))).tag, 0x18);
  assert.equal(readElement(time(new Date('2050-01-01T00:00:00Z'))).contents.toString(), '20500101000000Z');
});

test('long lengths are written and read back', () => {
  const big = sequence(Buffer.alloc(300, 1), Buffer.alloc(70000, 2));
  assert.equal(hex(big.subarray(0, 5)), '308301129c');
  const el = readElement(big);
  assert.equal(el.contents.length, 70300);
  assert.deepEqual(
    children(readElement(sequence(oid('2.5.29.19'), oid('2.5.29.15'))).contents).map((c) =>
      oidText(c.contents),
    ),
    ['2.5.29.19', '2.5.29.15'],
  );
  assert.throws(() => readElement(big.subarray(0, 100)), /truncated/);
});
