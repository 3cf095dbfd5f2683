import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DfError } from '../../../src/core/errors.js';
import {
  HEADER_SIZE,
  MAX_CREATED_AT,
  MIN_CREATED_AT,
  Tag,
  VortexCode,
  decodeDownloadPiece,
  decodeError,
  decodeHeader,
  decodePacket,
  decodePieceContent,
  encodeDownloadPiece,
  encodeHeader,
  encodePacket,
  encodePieceContent,
  encodeValue,
  type ContentTag,
  type DownloadTag,
  type Packet,
  type PieceMetadata,
} from '../../../src/vortex/codec.js';
import { DEFAULT_MAX_CONTROL_VALUE_SIZE, FrameReader, type Frame } from '../../../src/vortex/frame-reader.js';
import { loadVortexVectors, type VortexVectors } from './vortex-vectors.js';
import { fuzzRuns } from '../../helpers/fuzz.js';

const vectors = loadVortexVectors();

const hex = (s: string): Buffer => Buffer.from(s, 'hex');

/** The packet a vector's `decoded` block describes. */
function packetOf(d: VortexVectors[string]): Packet {
  const { id, tag } = d;
  if ([0, 2, 4, 6].includes(tag)) {
    return { kind: 'download', id, tag: tag as DownloadTag, taskId: d.task_id, number: d.piece_number };
  }
  if ([1, 3, 5, 7].includes(tag))
    return { kind: 'content', id, tag: tag as ContentTag, metadata: metadataOf(d) };
  if (tag === 254) return { kind: 'close', id };
  if (tag === 255) return { kind: 'error', id, code: d.code, message: d.message };
  return { kind: 'reserved', id, tag };
}

function metadataOf(d: VortexVectors[string]): PieceMetadata {
  return {
    number: d.number,
    offset: BigInt(d.offset),
    length: BigInt(d.length),
    digest: d.digest,
    parentId: d.parent_id,
    trafficType: d.traffic_type,
    costSecs: BigInt(d.cost_secs),
    createdAt: d.created_at_unix,
  };
}

/**
 * Splits bytes into chunks at the given sizes (cycled), as a socket might deliver them, and, as the socket reader
 * does (core/socket-reads.ts), into one buffer used again: a chunk is valid only until the next is asked for, and
 * is scribbled over then, so a reader that keeps a view past its next pull sees wrong bytes.
 */
async function* chunked(bytes: Buffer, sizes: number[]): AsyncGenerator<Buffer> {
  const reused = Buffer.alloc(Math.max(1, ...sizes));
  let at = 0;
  let i = 0;
  while (at < bytes.length) {
    const n = Math.min(Math.max(1, sizes[i++ % sizes.length]!), bytes.length - at);
    bytes.copy(reused, 0, at, at + n);
    yield reused.subarray(0, n);
    reused.fill(0xee);
    at += n;
  }
}

async function collect(body: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of body) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}

/** Reads every frame of a stream, draining bodies. */
async function readAll(source: AsyncIterable<Buffer>): Promise<Array<{ frame: Frame; body?: Buffer }>> {
  const reader = new FrameReader(source);
  const out: Array<{ frame: Frame; body?: Buffer }> = [];
  for (;;) {
    const frame = await reader.readFrame();
    if (frame === null) return out;
    out.push({ frame, body: frame.body ? await collect(frame.body) : undefined });
  }
}

function assertDfError(e: unknown): asserts e is DfError {
  assert.ok(e instanceof DfError, `expected a DfError, got ${e instanceof Error ? e.stack : String(e)}`);
}

test('tag and error code tables match the reference', () => {
  for (const [name, value] of Object.entries(vectors.tags)) {
    assert.equal(Tag[name as keyof typeof Tag], value, name);
  }
  for (const [name, value] of Object.entries(vectors.error_codes)) {
    if (name === 'reserved') continue;
    assert.equal(VortexCode[name as keyof typeof VortexCode], value, name);
  }
});

test('every vector decodes to its fields and encodes back to its bytes', async () => {
  const kinds = new Set<string>();
  for (const v of vectors.vectors) {
    kinds.add(v.kind);
    const d = v.decoded;
    switch (v.kind) {
      case 'header': {
        assert.deepEqual(decodeHeader(hex(v.hex)), { id: d.id, tag: d.tag, length: d.length }, v.name);
        assert.equal(encodeHeader({ id: d.id, tag: d.tag, length: d.length }).toString('hex'), v.hex, v.name);
        break;
      }
      case 'packet': {
        const want = packetOf(d);
        const bytes = hex(v.hex);
        assert.deepEqual(decodePacket(bytes), want, v.name);
        assert.equal(encodePacket(want).toString('hex'), v.hex, v.name);
        // The header length is the value length; for content it excludes the piece bytes.
        assert.equal(bytes.readUInt32BE(2), bytes.length - HEADER_SIZE, v.name);
        if (typeof d.length === 'number') assert.equal(d.length, bytes.length - HEADER_SIZE, v.name);
        if (v.value_hex !== undefined) {
          assert.equal(v.hex.slice(HEADER_SIZE * 2), v.value_hex, v.name);
          assert.equal(encodeValue(want).toString('hex'), v.value_hex, v.name);
        }
        if (want.kind === 'content') {
          assert.equal(bytes.readUInt32BE(HEADER_SIZE), d.metadata_length, v.name);
          assert.deepEqual(decodePieceContent(bytes.subarray(HEADER_SIZE)), want.metadata, v.name);
          assert.equal(
            encodePieceContent(want.metadata).toString('hex'),
            v.hex.slice(HEADER_SIZE * 2),
            v.name,
          );
          // The streaming reader yields the same metadata and an empty body (no piece bytes follow here).
          if (BigInt(d.length) <= 0n) {
            const [only] = await readAll(chunked(bytes, [1]));
            assert.deepEqual(only!.frame.packet, want, v.name);
          }
        }
        for (const [tagNameOther, otherHex] of Object.entries<string>(v.same_value_other_tags ?? {})) {
          const other = { ...want, tag: vectors.tags[tagNameOther] } as Packet;
          assert.deepEqual(decodePacket(hex(otherHex)), other, `${v.name} as ${tagNameOther}`);
          assert.equal(encodePacket(other).toString('hex'), otherHex, `${v.name} as ${tagNameOther}`);
        }
        if (want.kind !== 'content') {
          // Streamed in one-byte chunks, the reader agrees with the whole-packet decoder.
          const frames = await readAll(chunked(bytes, [1]));
          assert.equal(frames.length, 1, v.name);
          assert.deepEqual(frames[0]!.frame.packet, want, v.name);
        }
        break;
      }
      case 'value': {
        assert.deepEqual(
          decodeDownloadPiece(hex(v.hex)),
          { taskId: d.task_id, number: d.piece_number },
          v.name,
        );
        assert.equal(encodeDownloadPiece(d.task_id, d.piece_number).toString('hex'), v.hex, v.name);
        break;
      }
      case 'stream': {
        for (const sizes of [[1], [6, 4, 72, 13], [7, 100], [1 << 16]]) {
          const frames = await readAll(chunked(hex(v.hex), sizes));
          assert.equal(frames.length, 1, v.name);
          const { frame, body } = frames[0]!;
          assert.equal(frame.header.length, d.header_length, v.name);
          assert.equal(frame.packet.kind, 'content', v.name);
          assert.equal(body!.length, d.content_length, v.name);
          assert.equal(body!.toString('ascii'), d.content_ascii, v.name);
        }
        break;
      }
      default:
        assert.fail(`unknown vector kind ${v.kind} in ${v.name}`);
    }
  }
  assert.deepEqual([...kinds].sort(), ['header', 'packet', 'stream', 'value']);
});

test('every negative vector fails with its error kind and message', () => {
  const kindText: Record<string, string> = {
    InvalidPacket: 'invalid packet',
    InvalidLength: 'invalid length',
  };
  for (const v of vectors.negative_vectors) {
    let run: () => unknown;
    if (v.hex !== undefined) run = () => decodePacket(hex(v.hex));
    else if (v.name.startsWith('piece_content')) run = () => decodePieceContent(hex(v.value_hex));
    else if (v.name.startsWith('download_piece')) run = () => decodeDownloadPiece(hex(v.value_hex));
    else if (v.name.startsWith('error')) run = () => decodeError(hex(v.value_hex));
    else assert.fail(`no decoder for negative vector ${v.name}`);
    assert.throws(
      run,
      (e: unknown) => {
        assertDfError(e);
        assert.equal(e.code, 'INVALID_ARGUMENT', v.name);
        const prefix = `vortex: ${kindText[v.expect_error]}: `;
        assert.ok(e.message.startsWith(prefix), `${v.name}: ${e.message}`);
        if (v.message !== undefined) assert.equal(e.message, prefix + v.message, v.name);
        return true;
      },
      v.name,
    );
  }
});

test('quirks: Close value is dropped, BOM kept, created_at bounded, task id must be 64 bytes', () => {
  assert.deepEqual(decodePacket(hex('07fe0000000474657374')), { kind: 'close', id: 7 });
  const bom = Buffer.concat([Buffer.from([3]), Buffer.from('\uFEFFboom', 'utf8')]);
  assert.equal(decodeError(bom).message, '\uFEFFboom');
  assert.throws(() => decodeError(Buffer.from([3, 0xff, 0xfe])), /invalid utf-8/);

  const base: PieceMetadata = {
    number: 1,
    offset: 0n,
    length: 1n,
    digest: 'crc32:1',
    parentId: '',
    trafficType: 1,
    costSecs: 0n,
    createdAt: 0,
  };
  for (const createdAt of [MIN_CREATED_AT, MAX_CREATED_AT, -1]) {
    assert.equal(decodePieceContent(encodePieceContent({ ...base, createdAt })).createdAt, createdAt);
  }
  const bad = encodePieceContent(base);
  bad.writeBigInt64BE(BigInt(MAX_CREATED_AT) + 1n, bad.length - 8);
  assert.throws(() => decodePieceContent(bad), /invalid timestamp for created_at/);
  // Bytes after created_at inside the metadata are ignored, as upstream does.
  const longer = Buffer.concat([encodePieceContent(base), Buffer.from('xyz')]);
  longer.writeUInt32BE(longer.length - 4, 0);
  assert.deepEqual(decodePieceContent(longer), base);

  assert.throws(() => encodeDownloadPiece('a'.repeat(63), 1), /64 bytes/);
  assert.throws(() => encodeDownloadPiece('é'.repeat(64), 1), /64 bytes/);
  assert.throws(() => encodeDownloadPiece('a'.repeat(64), 2 ** 32), /u32/);
});

test('the frame reader refuses oversized and truncated frames without reading them', async () => {
  const reject = async (bytes: Buffer, code: string, pattern: RegExp): Promise<void> => {
    await assert.rejects(readAll(chunked(bytes, [3])), (e: unknown) => {
      assertDfError(e);
      assert.equal(e.code, code);
      assert.match(e.message, pattern);
      return true;
    });
  };
  // A DownloadPiece announcing 4 GiB - 1 fails on the header alone.
  await reject(
    hex('0000ffffffff'),
    'INVALID_ARGUMENT',
    /expected 68 bytes for DownloadPiece, got 4294967295/,
  );
  await reject(hex('00ff7fffffff01'), 'INVALID_ARGUMENT', /exceeds/);
  await reject(
    hex('00010000000000010001'),
    'INVALID_ARGUMENT',
    /PieceContent metadata of 65537 bytes exceeds/,
  );
  const big = Buffer.alloc(HEADER_SIZE);
  big.writeUInt8(Tag.Close, 1);
  big.writeUInt32BE(DEFAULT_MAX_CONTROL_VALUE_SIZE + 1, 2);
  await reject(big, 'INVALID_ARGUMENT', /exceeds/);
  // Truncations: in the header, in a value, in the piece bytes.
  await reject(hex('0000000000'), 'IO', /connection closed after 5 of 6 bytes of header/);
  const request = encodePacket({ kind: 'download', id: 0, tag: 0, taskId: 'a'.repeat(64), number: 1 });
  await reject(request.subarray(0, 40), 'IO', /of value/);
  const stream = hex(vectors.vectors.find((v: VortexVectors[string]) => v.kind === 'stream').hex);
  await reject(stream.subarray(0, stream.length - 1), 'IO', /12 of 13 bytes of piece content/);
  // A clean end between frames is no error.
  assert.deepEqual(await readAll(chunked(Buffer.alloc(0), [1])), []);
});

test('several frames in one stream, bodies interleaved', async () => {
  const integration = vectors.vectors.find(
    (v: VortexVectors[string]) => v.name === 'PieceContent_integration',
  );
  const meta = metadataOf(integration.decoded);
  const body = Buffer.from('piece content');
  const bytes = Buffer.concat([
    encodePacket({ kind: 'content', id: 1, tag: 1, metadata: meta }),
    body,
    encodePacket({ kind: 'error', id: 2, code: 2, message: 'gone' }),
    encodePacket({ kind: 'reserved', id: 3, tag: 99 }),
    encodePacket({ kind: 'content', id: 4, tag: 7, metadata: meta }),
    body,
  ]);
  const frames = await readAll(chunked(bytes, [5, 11, 2]));
  assert.deepEqual(
    frames.map((f) => f.frame.packet.kind),
    ['content', 'error', 'reserved', 'content'],
  );
  assert.equal(frames[0]!.body!.toString(), 'piece content');
  assert.equal(frames[3]!.body!.toString(), 'piece content');
});

// ---- property tests -------------------------------------------------------------------------------------------

const u8 = fc.integer({ min: 0, max: 255 });
const u32 = fc.integer({ min: 0, max: 0xffff_ffff });
const u64 = fc.bigInt({ min: 0n, max: 0xffff_ffff_ffff_ffffn });
const text = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.string({ unit: 'binary-ascii', maxLength: 40 }),
  fc.string({ maxLength: 10 }).map((s) => `\uFEFF${s}`),
);
const taskId = fc.oneof(
  fc.stringMatching(/^[0-9a-f]{64}$/),
  fc.string({ unit: 'binary-ascii', minLength: 64, maxLength: 64 }),
);
// fc.record builds objects without a prototype; deepStrictEqual would tell them from decoded ones.
const plain = <T extends object>(o: T): T => ({ ...o });
const metadata: fc.Arbitrary<PieceMetadata> = fc
  .record({
    number: u32,
    offset: u64,
    length: u64,
    digest: text,
    parentId: text,
    trafficType: u8,
    costSecs: u64,
    createdAt: fc.integer({ min: MIN_CREATED_AT, max: MAX_CREATED_AT }),
  })
  .map(plain);
const packet: fc.Arbitrary<Packet> = fc
  .oneof(
    fc.record({
      kind: fc.constant('download' as const),
      id: u8,
      tag: fc.constantFrom<DownloadTag>(0, 2, 4, 6),
      taskId,
      number: u32,
    }),
    fc.record({
      kind: fc.constant('content' as const),
      id: u8,
      tag: fc.constantFrom<ContentTag>(1, 3, 5, 7),
      metadata,
    }),
    fc.record({ kind: fc.constant('close' as const), id: u8 }),
    fc.record({ kind: fc.constant('error' as const), id: u8, code: u8, message: text }),
    fc.record({ kind: fc.constant('reserved' as const), id: u8, tag: fc.integer({ min: 8, max: 253 }) }),
  )
  .map((p) => plain<Packet>(p));

test('property: every packet kind round-trips through encode and decode', () => {
  fc.assert(
    fc.property(packet, (p) => {
      const bytes = encodePacket(p);
      assert.deepEqual(decodePacket(bytes), p);
      assert.equal(bytes.readUInt32BE(2), bytes.length - HEADER_SIZE);
      assert.deepEqual(decodeHeader(bytes.subarray(0, HEADER_SIZE)).id, p.id);
    }),
    { numRuns: fuzzRuns(2000) },
  );
});

test('property: the frame reader decodes any chunking of a packet sequence', async () => {
  const small = metadata.map((m) => ({ ...m, length: m.length % 300n }));
  const item = fc.oneof(
    packet.filter((p) => p.kind !== 'content'),
    fc
      .record({
        kind: fc.constant('content' as const),
        id: u8,
        tag: fc.constantFrom<ContentTag>(1, 3, 5, 7),
        metadata: small,
      })
      .map((p) => plain<Packet>(p)),
  );
  await fc.assert(
    fc.asyncProperty(
      fc.array(item, { maxLength: 6 }),
      fc.array(fc.integer({ min: 1, max: 97 }), { minLength: 1 }),
      async (packets, sizes) => {
        const parts: Buffer[] = [];
        const bodies: Buffer[] = [];
        for (const p of packets) {
          parts.push(encodePacket(p));
          if (p.kind === 'content') {
            const body = Buffer.alloc(Number(p.metadata.length), p.id);
            bodies.push(body);
            parts.push(body);
          }
        }
        const frames = await readAll(chunked(Buffer.concat(parts), sizes));
        assert.deepEqual(
          frames.map((f) => f.frame.packet),
          packets,
        );
        assert.deepEqual(
          frames.filter((f) => f.body).map((f) => f.body),
          bodies,
        );
      },
    ),
    { numRuns: fuzzRuns(500) },
  );
});

// ---- fuzz -----------------------------------------------------------------------------------------------------

test(`fuzz: ${fuzzRuns(20_000)} random and mutated frames decode or fail with a DfError`, async () => {
  const rng = fc.sample(fc.nat(), { numRuns: 1, seed: 20240601 })[0]!;
  let state = rng || 1;
  const rand = (n: number): number => {
    // xorshift32: deterministic, so a failure reproduces.
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) % n;
  };
  const seeds: Buffer[] = vectors.vectors.map((v: VortexVectors[string]) => hex(v.hex));
  const RUNS = fuzzRuns(20_000);
  let decoded = 0;
  for (let i = 0; i < RUNS; i++) {
    let bytes: Buffer;
    if (i % 4 === 0) {
      bytes = Buffer.alloc(rand(120));
      for (let j = 0; j < bytes.length; j++) bytes[j] = rand(256);
    } else {
      bytes = Buffer.from(seeds[rand(seeds.length)]!);
      const mutations = 1 + rand(4);
      for (let m = 0; m < mutations; m++) {
        const op = rand(4);
        if (op === 0 && bytes.length > 0) bytes[rand(bytes.length)] = rand(256);
        else if (op === 1) bytes = bytes.subarray(0, rand(bytes.length + 1));
        else if (op === 2) bytes = Buffer.concat([bytes, Buffer.from([rand(256), rand(256)])]);
        // Tag or length bytes are where the interesting failures live.
        else if (bytes.length >= HEADER_SIZE) bytes[1 + rand(5)] = rand(256);
      }
    }
    try {
      decodePacket(bytes);
      decoded++;
    } catch (e) {
      assertDfError(e);
    }
    try {
      await readAll(chunked(bytes, [1 + rand(64)]));
    } catch (e) {
      assertDfError(e);
    }
  }
  assert.ok(decoded > 0, 'some mutated frames still decode');
});
