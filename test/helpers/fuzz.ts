// What every fuzz test shares: how many inputs a run tries (FUZZ_RUNS), which seed it starts from (FUZZ_SEED), the
// byte-level mutations of valid inputs, hostile strings, and a bound on how long one input may take.
//
// CI runs each target with a fixed input count and a fixed seed, so a red run replays exactly. For a long local run:
//   FUZZ_RUNS=50 FUZZ_SEED=random npm test        (50 times the inputs, a new seed; the seed is printed on failure)
//   FUZZ_SEED=<seed> node --test dist/test/...     (replays a failure that printed this seed)
// docs/security.md "Fuzzing" lists the targets and their counts.

import fc from 'fast-check';

/** The seed of CI runs. */
const DEFAULT_SEED = 20_261_216;

function scaleFromEnv(): number {
  const raw = process.env.FUZZ_RUNS;
  if (raw === undefined || raw === '') return 1;
  const n = Number(raw);
  if (!(n > 0))
    throw new Error(`FUZZ_RUNS must be a number above 0 (a factor on each target's inputs), got ${raw}`);
  return n;
}

function seedFromEnv(): number {
  const raw = process.env.FUZZ_SEED;
  if (raw === undefined || raw === '') return DEFAULT_SEED;
  if (raw === 'random') return (Date.now() ^ (Math.random() * 0x7fff_ffff)) | 0;
  const n = Number(raw);
  if (!Number.isInteger(n)) throw new Error(`FUZZ_SEED must be an integer or "random", got ${raw}`);
  return n;
}

/** FUZZ_RUNS: the factor on every target's input count (1 in CI). */
export const FUZZ_SCALE = scaleFromEnv();
export const FUZZ_SEED = seedFromEnv();

/** The inputs a target tries: its CI count times FUZZ_RUNS. */
export function fuzzRuns(ciRuns: number): number {
  return Math.max(1, Math.round(ciRuns * FUZZ_SCALE));
}

/**
 * fast-check parameters for a target: its input count, the seed, and a per-input time bound (a hang is a failure
 * that names its input). Shrinking is kept: a failure is reported with the smallest input that still fails.
 */
export function fuzzParameters<T>(ciRuns: number, timeoutMs?: number): fc.Parameters<T> {
  return {
    numRuns: fuzzRuns(ciRuns),
    seed: FUZZ_SEED,
    ...(timeoutMs !== undefined ? { timeout: timeoutMs } : {}),
    maxSkipsPerRun: 100,
    // The failed assertion in the report itself (node:test prints no `cause`).
    includeErrorInReport: true,
  };
}

/** How long a test of `ciRuns` inputs at `perInputMs` each may take, scaled like the inputs (node:test timeout). */
export function fuzzTestTimeout(ciRuns: number, perInputMs: number): number {
  return 60_000 + fuzzRuns(ciRuns) * perInputMs;
}

// ---- bytes -----------------------------------------------------------------------------------------------------

/** Integers at the edges of the widths decoders read: where length and count checks fail. */
const EDGE_VALUES: readonly bigint[] = [
  0n,
  1n,
  0x7fn,
  0x80n,
  0xffn,
  0x7fffn,
  0x8000n,
  0xffffn,
  0x7fff_ffffn,
  0x8000_0000n,
  0xffff_ffffn,
  0x1_0000_0000n,
  0x1f_ffff_ffff_ffffn,
  0x20_0000_0000_0000n,
  0x7fff_ffff_ffff_ffffn,
  0x8000_0000_0000_0000n,
  0xffff_ffff_ffff_ffffn,
];

type Mutation =
  | { op: 'set'; at: number; value: number }
  | { op: 'truncate'; at: number }
  | { op: 'insert'; at: number; bytes: Uint8Array }
  | { op: 'delete'; at: number; length: number }
  | { op: 'repeat'; at: number; length: number; times: number }
  | { op: 'edge'; at: number; width: 1 | 2 | 4 | 8; value: bigint }
  | { op: 'splice'; other: number; at: number; from: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant('set' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ maxLength: 16 }) }),
  fc.record({ op: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 16 }) }),
  fc.record({
    op: fc.constant('repeat' as const),
    at: fc.nat(),
    length: fc.integer({ min: 1, max: 32 }),
    times: fc.integer({ min: 1, max: 8 }),
  }),
  fc.record({
    op: fc.constant('edge' as const),
    at: fc.nat(),
    width: fc.constantFrom<1 | 2 | 4 | 8>(1, 2, 4, 8),
    value: fc.constantFrom(...EDGE_VALUES),
  }),
  fc.record({ op: fc.constant('splice' as const), other: fc.nat(), at: fc.nat(), from: fc.nat() }),
);

function applyMutation(input: Buffer, m: Mutation, seeds: readonly Buffer[]): Buffer {
  const n = input.length;
  const at = n === 0 ? 0 : m.at % (n + 1);
  switch (m.op) {
    case 'set': {
      if (n === 0) return input;
      const out = Buffer.from(input);
      out[m.at % n] = m.value;
      return out;
    }
    case 'truncate':
      return input.subarray(0, at);
    case 'insert':
      return Buffer.concat([input.subarray(0, at), m.bytes, input.subarray(at)]);
    case 'delete':
      return Buffer.concat([input.subarray(0, at), input.subarray(at + m.length)]);
    case 'repeat': {
      const part = input.subarray(at, at + m.length);
      return Buffer.concat([
        input.subarray(0, at),
        ...Array<Buffer>(m.times + 1).fill(part),
        input.subarray(at + m.length),
      ]);
    }
    case 'edge': {
      if (n < m.width) return input;
      const out = Buffer.from(input);
      const pos = m.at % (n - m.width + 1);
      const mask = (1n << BigInt(m.width * 8)) - 1n;
      const v = m.value & mask;
      for (let i = 0; i < m.width; i++) out[pos + i] = Number((v >> BigInt(8 * (m.width - 1 - i))) & 0xffn);
      return out;
    }
    case 'splice': {
      const other = seeds[m.other % seeds.length]!;
      return Buffer.concat([input.subarray(0, at), other.subarray(m.from % (other.length + 1))]);
    }
  }
}

/** A valid input changed by one to four byte-level mutations (flips, cuts, inserts, repeats, edge integers, splices). */
export function mutatedBytes(seeds: readonly Buffer[]): fc.Arbitrary<Buffer> {
  if (seeds.length === 0) throw new Error('mutatedBytes needs at least one seed');
  return fc
    .tuple(fc.nat({ max: seeds.length - 1 }), fc.array(mutation, { minLength: 1, maxLength: 4 }))
    .map(([i, ms]) => ms.reduce((b, m) => applyMutation(b, m, seeds), seeds[i]!));
}

/** Random bytes, biased to short inputs (most decoders fail in the first few bytes). */
export function randomBytes(maxLength = 256): fc.Arbitrary<Buffer> {
  return fc
    .oneof(fc.uint8Array({ maxLength: 16 }), fc.uint8Array({ maxLength }))
    .map((a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength));
}

/** Random bytes one time in four, a mutated seed otherwise. */
export function fuzzBytes(seeds: readonly Buffer[], maxLength = 256): fc.Arbitrary<Buffer> {
  return fc.oneof(
    { arbitrary: randomBytes(maxLength), weight: 1 },
    { arbitrary: mutatedBytes(seeds), weight: 3 },
  );
}

// ---- strings ---------------------------------------------------------------------------------------------------

/** Strings that break parsers, loggers, paths and headers. */
export const HOSTILE_STRINGS: readonly string[] = [
  '',
  ' ',
  '\0',
  'a\0b',
  '\r\n',
  'a\r\nX-Injected: 1',
  '%00',
  '%2e%2e%2f',
  '../../../../etc/passwd',
  '..',
  '/',
  '\\',
  '\uFEFF',
  '\uD800',
  '\u202E',
  '😀'.repeat(40),
  '\u0000\u0001\u007f\u0080\u00ff',
  '${jndi:ldap://x}',
  '"\'`;|&$(id)',
  '__proto__',
  'constructor',
  'toString',
  'NaN',
  '-1',
  '18446744073709551616',
  '1e400',
  'a'.repeat(1024),
  'a'.repeat(70_000),
];

/** A hostile string or an arbitrary one. */
export function hostileString(maxLength = 64): fc.Arbitrary<string> {
  return fc.oneof(
    { arbitrary: fc.constantFrom(...HOSTILE_STRINGS), weight: 2 },
    { arbitrary: fc.string({ unit: 'binary', maxLength }), weight: 1 },
    { arbitrary: fc.string({ maxLength }), weight: 1 },
  );
}

// ---- reporting -----------------------------------------------------------------------------------------------

/** Counts outcomes by name, for a test's diagnostic line: how deep the inputs went. */
export class Tally {
  private readonly counts = new Map<string, number>();

  add(key: string): void {
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }

  count(key: string): number {
    return this.counts.get(key) ?? 0;
  }

  toString(): string {
    return [...this.counts.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([k, n]) => `${k} ${n}`)
      .join(', ');
  }
}

// ---- time bounds -----------------------------------------------------------------------------------------------

/** Resolves with `p`, or rejects naming `what` when it takes longer than `ms` (a hang). */
export async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Collects unhandled rejections and uncaught exceptions while `fn` runs, and fails naming the first. (node:test
 * also fails the test on them, but attributes them to whichever test runs at the time.)
 */
export async function withoutStrayErrors<T>(fn: () => Promise<T>): Promise<T> {
  const stray: unknown[] = [];
  const onError = (e: unknown) => void stray.push(e);
  process.on('unhandledRejection', onError);
  process.on('uncaughtException', onError);
  try {
    const result = await fn();
    // Let rejections of the last input surface.
    await new Promise((r) => setImmediate(r));
    if (stray.length > 0) {
      const first = stray[0];
      throw new Error(
        `${stray.length} unhandled error(s) while fuzzing; the first: ${first instanceof Error ? first.stack : String(first)}`,
      );
    }
    return result;
  } finally {
    process.off('unhandledRejection', onError);
    process.off('uncaughtException', onError);
  }
}
