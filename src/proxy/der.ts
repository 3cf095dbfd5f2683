// The few DER (ITU-T X.690) encodings and the one reader that the proxy's certificates need. The proxy makes two
// kinds of certificate (its CA and the leaves it signs with it) with fixed fields, so a general ASN.1 library is not
// needed: @peculiar/x509 with its ASN.1 schemas and tsyringe took ~4 MiB of a daemon's idle memory (measured), and
// DER for these fields is a page of code. Tests check the output with @peculiar/x509 and openssl.

/** Universal tags used here. */
export const TAG = {
  boolean: 0x01,
  integer: 0x02,
  bitString: 0x03,
  octetString: 0x04,
  null: 0x05,
  oid: 0x06,
  utf8String: 0x0c,
  utcTime: 0x17,
  generalizedTime: 0x18,
  sequence: 0x30,
  set: 0x31,
} as const;

/** One TLV: `tag`, the DER length, then the contents. */
export function tlv(tag: number, ...contents: Buffer[]): Buffer {
  const body = Buffer.concat(contents);
  const n = body.length;
  let len: Buffer;
  if (n < 0x80) len = Buffer.from([n]);
  else {
    const bytes: number[] = [];
    for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
    len = Buffer.from([0x80 | bytes.length, ...bytes]);
  }
  return Buffer.concat([Buffer.from([tag]), len, body]);
}

export const sequence = (...items: Buffer[]): Buffer => tlv(TAG.sequence, ...items);
export const set = (...items: Buffer[]): Buffer => tlv(TAG.set, ...items);
export const octetString = (b: Buffer): Buffer => tlv(TAG.octetString, b);
export const boolean = (v: boolean): Buffer => tlv(TAG.boolean, Buffer.from([v ? 0xff : 0]));
export const utf8String = (s: string): Buffer => tlv(TAG.utf8String, Buffer.from(s, 'utf8'));
/** A BIT STRING of whole bytes (a key, a signature). */
export const bitString = (b: Buffer): Buffer => tlv(TAG.bitString, Buffer.from([0]), b);
/** `[n] EXPLICIT`: the context-specific constructed tag around `inner`. */
export const explicit = (n: number, inner: Buffer): Buffer => tlv(0xa0 | n, inner);

/** A non-negative INTEGER from its big-endian magnitude (a 0x00 is put before a high first bit). */
export function unsignedInteger(magnitude: Buffer): Buffer {
  let i = 0;
  while (i < magnitude.length - 1 && magnitude[i] === 0) i++;
  const m = magnitude.subarray(i);
  return tlv(TAG.integer, m[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), m]) : m);
}

export function smallInteger(v: number): Buffer {
  return unsignedInteger(Buffer.from([v]));
}

/** An OBJECT IDENTIFIER from dotted text ("2.5.29.19"). */
export function oid(dotted: string): Buffer {
  const arcs = dotted.split('.').map(Number);
  const out = [arcs[0]! * 40 + arcs[1]!];
  for (const arc of arcs.slice(2)) {
    const groups = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) groups.unshift(0x80 | (v & 0x7f));
    out.push(...groups);
  }
  return tlv(TAG.oid, Buffer.from(out));
}

/**
 * A BIT STRING of named bits (KeyUsage): bit 0 is the first byte's high bit; DER drops trailing zero bits and says
 * how many bits of the last byte are unused.
 */
export function namedBits(bits: number): Buffer {
  if (bits === 0) return tlv(TAG.bitString, Buffer.from([0]));
  const highest = 31 - Math.clz32(bits);
  const bytes = Buffer.alloc((highest >> 3) + 1);
  for (let i = 0; i <= highest; i++) if (bits & (1 << i)) bytes[i >> 3]! |= 0x80 >> (i & 7);
  return tlv(TAG.bitString, Buffer.from([7 - (highest & 7)]), bytes);
}

/** RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050; seconds, no fraction, UTC. */
export function time(d: Date): Buffer {
  const iso = d.toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
  const digits = iso.slice(0, 19).replace(/[-:T]/g, '') + 'Z';
  const year = d.getUTCFullYear();
  return year >= 1950 && year < 2050
    ? tlv(TAG.utcTime, Buffer.from(digits.slice(2), 'ascii'))
    : tlv(TAG.generalizedTime, Buffer.from(digits, 'ascii'));
}

/** One element read from DER: its tag, the whole TLV, and its contents. */
export interface DerElement {
  tag: number;
  /** The element with its tag and length, as encoded (a subarray of the input). */
  raw: Buffer;
  contents: Buffer;
}

/** Reads the element at `offset` of `b`; throws on a truncated or indefinite-length encoding. */
export function readElement(b: Buffer, offset = 0): DerElement {
  if (offset + 2 > b.length) throw new Error('DER: truncated');
  const tag = b[offset]!;
  let len = b[offset + 1]!;
  let header = 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || offset + 2 + n > b.length) throw new Error('DER: bad length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + b[offset + 2 + i]!;
    header += n;
  }
  const end = offset + header + len;
  if (end > b.length) throw new Error('DER: truncated');
  return { tag, raw: b.subarray(offset, end), contents: b.subarray(offset + header, end) };
}

/** The elements inside a constructed element's contents, in order. */
export function children(contents: Buffer): DerElement[] {
  const out: DerElement[] = [];
  for (let off = 0; off < contents.length; off += out[out.length - 1]!.raw.length) {
    out.push(readElement(contents, off));
  }
  return out;
}

/** Dotted text of an OBJECT IDENTIFIER's contents. */
export function oidText(contents: Buffer): string {
  const arcs: number[] = [];
  let v = 0;
  for (const byte of contents) {
    v = v * 128 + (byte & 0x7f);
    if (byte & 0x80) continue;
    if (arcs.length === 0) arcs.push(v < 80 ? Math.floor(v / 40) : 2, v < 80 ? v % 40 : v - 80);
    else arcs.push(v);
    v = 0;
  }
  return arcs.join('.');
}
