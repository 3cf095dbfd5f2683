// The Vortex piece protocol (dragonflyoss/vortex-protocol 0.1.5, as used by dragonfly-client 1.5.1): a 6-byte
// header (packet id u8 | tag u8 | length u32 BE) and a tag-specific value. Byte layouts, error texts and quirks
// follow the upstream crate; its known-answer vectors are kept in test/data/vortex-vectors.json and asserted by the tests.
//
// PieceContent is special on the wire: its value holds only the metadata, and the piece's raw bytes follow it
// unframed (`metadata.length` of them). Whole-packet functions here therefore never carry piece bytes;
// FrameReader (frame-reader.ts) streams them.

import { DfError } from '../core/errors.js';

export const HEADER_SIZE = 6;

/**
 * The largest value a header can announce. Upstream's MAX_VALUE_SIZE is 4 GiB, but a value of exactly 4 GiB
 * wraps to 0 in the u32 length field, so 4 GiB - 1 is the real limit.
 */
export const MAX_VALUE_SIZE = 0xffff_ffff;

/** A DownloadPiece value: 64 task-id bytes and a u32 piece number. */
export const DOWNLOAD_PIECE_VALUE_SIZE = 68;
export const TASK_ID_SIZE = 64;

/** Fixed part of a PieceContent metadata block (everything but the digest and parent id strings). */
export const PIECE_METADATA_FIXED_SIZE = 45;

export const Tag = {
  DownloadPiece: 0,
  PieceContent: 1,
  DownloadPersistentPiece: 2,
  PersistentPieceContent: 3,
  DownloadPersistentCachePiece: 4,
  PersistentCachePieceContent: 5,
  DownloadCachePiece: 6,
  CachePieceContent: 7,
  Close: 254,
  Error: 255,
} as const;

export type DownloadTag = 0 | 2 | 4 | 6;
export type ContentTag = 1 | 3 | 5 | 7;

/** The code byte of an Error packet. Every byte value decodes; 4..=255 are upstream's Code::Reserved(n). */
export const VortexCode = {
  Unknown: 0,
  InvalidArgument: 1,
  NotFound: 2,
  Internal: 3,
} as const;

export function isDownloadTag(tag: number): tag is DownloadTag {
  return tag === 0 || tag === 2 || tag === 4 || tag === 6;
}

export function isContentTag(tag: number): tag is ContentTag {
  return tag === 1 || tag === 3 || tag === 5 || tag === 7;
}

/** The content tag a server answers a download tag with (DownloadPiece → PieceContent, ...). */
export function contentTagFor(tag: DownloadTag): ContentTag {
  return (tag + 1) as ContentTag;
}

export function tagName(tag: number): string {
  for (const [name, value] of Object.entries(Tag)) if (value === tag) return name;
  return `Reserved(${tag})`;
}

export interface Header {
  /** Random per packet; receivers never check it. */
  id: number;
  tag: number;
  /** Byte count of the value that follows (for PieceContent: of the metadata only). */
  length: number;
}

/**
 * PieceContent metadata as it is on the wire. The u64 fields are bigints so that every value round-trips;
 * created_at is an i64 of Unix seconds, always within chrono's range and therefore a safe JS integer.
 */
export interface PieceMetadata {
  number: number;
  offset: bigint;
  /** Number of raw piece bytes that follow the value. */
  length: bigint;
  /** `crc32:<decimal>` from real peers; compared as an exact string. */
  digest: string;
  /** Empty when the piece has none. */
  parentId: string;
  /** common.v2.TrafficType as u8; Rust servers always send REMOTE_PEER (1). */
  trafficType: number;
  /** Whole seconds (Duration::as_secs). */
  costSecs: bigint;
  /** Unix seconds, UTC. */
  createdAt: number;
}

export interface DownloadPiecePacket {
  kind: 'download';
  id: number;
  tag: DownloadTag;
  taskId: string;
  number: number;
}

export interface PieceContentPacket {
  kind: 'content';
  id: number;
  tag: ContentTag;
  metadata: PieceMetadata;
}

export interface ClosePacket {
  kind: 'close';
  id: number;
}

export interface ErrorPacket {
  kind: 'error';
  id: number;
  /** u8; see VortexCode. */
  code: number;
  message: string;
}

/** Tags 8..=253: accepted, value discarded; encoded with an empty value. */
export interface ReservedPacket {
  kind: 'reserved';
  id: number;
  tag: number;
}

export type Packet = DownloadPiecePacket | PieceContentPacket | ClosePacket | ErrorPacket | ReservedPacket;

// Upstream's error kinds (vortex_protocol::error::Error) are kept in the message so a log line names them.
function invalidPacket(message: string): DfError {
  return new DfError('INVALID_ARGUMENT', `vortex: invalid packet: ${message}`);
}

function invalidLength(message: string): DfError {
  return new DfError('INVALID_ARGUMENT', `vortex: invalid length: ${message}`);
}

// ignoreBOM: a leading U+FEFF is part of the string for Rust's String::from_utf8, so it must not be stripped.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function decodeUtf8(bytes: Uint8Array, field: string): string {
  try {
    return utf8.decode(bytes);
  } catch (e) {
    throw new DfError('INVALID_ARGUMENT', `vortex: invalid utf-8 in ${field}`, { cause: e });
  }
}

function checkU8(value: number, field: string): void {
  if (!Number.isInteger(value) || value < 0 || value > 0xff) {
    throw new DfError('INVALID_ARGUMENT', `vortex: ${field} must be a u8, got ${value}`);
  }
}

function checkU32(value: number, field: string): void {
  if (!Number.isInteger(value) || value < 0 || value > 0xffff_ffff) {
    throw new DfError('INVALID_ARGUMENT', `vortex: ${field} must be a u32, got ${value}`);
  }
}

const U64_MAX = 0xffff_ffff_ffff_ffffn;

function checkU64(value: bigint, field: string): void {
  if (typeof value !== 'bigint' || value < 0n || value > U64_MAX) {
    throw new DfError('INVALID_ARGUMENT', `vortex: ${field} must be a u64, got ${String(value)}`);
  }
}

// chrono 0.4.44's NaiveDateTime range (years -262143..=262142); DateTime::from_timestamp is None outside it.
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

export const MIN_CREATED_AT = daysFromCivil(-262143, 1, 1) * 86400;
export const MAX_CREATED_AT = (daysFromCivil(262142, 12, 31) + 1) * 86400 - 1;

function checkCreatedAt(value: number): void {
  if (!Number.isInteger(value) || value < MIN_CREATED_AT || value > MAX_CREATED_AT) {
    throw new DfError('INVALID_ARGUMENT', `vortex: created_at ${value} is outside the supported range`);
  }
}

/** A packet id; upstream draws one at random for every packet and nobody checks it. */
export function randomPacketId(): number {
  return Math.floor(Math.random() * 256);
}

export function encodeHeader(header: Header): Buffer {
  checkU8(header.id, 'packet id');
  checkU8(header.tag, 'tag');
  checkU32(header.length, 'length');
  const buf = Buffer.allocUnsafe(HEADER_SIZE);
  buf.writeUInt8(header.id, 0);
  buf.writeUInt8(header.tag, 1);
  buf.writeUInt32BE(header.length, 2);
  return buf;
}

/** Parses exactly 6 header bytes. */
export function decodeHeader(bytes: Uint8Array): Header {
  if (bytes.length !== HEADER_SIZE) {
    throw invalidPacket(`expected ${HEADER_SIZE} bytes for header, got ${bytes.length}`);
  }
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { id: buf.readUInt8(0), tag: buf.readUInt8(1), length: buf.readUInt32BE(2) };
}

/**
 * The 68-byte DownloadPiece value (the same for the persistent, persistent-cache and cache variants). Unlike
 * upstream's encoder, a task id that is not 64 bytes is refused here: every peer would reject the packet.
 */
export function encodeDownloadPiece(taskId: string, number: number): Buffer {
  checkU32(number, 'piece number');
  const buf = Buffer.allocUnsafe(DOWNLOAD_PIECE_VALUE_SIZE);
  const written = buf.write(taskId, 0, 'utf8');
  if (written !== TASK_ID_SIZE || Buffer.byteLength(taskId, 'utf8') !== TASK_ID_SIZE) {
    throw new DfError(
      'INVALID_ARGUMENT',
      `vortex: task id must be ${TASK_ID_SIZE} bytes, got ${Buffer.byteLength(taskId, 'utf8')}`,
    );
  }
  buf.writeUInt32BE(number, TASK_ID_SIZE);
  return buf;
}

export function decodeDownloadPiece(value: Uint8Array): { taskId: string; number: number } {
  if (value.length !== DOWNLOAD_PIECE_VALUE_SIZE) {
    throw invalidLength(`expected ${DOWNLOAD_PIECE_VALUE_SIZE} bytes for DownloadPiece, got ${value.length}`);
  }
  const buf = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  return {
    taskId: decodeUtf8(buf.subarray(0, TASK_ID_SIZE), 'task id'),
    number: buf.readUInt32BE(TASK_ID_SIZE),
  };
}

/** The PieceContent value: metadata_length u32 and the metadata block. Piece bytes are not part of it. */
export function encodePieceContent(metadata: PieceMetadata): Buffer {
  checkU32(metadata.number, 'piece number');
  checkU64(metadata.offset, 'offset');
  checkU64(metadata.length, 'length');
  checkU8(metadata.trafficType, 'traffic type');
  checkU64(metadata.costSecs, 'cost');
  checkCreatedAt(metadata.createdAt);
  const digest = Buffer.from(metadata.digest, 'utf8');
  const parentId = Buffer.from(metadata.parentId, 'utf8');
  const metadataLength = PIECE_METADATA_FIXED_SIZE + digest.length + parentId.length;
  checkU32(metadataLength, 'metadata length');
  const buf = Buffer.allocUnsafe(4 + metadataLength);
  let at = buf.writeUInt32BE(metadataLength, 0);
  at = buf.writeUInt32BE(metadata.number, at);
  at = buf.writeBigUInt64BE(metadata.offset, at);
  at = buf.writeBigUInt64BE(metadata.length, at);
  at = buf.writeUInt32BE(digest.length, at);
  at += digest.copy(buf, at);
  at = buf.writeUInt32BE(parentId.length, at);
  at += parentId.copy(buf, at);
  at = buf.writeUInt8(metadata.trafficType, at);
  at = buf.writeBigUInt64BE(metadata.costSecs, at);
  buf.writeBigInt64BE(BigInt(metadata.createdAt), at);
  return buf;
}

/** Reads metadata fields in order; a field running past the end is upstream's "insufficient bytes for …". */
class MetadataCursor {
  private at = 0;
  constructor(private readonly buf: Buffer) {}

  private need(n: number, field: string): number {
    if (this.buf.length - this.at < n) throw invalidPacket(`insufficient bytes for ${field}`);
    const start = this.at;
    this.at += n;
    return start;
  }

  u8(field: string): number {
    return this.buf.readUInt8(this.need(1, field));
  }
  u32(field: string): number {
    return this.buf.readUInt32BE(this.need(4, field));
  }
  u64(field: string): bigint {
    return this.buf.readBigUInt64BE(this.need(8, field));
  }
  i64(field: string): bigint {
    return this.buf.readBigInt64BE(this.need(8, field));
  }
  string(length: number, field: string): string {
    const start = this.need(length, field);
    return decodeUtf8(this.buf.subarray(start, start + length), field);
  }
}

/** Parses a PieceContent value (4 + metadata_length bytes). Bytes left over after created_at are ignored. */
export function decodePieceContent(value: Uint8Array): PieceMetadata {
  if (value.length < 4) throw invalidPacket('insufficient bytes for metadata length');
  const buf = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  const metadataLength = buf.readUInt32BE(0);
  if (value.length !== 4 + metadataLength) {
    throw invalidPacket(`expected ${4 + metadataLength} bytes for PieceContent, got ${value.length}`);
  }
  return decodePieceMetadata(buf.subarray(4));
}

/** Parses the metadata block that follows metadata_length. */
export function decodePieceMetadata(block: Uint8Array): PieceMetadata {
  const c = new MetadataCursor(Buffer.from(block.buffer, block.byteOffset, block.byteLength));
  const number = c.u32('piece number');
  const offset = c.u64('offset');
  const length = c.u64('length');
  const digest = c.string(c.u32('digest length'), 'digest');
  const parentId = c.string(c.u32('parent id length'), 'parent id');
  const trafficType = c.u8('traffic type');
  const costSecs = c.u64('cost');
  const createdAtRaw = c.i64('created at');
  if (createdAtRaw < BigInt(MIN_CREATED_AT) || createdAtRaw > BigInt(MAX_CREATED_AT)) {
    throw invalidPacket('invalid timestamp for created_at');
  }
  return { number, offset, length, digest, parentId, trafficType, costSecs, createdAt: Number(createdAtRaw) };
}

export function encodeError(code: number, message: string): Buffer {
  checkU8(code, 'error code');
  const text = Buffer.from(message, 'utf8');
  const buf = Buffer.allocUnsafe(1 + text.length);
  buf.writeUInt8(code, 0);
  text.copy(buf, 1);
  return buf;
}

/** Error value: a code byte and the rest as a UTF-8 message (no length prefix). */
export function decodeError(value: Uint8Array): { code: number; message: string } {
  if (value.length < 1) throw invalidLength(`expected at least 1 bytes for Error, got ${value.length}`);
  return { code: value[0]!, message: decodeUtf8(value.subarray(1), 'error message') };
}

/** The value bytes of a packet (empty for Close and reserved tags). */
export function encodeValue(packet: Packet): Buffer {
  switch (packet.kind) {
    case 'download':
      if (!isDownloadTag(packet.tag))
        throw new DfError('INVALID_ARGUMENT', `vortex: ${packet.tag} is no download tag`);
      return encodeDownloadPiece(packet.taskId, packet.number);
    case 'content':
      if (!isContentTag(packet.tag))
        throw new DfError('INVALID_ARGUMENT', `vortex: ${packet.tag} is no content tag`);
      return encodePieceContent(packet.metadata);
    case 'error':
      return encodeError(packet.code, packet.message);
    case 'close':
      return Buffer.alloc(0);
    case 'reserved':
      if (packet.tag < 8 || packet.tag > 253) {
        throw new DfError('INVALID_ARGUMENT', `vortex: ${packet.tag} is no reserved tag`);
      }
      return Buffer.alloc(0);
  }
}

export function packetTag(packet: Packet): number {
  switch (packet.kind) {
    case 'download':
    case 'content':
    case 'reserved':
      return packet.tag;
    case 'close':
      return Tag.Close;
    case 'error':
      return Tag.Error;
  }
}

/** Header and value in one buffer; the header length is always the real value length. */
export function encodePacket(packet: Packet): Buffer {
  const value = encodeValue(packet);
  if (value.length > MAX_VALUE_SIZE) {
    throw new DfError('INVALID_ARGUMENT', `vortex: value of ${value.length} bytes exceeds ${MAX_VALUE_SIZE}`);
  }
  const header = encodeHeader({ id: packet.id, tag: packetTag(packet), length: value.length });
  return Buffer.concat([header, value], HEADER_SIZE + value.length);
}

/** Decodes the value of a packet whose header is known. */
export function decodeValue(header: Header, value: Uint8Array): Packet {
  const { id, tag } = header;
  if (isDownloadTag(tag)) return { kind: 'download', id, tag, ...decodeDownloadPiece(value) };
  if (isContentTag(tag)) return { kind: 'content', id, tag, metadata: decodePieceContent(value) };
  // Upstream does not check the Close value; it is dropped, as for reserved tags.
  if (tag === Tag.Close) return { kind: 'close', id };
  if (tag === Tag.Error) return { kind: 'error', id, ...decodeError(value) };
  return { kind: 'reserved', id, tag };
}

/** Decodes one whole packet (upstream's `TryFrom<Bytes> for Vortex`): header, then exactly `length` value bytes. */
export function decodePacket(bytes: Uint8Array): Packet {
  if (bytes.length < HEADER_SIZE) {
    throw invalidPacket(`expected at least ${HEADER_SIZE} bytes for header, got ${bytes.length}`);
  }
  const header = decodeHeader(bytes.subarray(0, HEADER_SIZE));
  const value = bytes.subarray(HEADER_SIZE);
  if (value.length !== header.length) {
    throw invalidLength(`value len ${value.length} != declared length ${header.length}`);
  }
  return decodeValue(header, value);
}
