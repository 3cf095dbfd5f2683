// Durations as upstream's dfdaemon.yaml spells them. Upstream deserializes durations with `humantime-serde`,
// i.e. the Rust `humantime` 2.x `parse_duration` grammar, which we follow:
//   - one or more spans "<integer><unit>", optionally separated by whitespace: "360s", "1h30m", "2h 37min";
//   - units are case-sensitive ("m" is minutes, "M" is months):
//       ns nsec nanos | us usec µs | ms msec millis | s sec secs second seconds |
//       m min mins minute minutes | h hr hrs hour hours | d day days | w wk wks week weeks |
//       M month months (30.44 days) | y yr yrs year years (365.25 days);
//   - a bare "0" is zero; any other number needs a unit, and fractions ("1.5h") are not accepted.
// Values are returned in milliseconds (fractional below 1 ms, e.g. "500us" = 0.5).

import { DfError } from './errors.js';

const NS_PER_MS = 1_000_000;
const SECOND_NS = 1_000_000_000n;

const UNIT_NS: Readonly<Record<string, bigint>> = (() => {
  const table: Record<string, bigint> = {};
  const add = (names: string[], ns: bigint) => names.forEach((name) => (table[name] = ns));
  add(['nanos', 'nsec', 'ns'], 1n);
  add(['usec', 'us', 'µs'], 1_000n);
  add(['millis', 'msec', 'ms'], 1_000_000n);
  add(['seconds', 'second', 'secs', 'sec', 's'], SECOND_NS);
  add(['minutes', 'minute', 'min', 'mins', 'm'], 60n * SECOND_NS);
  add(['hours', 'hour', 'hr', 'hrs', 'h'], 3_600n * SECOND_NS);
  add(['days', 'day', 'd'], 86_400n * SECOND_NS);
  add(['weeks', 'week', 'wk', 'wks', 'w'], 7n * 86_400n * SECOND_NS);
  add(['months', 'month', 'M'], 2_630_016n * SECOND_NS);
  add(['years', 'year', 'yr', 'yrs', 'y'], 31_557_600n * SECOND_NS);
  return table;
})();

/** The form a duration must take, for error messages. */
export const DURATION_FORM =
  'a duration like "360s", "10m", "1h30m" or "30d" (units ns, us, ms, s, m, h, d, w)';

function invalid(value: unknown, why?: string): DfError {
  const shown = typeof value === 'string' ? JSON.stringify(value) : String(value);
  return new DfError(
    'INVALID_ARGUMENT',
    `invalid duration ${shown}${why ? ` (${why})` : ''}: expected ${DURATION_FORM}`,
  );
}

const isDigit = (c: string) => c >= '0' && c <= '9';
const isSpace = (c: string) => /\s/u.test(c);
const isUnitChar = (c: string) => /[a-zA-Zµ]/u.test(c);

/** Parses a duration ("360s", "1h30m", "2 hours 5 min", "0") into milliseconds. */
export function parseDuration(value: string | number): number {
  if (typeof value === 'number') {
    if (value === 0) return 0;
    throw invalid(value, 'a time unit is needed');
  }
  if (typeof value !== 'string') throw invalid(value);
  if (/^0+$/.test(value)) return 0;

  const chars = Array.from(value);
  let i = 0;
  let totalNs = 0n;
  let spans = 0;
  while (true) {
    while (i < chars.length && isSpace(chars[i]!)) i++;
    if (i >= chars.length) break;
    if (!isDigit(chars[i]!)) throw invalid(value, 'expected a number');
    // humantime lets whitespace sit between digits of one number; we follow it.
    let digits = '';
    while (i < chars.length && (isDigit(chars[i]!) || isSpace(chars[i]!))) {
      if (isDigit(chars[i]!)) digits += chars[i];
      i++;
    }
    let unit = '';
    while (i < chars.length && isUnitChar(chars[i]!)) unit += chars[i++];
    if (i < chars.length && !isDigit(chars[i]!) && !isSpace(chars[i]!)) {
      throw invalid(value, `invalid character ${JSON.stringify(chars[i])}`);
    }
    if (unit === '') throw invalid(value, 'a time unit is needed');
    const factor = UNIT_NS[unit];
    if (factor === undefined) throw invalid(value, `unknown time unit ${JSON.stringify(unit)}`);
    totalNs += BigInt(digits) * factor;
    spans++;
  }
  if (spans === 0) throw invalid(value, 'empty');
  const ms = Number(totalNs / BigInt(NS_PER_MS)) + Number(totalNs % BigInt(NS_PER_MS)) / NS_PER_MS;
  if (!Number.isSafeInteger(Math.trunc(ms))) throw invalid(value, 'too large');
  return ms;
}

const SPANS: ReadonlyArray<readonly [string, number]> = [
  ['d', 86_400_000],
  ['h', 3_600_000],
  ['m', 60_000],
  ['s', 1_000],
  ['ms', 1],
];

/** Formats milliseconds for people in a form parseDuration accepts: 5400000 → "1h 30m", 0 → "0s". */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return `${ms}ms`;
  let rest = Math.round(ms);
  if (rest === 0) return ms > 0 ? `${Math.round(ms * 1000)}us` : '0s';
  const parts: string[] = [];
  for (const [unit, size] of SPANS) {
    const n = Math.floor(rest / size);
    if (n > 0) {
      parts.push(`${n}${unit}`);
      rest -= n * size;
    }
  }
  return parts.join(' ');
}
