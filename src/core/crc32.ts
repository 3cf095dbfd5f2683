// CRC-32/IEEE (ISO-HDLC: the polynomial of upstream's crc32fast and of zlib) over bytes, as fast as this machine
// allows: @node-rs/crc32 (crc32fast with carry-less multiply, ~6 GB/s on the 2-core VMs this project is measured
// on) where its prebuilt binary loads, else node:zlib's crc32 (table-driven, ~3 GB/s; 15 % of dfdaemon's CPU in a
// cold 1 GiB download profile). Both take the running value as their second argument, so chunked updates give
// the value of one call over the whole input, and they agree bit for bit (test/unit/core/crc32.test.ts).
//
// Loaded on first use: a CLI that never checksums (most dfget runs) does not pay the native module's load.
// DF_CRC32=zlib forces the fallback (for measurements, and where a native module must not be loaded).

import { createRequire } from 'node:module';
import { crc32 as zlibCrc32 } from 'node:zlib';

type Crc32Function = (data: Uint8Array | string, value: number) => number;

export type Crc32Implementation = 'crc32fast' | 'zlib';

let chosen: { fn: Crc32Function; name: Crc32Implementation } | undefined;

/** The native CRC-32, or undefined where it cannot load (another platform, a production install without it). */
export function loadFastCrc32(): Crc32Function | undefined {
  try {
    const require = createRequire(import.meta.url);
    const native = require('@node-rs/crc32') as {
      crc32(input: Uint8Array | string, initialState?: number | null): number;
    };
    return (data, value) => native.crc32(data, value);
  } catch {
    return undefined;
  }
}

function choose(): { fn: Crc32Function; name: Crc32Implementation } {
  const fast = process.env.DF_CRC32 === 'zlib' ? undefined : loadFastCrc32();
  return fast ? { fn: fast, name: 'crc32fast' } : { fn: zlibCrc32, name: 'zlib' };
}

/** The running CRC-32 `value` (0 to start) extended by `data` (a string counts as its UTF-8 bytes). */
export function crc32(data: NodeJS.ArrayBufferView | string, value = 0): number {
  chosen ??= choose();
  if (typeof data === 'string' || data instanceof Uint8Array) return chosen.fn(data, value);
  return chosen.fn(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), value);
}

/** Which implementation crc32() uses (chosen on first use). */
export function crc32Implementation(): Crc32Implementation {
  chosen ??= choose();
  return chosen.name;
}

export { zlibCrc32 };
