// Byte sizes as upstream's dfdaemon.yaml spells them. Upstream deserializes sizes with `bytesize-serde` on top of
// the Rust `bytesize` 1.3 crate's `FromStr`; we follow the same grammar so every file that works there works here:
//   - an integer (YAML number or a string of digits) is a count of bytes;
//   - otherwise a decimal number ("1", "1.5") optionally followed by whitespace and a unit, where the unit is
//     case-insensitive and either decimal (B, K/KB, M/MB, G/GB, T/TB, P/PB = 1000^n)
//     or binary (Ki/KiB, Mi/MiB, Gi/GiB, Ti/TiB, Pi/PiB = 1024^n);
//   - a fractional result is truncated to whole bytes ("1.5KiB" = 1536, "0.3KB" = 300).
// So "50GB" is 50 * 10^9 bytes while "50GiB" is 50 * 2^30 bytes; "mb" and "MB" are the same unit.

import { DfError } from './errors.js';

const KB = 1000;
const KIB = 1024;

const UNITS: Readonly<Record<string, number>> = {
  b: 1,
  k: KB,
  kb: KB,
  m: KB ** 2,
  mb: KB ** 2,
  g: KB ** 3,
  gb: KB ** 3,
  t: KB ** 4,
  tb: KB ** 4,
  p: KB ** 5,
  pb: KB ** 5,
  ki: KIB,
  kib: KIB,
  mi: KIB ** 2,
  mib: KIB ** 2,
  gi: KIB ** 3,
  gib: KIB ** 3,
  ti: KIB ** 4,
  tib: KIB ** 4,
  pi: KIB ** 5,
  pib: KIB ** 5,
};

/** The form a size must take, for error messages. */
export const BYTE_SIZE_FORM =
  'a number of bytes or a number with a unit like "50GB", "512KiB" or "4MiB" ' +
  '(KB/MB/GB/TB/PB are powers of 1000, KiB/MiB/GiB/TiB/PiB powers of 1024)';

function invalid(value: unknown, why?: string): DfError {
  const shown = typeof value === 'string' ? JSON.stringify(value) : String(value);
  return new DfError(
    'INVALID_ARGUMENT',
    `invalid size ${shown}${why ? ` (${why})` : ''}: expected ${BYTE_SIZE_FORM}`,
  );
}

function checkedBytes(n: number, value: unknown): number {
  if (!Number.isSafeInteger(n) || n < 0) throw invalid(value, 'out of range');
  return n;
}

/**
 * Parses a size ("50GB", "512KiB", "4 MiB", "1048576", 1048576) into a number of bytes.
 * Throws DfError('INVALID_ARGUMENT') naming the value and the expected form.
 */
export function parseByteSize(value: string | number): number {
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) throw invalid(value, 'a bare number must be a whole count of bytes');
    return checkedBytes(value, value);
  }
  if (typeof value !== 'string') throw invalid(value);

  // Rust's u64::from_str accepts an optional leading '+'.
  if (/^\+?[0-9]+$/.test(value)) return checkedBytes(Number(value), value);

  const numberPart = /^[0-9.]*/.exec(value)![0];
  // Like the Rust parser, only digits and dots make the number (so "1.", ".5" parse; "1.2.3" and "" do not).
  if (numberPart === '' || numberPart === '.' || (numberPart.match(/\./g)?.length ?? 0) > 1) {
    throw invalid(value);
  }
  const amount = Number(numberPart);
  const suffix = value.replace(/^[\s0-9.]*/, '');
  const factor = UNITS[suffix.toLowerCase()];
  if (factor === undefined) {
    throw invalid(value, suffix === '' ? 'missing unit' : `unknown unit ${JSON.stringify(suffix)}`);
  }
  return checkedBytes(Math.trunc(amount * factor), value);
}

const BINARY_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'] as const;

/** Formats a number of bytes for people, in binary units: 512 → "512 B", 524288 → "512 KiB", 5e10 → "46.6 GiB". */
export function formatByteSize(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  const sign = n < 0 ? '-' : '';
  let v = Math.abs(n);
  let i = 0;
  while (v >= 1024 && i < BINARY_UNITS.length - 1) {
    v /= 1024;
    i++;
  }
  if (i === 0) return `${sign}${Math.round(v)} B`;
  const text = Number.isInteger(v) ? String(v) : v.toFixed(1);
  return `${sign}${text} ${BINARY_UNITS[i]}`;
}
