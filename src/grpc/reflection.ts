// Server reflection descriptors that strict clients accept. @grpc/proto-loader (protobufjs) builds the
// FileDescriptorProtos that @grpc/reflection serves, and two things in them make clients that build real
// descriptors (buf curl, grpcurl: Go's protodesc) give up with "failed to find service ... in schema":
//   - files are merged per package (dfdaemon_v2.proto, common_v2.proto, google_protobuf.proto) with empty
//     `dependency` lists, so `common.v2.Piece` cannot be resolved from dfdaemon_v2.proto;
//   - a map field's entry message is named after the field (`Request_header`) instead of `RequestHeaderEntry`,
//     which protodesc rejects as an invalid map entry;
//   - a message's reserved ranges carry an inclusive end (`reserved 5;` → 5 to 5) where descriptor.proto wants
//     an exclusive one (5 to 6), which protodesc rejects as "invalid range: 5 to 4".
// Both are repaired here on the encoded bytes with a small wire-format editor (the few descriptor fields we
// touch are listed below), so no descriptor library beyond what proto-loader already uses is needed.

import type { PackageDefinition } from '@grpc/proto-loader';

/** Field numbers from google/protobuf/descriptor.proto. */
const FILE = { name: 1, package: 2, dependency: 3, messageType: 4 } as const;
const MESSAGE = { name: 1, field: 2, nestedType: 3, options: 7, reservedRange: 9 } as const;
const RESERVED_RANGE = { end: 2 } as const;
const FIELD = { name: 1, typeName: 6 } as const;
const MESSAGE_OPTIONS = { mapEntry: 7 } as const;

type WireValue = number | Buffer;
interface WireField {
  field: number;
  wireType: number;
  value: WireValue;
}

function readVarint(b: Buffer, pos: number): [number, number] {
  let value = 0;
  let shift = 0;
  for (;;) {
    if (pos >= b.length) throw new Error('truncated varint');
    const byte = b[pos++]!;
    value += (byte & 0x7f) * 2 ** shift;
    if (byte < 0x80) return [value, pos];
    shift += 7;
    if (shift > 63) throw new Error('varint too long');
  }
}

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return Buffer.from(out);
}

/** Splits a message into its fields, in order. Varints above 2^53 lose precision; descriptors have none. */
function decode(b: Buffer): WireField[] {
  const out: WireField[] = [];
  let pos = 0;
  while (pos < b.length) {
    let tag: number;
    [tag, pos] = readVarint(b, pos);
    const field = Math.floor(tag / 8);
    const wireType = tag & 7;
    let value: WireValue;
    switch (wireType) {
      case 0:
        [value, pos] = readVarint(b, pos);
        break;
      case 1:
      case 5: {
        const n = wireType === 1 ? 8 : 4;
        value = b.subarray(pos, pos + n);
        pos += n;
        break;
      }
      case 2: {
        let len: number;
        [len, pos] = readVarint(b, pos);
        value = b.subarray(pos, pos + len);
        pos += len;
        break;
      }
      default:
        throw new Error(`unsupported wire type ${wireType}`);
    }
    if (pos > b.length) throw new Error('truncated message');
    out.push({ field, wireType, value });
  }
  return out;
}

function encode(fields: readonly WireField[]): Buffer {
  const parts: Buffer[] = [];
  for (const f of fields) {
    parts.push(varint(f.field * 8 + f.wireType));
    if (f.wireType === 0) parts.push(varint(f.value as number));
    else if (f.wireType === 2) parts.push(varint((f.value as Buffer).length), f.value as Buffer);
    else parts.push(f.value as Buffer);
  }
  return Buffer.concat(parts);
}

function str(fields: readonly WireField[], n: number): string | undefined {
  const f = fields.find((x) => x.field === n && x.wireType === 2);
  return f ? (f.value as Buffer).toString('utf8') : undefined;
}

function setStr(fields: WireField[], n: number, s: string): void {
  const f = fields.find((x) => x.field === n && x.wireType === 2);
  if (f) f.value = Buffer.from(s, 'utf8');
  else fields.push({ field: n, wireType: 2, value: Buffer.from(s, 'utf8') });
}

/** Go's (and protoc's) map entry name: `request_header` → `RequestHeaderEntry`. */
export function mapEntryName(fieldName: string): string {
  let out = '';
  let upper = true;
  for (const c of fieldName) {
    if (c === '_') upper = true;
    else {
      out += upper ? c.toUpperCase() : c;
      upper = false;
    }
  }
  return `${out}Entry`;
}

function isMapEntry(message: readonly WireField[]): boolean {
  const options = message.find((x) => x.field === MESSAGE.options && x.wireType === 2);
  if (!options) return false;
  return decode(options.value as Buffer).some(
    (o) => o.field === MESSAGE_OPTIONS.mapEntry && o.wireType === 0 && o.value === 1,
  );
}

/** Renames a message's map entries (and the fields' references to them) and fixes reserved ranges, recursively. */
function fixMessage(bytes: Buffer): Buffer {
  const msg = decode(bytes);
  for (const r of msg.filter((x) => x.field === MESSAGE.reservedRange && x.wireType === 2)) {
    const range = decode(r.value as Buffer);
    const end = range.find((x) => x.field === RESERVED_RANGE.end && x.wireType === 0);
    if (end) end.value = (end.value as number) + 1;
    r.value = encode(range);
  }
  const nested = msg.filter((x) => x.field === MESSAGE.nestedType && x.wireType === 2);
  const fields = msg.filter((x) => x.field === MESSAGE.field && x.wireType === 2);
  for (const n of nested) {
    let entry = decode(n.value as Buffer);
    if (isMapEntry(entry)) {
      const oldName = str(entry, MESSAGE.name) ?? '';
      for (const f of fields) {
        const fd = decode(f.value as Buffer);
        const typeName = str(fd, FIELD.typeName);
        if (!typeName || (typeName !== oldName && !typeName.endsWith(`.${oldName}`))) continue;
        const newName = mapEntryName(str(fd, FIELD.name) ?? '');
        setStr(fd, FIELD.typeName, typeName.slice(0, typeName.length - oldName.length) + newName);
        f.value = encode(fd);
        setStr(entry, MESSAGE.name, newName);
        break;
      }
    } else {
      entry = decode(fixMessage(n.value as Buffer));
    }
    n.value = encode(entry);
  }
  return encode(msg);
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * The encoded files with map entries renamed and the missing `dependency` entries added (every other file whose
 * package a type reference names). Input that does not parse is returned as it is.
 */
export function repairDescriptors(files: readonly Buffer[]): Buffer[] {
  try {
    const decoded = files.map((b) => {
      const file = decode(b);
      for (const m of file) {
        if (m.field === FILE.messageType && m.wireType === 2) m.value = fixMessage(m.value as Buffer);
      }
      return file;
    });
    const heads = decoded.map((f) => ({
      name: str(f, FILE.name) ?? '',
      pkg: str(f, FILE.package) ?? '',
    }));
    return decoded.map((file, i) => {
      const deps = new Set(
        file.filter((x) => x.field === FILE.dependency).map((x) => (x.value as Buffer).toString()),
      );
      // Type references name the package: `.common.v2.Task` (method types) or `common.v2.Piece` (field
      // types, as written in the .proto). Descriptors from protobufjs carry no comments to match by mistake.
      const text = encode(file).toString('latin1');
      for (const [j, other] of heads.entries()) {
        if (j === i || !other.pkg || !other.name || deps.has(other.name)) continue;
        if (!new RegExp(`${escapeRegExp(other.pkg)}\\.[A-Za-z_]`).test(text)) continue;
        deps.add(other.name);
        file.push({ field: FILE.dependency, wireType: 2, value: Buffer.from(other.name, 'utf8') });
      }
      return encode(file);
    });
  } catch {
    return [...files];
  }
}

/** A package definition whose every entry carries the repaired file list (what ReflectionService reads). */
export function reflectablePackage(pkg: PackageDefinition): PackageDefinition {
  const first = Object.values(pkg).find((d) => Array.isArray(d.fileDescriptorProtos));
  if (!first) return pkg;
  const files = repairDescriptors(first.fileDescriptorProtos as Buffer[]);
  const out: PackageDefinition = {};
  for (const [name, def] of Object.entries(pkg)) {
    out[name] = Array.isArray(def.fileDescriptorProtos)
      ? ({ ...def, fileDescriptorProtos: files } as typeof def)
      : def;
  }
  return out;
}
