// Protobuf requests for fuzzing gRPC servers, built from the wire schemas (proto/, which src/gen is generated
// from), and a raw grpc-js client that sends them as bytes. A message arbitrary sets each field or not with a
// value of its type drawn from edge values (out-of-range integers, invalid UTF-8, huge and hostile strings),
// sets several members of a oneof at once, repeats singular fields, sends a field with the wrong wire type,
// adds unknown fields, and nests messages a few levels deep. Field-aware strings (ids, URLs, paths) come from the
// test's own pools, so requests reach past the first validation.

import { createServer, type AddressInfo } from 'node:net';
import {
  Client,
  credentials,
  Metadata,
  status as GrpcStatus,
  type ClientDuplexStream,
  type ServiceError,
} from '@grpc/grpc-js';
import fc from 'fast-check';
import protobuf from 'protobufjs';
import { loadRoot, OURS_PROTO } from './proto-model.js';
import { hostileString, mutatedBytes, randomBytes } from './fuzz.js';

let rootCache: protobuf.Root | undefined;
/** proto/ parsed once per process. */
export function protoRoot(): protobuf.Root {
  rootCache ??= loadRoot(OURS_PROTO);
  return rootCache;
}

// ---- wire encoding ---------------------------------------------------------------------------------------------

const WIRE = { varint: 0, i64: 1, len: 2, i32: 5 } as const;

/** One field on the wire: its number, wire type and payload (a varint's value, or the bytes). */
export interface WireField {
  no: number;
  wire: number;
  payload: bigint | Buffer;
}

function varint(v: bigint): Buffer {
  let x = BigInt.asUintN(64, v);
  const out: number[] = [];
  do {
    let b = Number(x & 0x7fn);
    x >>= 7n;
    if (x > 0n) b |= 0x80;
    out.push(b);
  } while (x > 0n);
  return Buffer.from(out);
}

export function encodeFields(fields: readonly WireField[]): Buffer {
  const parts: Buffer[] = [];
  for (const f of fields) {
    parts.push(varint((BigInt(f.no) << 3n) | BigInt(f.wire)));
    if (f.wire === WIRE.varint) parts.push(varint(f.payload as bigint));
    else if (f.wire === WIRE.len) {
      const b = f.payload as Buffer;
      parts.push(varint(BigInt(b.length)), b);
    } else parts.push(f.payload as Buffer);
  }
  return Buffer.concat(parts);
}

// ---- field values ----------------------------------------------------------------------------------------------

const VARINT_EDGES: readonly bigint[] = [
  0n,
  1n,
  2n,
  3n,
  4n,
  5n,
  6n,
  7n,
  100n,
  1023n,
  1024n,
  65535n,
  65536n,
  0x7fff_ffffn,
  0x8000_0000n,
  0xffff_ffffn,
  0x1_0000_0000n,
  2n ** 53n - 1n,
  2n ** 53n,
  2n ** 63n - 1n,
  2n ** 64n - 1n,
  -1n,
  -(2n ** 31n),
  -(2n ** 63n),
];

/** Varint values: edges of every integer width, small numbers, anything in 64 bits. */
export const varintValue: fc.Arbitrary<bigint> = fc.oneof(
  { arbitrary: fc.constantFrom(...VARINT_EDGES), weight: 3 },
  { arbitrary: fc.bigInt({ min: 0n, max: 20n }), weight: 2 },
  { arbitrary: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n }), weight: 1 },
);

const zigzag = (v: bigint): bigint => BigInt.asUintN(64, (v << 1n) ^ (v < 0n ? -1n : 0n));

const fixedBytes = (n: 4 | 8): fc.Arbitrary<Buffer> =>
  fc.oneof(
    fc.uint8Array({ minLength: n, maxLength: n }).map((a) => Buffer.from(a)),
    fc.constantFrom(Number.NaN, Infinity, -Infinity, -0, 1e308, 5e-324, 0.5, 100, 101, -1).map((d) => {
      const b = Buffer.alloc(n);
      if (n === 8) b.writeDoubleLE(d);
      else b.writeFloatLE(d);
      return b;
    }),
  );

/** Field-aware strings: called with the field's proto name (snake_case) and its message's full name. */
export type StringPool = (field: string, message: string) => fc.Arbitrary<string> | undefined;
/** Field-aware integers (varint fields), like StringPool. */
export type IntegerPool = (field: string, message: string) => fc.Arbitrary<bigint> | undefined;

export interface ProtoFuzzOptions {
  strings?: StringPool;
  integers?: IntegerPool;
  /** Levels of nested messages generated (deeper ones are empty or garbage). */
  maxDepth?: number;
}

const INVALID_UTF8 = [
  Buffer.from([0xff]),
  Buffer.from([0xc0, 0x80]),
  Buffer.from([0xed, 0xa0, 0x80]),
  Buffer.from([0x80]),
];

function scalarField(
  field: protobuf.Field,
  type: string,
  strings: fc.Arbitrary<string>,
  integers: fc.Arbitrary<bigint> = varintValue,
): fc.Arbitrary<WireField[]> {
  const no = field.id;
  const one = (wire: number, payload: fc.Arbitrary<bigint | Buffer>) =>
    payload.map((p): WireField[] => [{ no, wire, payload: p }]);
  switch (type) {
    case 'double':
    case 'fixed64':
    case 'sfixed64':
      return one(WIRE.i64, fixedBytes(8));
    case 'float':
    case 'fixed32':
    case 'sfixed32':
      return one(WIRE.i32, fixedBytes(4));
    case 'sint32':
    case 'sint64':
      return one(WIRE.varint, integers.map(zigzag));
    case 'string':
      return one(
        WIRE.len,
        fc.oneof(
          { arbitrary: strings.map((s) => Buffer.from(s)), weight: 9 },
          { arbitrary: fc.constantFrom(...INVALID_UTF8), weight: 1 },
        ),
      );
    case 'bytes':
      return one(WIRE.len, randomBytes(64));
    default:
      // int32, int64, uint32, uint64, bool and enums.
      if (field.resolvedType instanceof protobuf.Enum) {
        const values = Object.values(field.resolvedType.values).map((v) => BigInt(v));
        return one(
          WIRE.varint,
          fc.oneof(
            { arbitrary: fc.constantFrom(...values), weight: 3 },
            { arbitrary: varintValue, weight: 1 },
          ),
        );
      }
      return one(WIRE.varint, integers);
  }
}

export class ProtoFuzz {
  private readonly root: protobuf.Root;
  private readonly strings: StringPool;
  private readonly integers: IntegerPool;
  private readonly maxDepth: number;
  private readonly cache = new Map<string, fc.Arbitrary<Buffer>>();

  constructor(options: ProtoFuzzOptions = {}) {
    this.root = protoRoot();
    this.strings = options.strings ?? (() => undefined);
    this.integers = options.integers ?? (() => undefined);
    this.maxDepth = options.maxDepth ?? 3;
  }

  type(name: string): protobuf.Type {
    return this.root.lookupType(name);
  }

  /** A message of `typeName` as bytes, shaped by its schema (see the file comment). */
  message(typeName: string, depth = this.maxDepth): fc.Arbitrary<Buffer> {
    const key = `${typeName}@${depth}`;
    let arb = this.cache.get(key);
    if (!arb) {
      arb = this.build(this.type(typeName), depth);
      this.cache.set(key, arb);
    }
    return arb;
  }

  /**
   * A request body: mostly a schema-shaped message, else one with byte-level mutations, random bytes, or an
   * empty body.
   */
  request(typeName: string): fc.Arbitrary<Buffer> {
    return fc.oneof(
      { arbitrary: this.message(typeName), weight: 12 },
      { arbitrary: this.message(typeName).chain((b) => mutatedBytes([b])), weight: 3 },
      { arbitrary: randomBytes(128), weight: 2 },
      { arbitrary: fc.constant(Buffer.alloc(0)), weight: 1 },
    );
  }

  private fieldValue(
    field: protobuf.Field,
    message: protobuf.Type,
    depth: number,
  ): fc.Arbitrary<WireField[]> {
    const strings = this.strings(field.name, message.fullName.replace(/^\./, '')) ?? hostileString(64);
    if (field.map) {
      const mapField = field as unknown as protobuf.MapField;
      const key = scalarField(
        new protobuf.Field('key', 1, mapField.keyType),
        mapField.keyType,
        hostileString(32),
      );
      const value: fc.Arbitrary<WireField[]> =
        mapField.resolvedType instanceof protobuf.Type
          ? this.message(mapField.resolvedType.fullName, depth - 1).map((b) => [
              { no: 2, wire: WIRE.len, payload: b },
            ])
          : scalarField(new protobuf.Field('value', 2, mapField.type), mapField.type, strings);
      return fc
        .array(
          fc.tuple(key, value).map(([k, v]): WireField => ({
            no: field.id,
            wire: WIRE.len,
            payload: encodeFields([...k, ...v]),
          })),
          { maxLength: 3 },
        )
        .map((entries) => entries);
    }
    const single: fc.Arbitrary<WireField[]> =
      field.resolvedType instanceof protobuf.Type
        ? depth > 0
          ? this.message(field.resolvedType.fullName, depth - 1).map((b) => [
              { no: field.id, wire: WIRE.len, payload: b },
            ])
          : fc
              .oneof(fc.constant(Buffer.alloc(0)), randomBytes(16))
              .map((b) => [{ no: field.id, wire: WIRE.len, payload: b }])
        : scalarField(
            field,
            field.type,
            strings,
            this.integers(field.name, message.fullName.replace(/^\./, '')) ?? varintValue,
          );
    if (!field.repeated) return single;
    // Repeated: a few items, unpacked; numeric ones sometimes packed.
    const items = fc.array(single, { maxLength: 4 }).map((xs) => xs.flat());
    const numeric =
      !(field.resolvedType instanceof protobuf.Type) && !['string', 'bytes'].includes(field.type);
    if (!numeric) return items;
    return fc.oneof(
      items,
      items.map((xs): WireField[] => [
        {
          no: field.id,
          wire: WIRE.len,
          payload: Buffer.concat(
            xs.map((x) => (typeof x.payload === 'bigint' ? varint(x.payload) : x.payload)),
          ),
        },
      ]),
    );
  }

  private build(type: protobuf.Type, depth: number): fc.Arbitrary<Buffer> {
    const fields = type.fieldsArray;
    const plain = fields.filter((f) => !f.partOf || f.partOf.name.startsWith('_'));
    const oneofs = type.oneofsArray.filter((o) => !o.name.startsWith('_'));
    const value = (f: protobuf.Field) => this.fieldValue(f, type, depth);

    // Each plain field present half of the time; each oneof with one member mostly, none or several otherwise.
    const plainParts = plain.map((f) => fc.option(value(f), { freq: 2, nil: undefined }));
    const oneofParts = oneofs.map((o) =>
      fc.oneof(
        { arbitrary: fc.constantFrom(...o.fieldsArray).chain((f) => value(f)), weight: 8 },
        { arbitrary: fc.constant<WireField[]>([]), weight: 1 },
        {
          arbitrary: fc
            .subarray(o.fieldsArray, { minLength: 2 })
            .chain((fs) => fc.tuple(...fs.map(value)).map((vs) => vs.flat())),
          weight: o.fieldsArray.length > 1 ? 1 : 0,
        },
      ),
    );
    // Slips: a singular field twice, a field with another wire type, a field number nobody knows.
    const slip: fc.Arbitrary<WireField[]> = fc.oneof(
      { arbitrary: fc.constant<WireField[]>([]), weight: 12 },
      {
        arbitrary: fc
          .tuple(
            fc.constantFrom(...(fields.length > 0 ? fields.map((f) => f.id) : [1])),
            fc.constantFrom(0, 1, 2, 5),
            fc.oneof(varintValue, randomBytes(8)),
          )
          .map(([no, wire, p]): WireField[] => [
            {
              no,
              wire,
              payload:
                wire === WIRE.varint
                  ? typeof p === 'bigint'
                    ? p
                    : 0n
                  : wire === WIRE.len
                    ? typeof p === 'bigint'
                      ? Buffer.alloc(0)
                      : p
                    : Buffer.alloc(wire === WIRE.i64 ? 8 : 4, 0xab),
            },
          ]),
        weight: 1,
      },
      {
        arbitrary: fc
          .tuple(fc.integer({ min: 100, max: 536_870_911 }), randomBytes(8))
          .map(([no, b]): WireField[] => [{ no, wire: WIRE.len, payload: b }]),
        weight: 1,
      },
    );
    const all = [...plainParts, ...oneofParts];
    return fc
      .tuple(all.length > 0 ? fc.tuple(...all) : fc.constant([]), slip, fc.boolean())
      .map(([parts, extra, shuffle]) => {
        const flat = (parts as Array<WireField[] | undefined>).flatMap((p) => p ?? []).concat(extra);
        // Field order is free on the wire; reversed order catches decoders that assume ascending numbers.
        return encodeFields(shuffle ? flat.reverse() : flat);
      });
  }
}

// ---- a raw client ----------------------------------------------------------------------------------------------

const identity = (b: Buffer): Buffer => b;

export interface RawOutcome {
  code: number;
  details: string;
  /** Response messages (undecoded). */
  messages: Buffer[];
  ms: number;
}

/** A grpc-js client that sends and receives raw message bytes, to any method path. */
export class RawGrpcClient {
  readonly client: Client;

  constructor(target: string) {
    this.client = new Client(target, credentials.createInsecure(), {
      'grpc.max_receive_message_length': -1,
      'grpc.max_send_message_length': -1,
    });
  }

  close(): void {
    this.client.close();
  }

  unary(path: string, body: Buffer, deadlineMs: number, metadata = new Metadata()): Promise<RawOutcome> {
    const started = performance.now();
    return new Promise((resolve) => {
      this.client.makeUnaryRequest(
        path,
        identity,
        identity,
        body,
        metadata,
        { deadline: Date.now() + deadlineMs },
        (err, res) => {
          const ms = performance.now() - started;
          if (err) resolve({ code: err.code, details: err.details, messages: [], ms });
          else resolve({ code: GrpcStatus.OK, details: '', messages: res ? [res] : [], ms });
        },
      );
    });
  }

  /**
   * A server-streaming call; `maxMessages` cancels it after that many responses (streams that never end by
   * design, like SyncHost), which counts as OK.
   */
  serverStream(
    path: string,
    body: Buffer,
    deadlineMs: number,
    maxMessages = Infinity,
    metadata = new Metadata(),
  ): Promise<RawOutcome> {
    const started = performance.now();
    return new Promise((resolve) => {
      const messages: Buffer[] = [];
      const call = this.client.makeServerStreamRequest(path, identity, identity, body, metadata, {
        deadline: Date.now() + deadlineMs,
      });
      let done = false;
      const finish = (code: number, details: string) => {
        if (done) return;
        done = true;
        resolve({ code, details, messages, ms: performance.now() - started });
      };
      call.on('data', (m: Buffer) => {
        messages.push(m);
        if (messages.length >= maxMessages) {
          finish(GrpcStatus.OK, 'cancelled by the client after enough messages');
          call.cancel();
        }
      });
      call.on('error', (e: ServiceError) => finish(e.code, e.details));
      call.on('status', (s) => finish(s.code, s.details));
    });
  }

  /** A bidi call: writes `bodies`, then half-closes unless `leaveOpen`, and collects until the status. */
  bidi(path: string, bodies: readonly Buffer[], deadlineMs: number, leaveOpen = false): Promise<RawOutcome> {
    const started = performance.now();
    return new Promise((resolve) => {
      const messages: Buffer[] = [];
      const call: ClientDuplexStream<Buffer, Buffer> = this.client.makeBidiStreamRequest(
        path,
        identity,
        identity,
        new Metadata(),
        {
          deadline: Date.now() + deadlineMs,
        },
      );
      let done = false;
      const finish = (code: number, details: string) => {
        if (done) return;
        done = true;
        resolve({ code, details, messages, ms: performance.now() - started });
      };
      call.on('data', (m: Buffer) => messages.push(m));
      call.on('error', (e: ServiceError) => finish(e.code, e.details));
      call.on('status', (s) => finish(s.code, s.details));
      for (const b of bodies) call.write(b);
      if (!leaveOpen) call.end();
    });
  }
}

/**
 * The bytes a real grpc-js client sends for one unary call to `path` (preface, SETTINGS, HEADERS, DATA), captured
 * by a listener that answers SETTINGS and nothing else: a seed for mutations at the HTTP/2 level.
 */
export async function captureGrpcRequest(path: string, body: Buffer): Promise<Buffer> {
  const parts: Buffer[] = [];
  const capture = createServer((s) => {
    // An empty SETTINGS and a SETTINGS ACK, so the client goes on to send its request.
    s.write(Buffer.from('000000040000000000000000040100000000', 'hex'));
    s.on('data', (c: Buffer) => parts.push(c));
    s.on('error', () => {});
  });
  await new Promise<void>((r) => capture.listen(0, '127.0.0.1', r));
  const client = new RawGrpcClient(`127.0.0.1:${(capture.address() as AddressInfo).port}`);
  const done = client.unary(path, body, 300);
  await done;
  client.close();
  await new Promise<void>((r) => capture.close(() => r()));
  const bytes = Buffer.concat(parts);
  if (!bytes.toString('latin1').startsWith('PRI * HTTP/2.0')) throw new Error('no HTTP/2 request captured');
  return bytes;
}

/** Statuses a server may answer a bad request with. UNKNOWN (an error without a code) is never one of them. */
export const REQUEST_ERROR_CODES: ReadonlySet<number> = new Set([
  GrpcStatus.INVALID_ARGUMENT,
  GrpcStatus.NOT_FOUND,
  GrpcStatus.ALREADY_EXISTS,
  GrpcStatus.PERMISSION_DENIED,
  GrpcStatus.FAILED_PRECONDITION,
  GrpcStatus.OUT_OF_RANGE,
  GrpcStatus.RESOURCE_EXHAUSTED,
  GrpcStatus.UNIMPLEMENTED,
  GrpcStatus.UNAVAILABLE,
]);

/** What a status message must not look like: a JavaScript failure leaking out of a handler. */
export const JS_FAILURE =
  /TypeError|RangeError|ReferenceError|SyntaxError|Cannot read propert|Cannot convert|is not a function|is not iterable|is not defined|of undefined|of null|Maximum call stack|Invalid array length|\n\s+at /;

/**
 * Checks a status answer: a known code with a one-line message of bounded length that is not a JavaScript
 * failure. INTERNAL passes as grpc-js's own answer to a body that does not decode, and where the server means it
 * (`internal`: the messages of its deliberate INTERNAL answers).
 */
export function assertProperStatus(
  o: RawOutcome,
  what: string,
  options: { allowed?: ReadonlySet<number>; internal?: RegExp } = {},
): void {
  const allowed = options.allowed ?? REQUEST_ERROR_CODES;
  const shown = `${what}: ${GrpcStatus[o.code]} ${JSON.stringify(o.details.slice(0, 300))}`;
  if (o.code === GrpcStatus.INTERNAL) {
    if (/^Error deserializing request/.test(o.details)) return;
    if (!options.internal?.test(o.details)) throw new Error(`INTERNAL from a handler: ${shown}`);
  } else if (o.code !== GrpcStatus.OK && !allowed.has(o.code)) {
    throw new Error(`unexpected status: ${shown}`);
  }
  if (JS_FAILURE.test(o.details)) throw new Error(`a JavaScript failure as the status: ${shown}`);
  if (o.details.length > 4096)
    throw new Error(`a status message of ${o.details.length} characters: ${shown}`);
  if (/[\r\n]/.test(o.details)) throw new Error(`a status message on several lines: ${shown}`);
}

export { GrpcStatus };
