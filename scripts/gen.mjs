#!/usr/bin/env node
// `npm run gen`: regenerate src/gen/ from proto/ with ts-proto (via buf), then one post-processing step.
//
// uint64 fields are generated as JS numbers (forceLong=number) so the daemon's arithmetic stays plain. ts-proto's
// longToNumber throws above 2^53, but a Go scheduler sends 2^64-1 for an unknown content length
// (spec/scheduler.md §3.3): decoding such a message must not fail. We make the conversion saturate instead —
// values above Number.MAX_SAFE_INTEGER only ever mean "unknown", and callers check for that.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const bin = (name) => join('node_modules', '.bin', name);
execFileSync(bin('buf'), ['generate'], { stdio: 'inherit' });

const THROWING = /function longToNumber\(int64: \{ toString\(\): string \}\): number \{[\s\S]*?\n\}\n/;
const SATURATING = `function longToNumber(int64: { toString(): string }): number {
  // Patched by scripts/gen.mjs: saturate instead of throwing (a Go scheduler sends 2^64-1 for "unknown").
  return globalThis.Number(int64.toString());
}
`;
// Every generated file, google/protobuf/ included: a Duration of 2^62 s must reach the daemon's own check (which
// names the field), not fail as "Error deserializing request".
for (const name of readdirSync('src/gen', { recursive: true })) {
  if (!String(name).endsWith('.ts')) continue;
  const p = join('src/gen', String(name));
  const src = readFileSync(p, 'utf8');
  if (THROWING.test(src)) writeFileSync(p, src.replace(THROWING, SATURATING));
}
execFileSync(bin('prettier'), ['--log-level', 'warn', '--write', 'src/gen'], { stdio: 'inherit' });
