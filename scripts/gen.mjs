#!/usr/bin/env node
// `npm run gen`: regenerate src/gen/ from proto/ with ts-proto (via buf), then two post-processing steps.
//
// uint64 fields are generated as JS numbers (forceLong=number) so the daemon's arithmetic stays plain. ts-proto's
// longToNumber throws above 2^53, but a Go scheduler sends 2^64-1 for an unknown content length
// (spec/scheduler.md §3.3): decoding such a message must not fail. We make the conversion saturate instead —
// values above Number.MAX_SAFE_INTEGER only ever mean "unknown", and callers check for that. The number is rounded
// toward zero: the nearest double to 2^64-1 is 2^64 (and to 2^63-1 it is 2^63), outside the field's range, so a
// message holding one could not be encoded again (the embedded scheduler answered AnnounceHost with INTERNAL for
// a host whose stats held u64::MAX; found by its fuzz).
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const bin = (name) => join('node_modules', '.bin', name);
execFileSync(bin('buf'), ['generate'], { stdio: 'inherit' });

const THROWING = /function longToNumber\(int64: \{ toString\(\): string \}\): number \{[\s\S]*?\n\}\n/;
const SATURATING = `function longToNumber(int64: { toString(): string }): number {
  // Patched by scripts/gen.mjs: saturate instead of throwing (a Go scheduler sends 2^64-1 for "unknown"), rounding
  // toward zero so that the number stays in the field's range and the message can be encoded again.
  const text = int64.toString();
  const n = globalThis.Number(text);
  if (globalThis.Number.isSafeInteger(n)) return n;
  const exact = globalThis.BigInt(text);
  const rounded = globalThis.BigInt(n);
  if ((n > 0 && rounded > exact) || (n < 0 && rounded < exact)) {
    // The next double toward zero: its bit pattern less one.
    const bits = new globalThis.Float64Array([n]);
    new globalThis.BigInt64Array(bits.buffer)[0] -= 1n;
    return bits[0];
  }
  return n;
}
`;
// ts-proto (env=node) decodes a bytes field as Buffer.from(reader.bytes()): a copy of bytes the message buffer
// already holds. For a piece's content in --transfer-from-dfdaemon that is a second copy of every byte in dfget,
// and twice the external memory that makes V8 collect (profiled: ~0.2 s of copying and most of 0.8 s of GC per
// GiB). A view shares the message buffer instead; grpc-js hands every decoded message a buffer of its own.
const COPYING_BYTES = /Buffer\.from\(reader\.bytes\(\)\)/g;
const BYTES_AS_BUFFER = `
/** Patched in by scripts/gen.mjs: a decoded bytes field is a view of the message buffer, not a copy. */
function bytesAsBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
`;
// Every generated file, google/protobuf/ included: a Duration of 2^62 s must reach the daemon's own check (which
// names the field), not fail as "Error deserializing request".
for (const name of readdirSync('src/gen', { recursive: true })) {
  if (!String(name).endsWith('.ts')) continue;
  const p = join('src/gen', String(name));
  const src = readFileSync(p, 'utf8');
  let out = THROWING.test(src) ? src.replace(THROWING, SATURATING) : src;
  if (COPYING_BYTES.test(out))
    out = out.replace(COPYING_BYTES, 'bytesAsBuffer(reader.bytes())') + BYTES_AS_BUFFER;
  if (out !== src) writeFileSync(p, out);
}
execFileSync(bin('prettier'), ['--log-level', 'warn', '--write', 'src/gen'], { stdio: 'inherit' });
