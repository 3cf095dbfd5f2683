// The protobuf wire format (https://protobuf.dev/programming-guides/encoding/), only as much of it as a CLI's
// hand-written messages need: varints, length-delimited fields and skipping the rest. dfget uses it instead of the
// generated code, whose runtime (@bufbuild/protobuf) and 300 KB of message code cost more start-up time than the
// whole download of a cached file (docs/benchmarks.md, "Start-up"). Numbers are JS numbers: exact up to 2^53,
// which covers every length, offset and count on the wire.

import { DfError } from './errors.js';

/** Wire types of the fields used here (groups and 32-bit fields are only ever skipped). */
export const WireType = { VARINT: 0, I64: 1, LEN: 2, I32: 5 } as const;

/** Builds one message: fields are appended in the order written; nested messages are encoded first. */
export class ProtoWriter {
  private readonly chunks: Buffer[] = [];
  private scratch: number[] = [];

  private flushScratch(): void {
    if (this.scratch.length === 0) return;
    this.chunks.push(Buffer.from(this.scratch));
    this.scratch = [];
  }

  private varint(value: number): void {
    if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`varint out of range: ${value}`);
    // Division, not bit shifts: shifts truncate to 32 bits.
    while (value > 0x7f) {
      this.scratch.push((value % 128) | 0x80);
      value = Math.floor(value / 128);
    }
    this.scratch.push(value);
  }

  private tag(field: number, wireType: number): void {
    this.varint(field * 8 + wireType);
  }

  /** A uint32/uint64/enum field; proto3 leaves zero out unless the field is `optional` (`always`). */
  uint(field: number, value: number | undefined, always = false): this {
    if (value === undefined || (value === 0 && !always)) return this;
    this.tag(field, WireType.VARINT);
    this.varint(value);
    return this;
  }

  bool(field: number, value: boolean | undefined, always = false): this {
    if (value === undefined || (!value && !always)) return this;
    return this.uint(field, value ? 1 : 0, true);
  }

  bytes(field: number, value: Uint8Array | undefined, always = false): this {
    if (value === undefined || (value.length === 0 && !always)) return this;
    this.tag(field, WireType.LEN);
    this.varint(value.length);
    this.flushScratch();
    this.chunks.push(Buffer.from(value.buffer, value.byteOffset, value.length));
    return this;
  }

  string(field: number, value: string | undefined, always = false): this {
    if (value === undefined || (value === '' && !always)) return this;
    return this.bytes(field, Buffer.from(value, 'utf8'), true);
  }

  /** A nested message (always written when given: an empty one still says "present"). */
  message(field: number, build: ((w: ProtoWriter) => void) | undefined): this {
    if (build === undefined) return this;
    const inner = new ProtoWriter();
    build(inner);
    return this.bytes(field, inner.finish(), true);
  }

  /** A `map<string, string>` field: one entry message (key = 1, value = 2) per pair. */
  stringMap(field: number, map: Record<string, string> | undefined): this {
    for (const [key, value] of Object.entries(map ?? {})) {
      this.message(field, (e) => e.string(1, key, true).string(2, value, true));
    }
    return this;
  }

  finish(): Buffer {
    this.flushScratch();
    return Buffer.concat(this.chunks);
  }
}

/** Reads one message field by field: `for (let f = r.next(); f; f = r.next())`, then one read per field. */
export class ProtoReader {
  private pos = 0;
  private wireType = 0;

  constructor(private readonly buf: Buffer) {}

  /** The next field's number, or 0 at the end of the message. */
  next(): number {
    if (this.pos >= this.buf.length) return 0;
    const key = this.varint();
    this.wireType = key % 8;
    const field = Math.floor(key / 8);
    if (field === 0) throw malformed('field number 0');
    return field;
  }

  varint(): number {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.buf.length) throw malformed('truncated varint');
      const b = this.buf[this.pos++]!;
      value += (b & 0x7f) * scale;
      if (b < 0x80) return value;
      scale *= 128;
    }
    throw malformed('varint longer than 10 bytes');
  }

  bool(): boolean {
    return this.varint() !== 0;
  }

  /** A length-delimited field's bytes: a view into the message, not a copy. */
  bytes(): Buffer {
    if (this.wireType !== WireType.LEN)
      throw malformed(`wire type ${this.wireType} where bytes were expected`);
    const length = this.varint();
    const end = this.pos + length;
    if (end > this.buf.length) throw malformed('field runs past the end of the message');
    const out = this.buf.subarray(this.pos, end);
    this.pos = end;
    return out;
  }

  string(): string {
    return this.bytes().toString('utf8');
  }

  /** A nested message's reader. */
  message(): ProtoReader {
    return new ProtoReader(this.bytes());
  }

  /** Passes over a field this reader does not want (unknown fields are legal: newer peers add them). */
  skip(): void {
    switch (this.wireType) {
      case WireType.VARINT:
        this.varint();
        return;
      case WireType.I64:
        this.advance(8);
        return;
      case WireType.LEN:
        this.bytes();
        return;
      case WireType.I32:
        this.advance(4);
        return;
      default:
        throw malformed(`unsupported wire type ${this.wireType}`);
    }
  }

  private advance(n: number): void {
    if (this.pos + n > this.buf.length) throw malformed('field runs past the end of the message');
    this.pos += n;
  }
}

function malformed(why: string): DfError {
  return new DfError('INTERNAL', `malformed protobuf message: ${why}`);
}
