// Building blocks for the YAML schemas (dfdaemon.yaml, dynconfig.yaml) on top of zod.
// Every scalar field is `unknown → T` with one uniform error, "<key>: expected <form>, got <value>", so a user sees
// the key, the form upstream expects and what they wrote. A missing key or an explicit YAML null takes the default.
// Sections and lists are registered here so that `findUnknownKeys` can walk a raw YAML value against the schema
// and name every key the schema does not know (upstream's serde silently drops them).

import net from 'node:net';
import { z } from 'zod';
import { BYTE_SIZE_FORM, parseByteSize } from '../core/bytesize.js';
import { DURATION_FORM, parseDuration } from '../core/humantime.js';

type Ctx = { addIssue: (issue: { code: 'custom'; message: string; input?: unknown }) => void };

/** Renders a user's value for an error message. */
export function showValue(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (v === null || v === undefined) return String(v);
  if (typeof v === 'object') {
    const s = JSON.stringify(v);
    return s.length > 60 ? `${s.slice(0, 57)}...` : s;
  }
  return String(v);
}

/**
 * A scalar field: `convert` returns the parsed value or `undefined` when the value is not of the expected form.
 * `dflt` is used when the key is missing or null.
 */
export function field<T, D extends T | undefined>(
  expected: string,
  convert: (v: unknown) => T | undefined,
  dflt: D | (() => D),
) {
  return z
    .unknown()
    .optional()
    .transform((v, ctx): T | D => {
      if (v === undefined || v === null) return typeof dflt === 'function' ? (dflt as () => D)() : dflt;
      const out = convert(v);
      if (out === undefined) {
        (ctx as Ctx).addIssue({ code: 'custom', message: `expected ${expected}, got ${showValue(v)}` });
        return z.NEVER;
      }
      return out;
    });
}

function integer(min: number, max: number) {
  return (v: unknown) =>
    typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max ? v : undefined;
}

export const U8_MAX = 255;
export const U16_MAX = 65_535;
export const U32_MAX = 4_294_967_295;

export const bool = (dflt: boolean) =>
  field('true or false', (v) => (typeof v === 'boolean' ? v : undefined), dflt);

export const int = (dflt: number, min = 0, max = Number.MAX_SAFE_INTEGER, expected?: string) =>
  field(
    expected ?? (min === 0 ? `an integer up to ${max}` : `an integer from ${min} to ${max}`),
    integer(min, max),
    dflt,
  );

export const optionalInt = (min = 0, max = Number.MAX_SAFE_INTEGER) =>
  field<number, undefined>(`an integer from ${min} to ${max}`, integer(min, max), undefined);

export const port = (dflt: number) => int(dflt, 0, U16_MAX, 'a port number from 0 to 65535');

export const percent = (dflt: number, min: number, max: number) =>
  int(dflt, min, max, `an integer percent from ${min} to ${max}`);

export const str = (dflt: string) => field('a string', (v) => (typeof v === 'string' ? v : undefined), dflt);

export const optionalStr = (expected = 'a string') =>
  field<string, undefined>(expected, (v) => (typeof v === 'string' ? v : undefined), undefined);

export const optionalPath = () => optionalStr('a file path');

export const path = (dflt: string | (() => string)) =>
  field('a file path', (v) => (typeof v === 'string' && v.length > 0 ? v : undefined), dflt);

export const optionalIp = () =>
  field<string, undefined>(
    'an IP address like "0.0.0.0" or "::"',
    (v) => (typeof v === 'string' && net.isIP(v) !== 0 ? v : undefined),
    undefined,
  );

export function oneOf<const T extends string>(values: readonly T[], dflt: T) {
  return field(
    values.map((v) => JSON.stringify(v)).join(' or '),
    (v) => (typeof v === 'string' && (values as readonly string[]).includes(v) ? (v as T) : undefined),
    dflt,
  );
}

export function optionalOneOf<const T extends string>(values: readonly T[]) {
  return field<T, undefined>(
    values.map((v) => JSON.stringify(v)).join(' or '),
    (v) => (typeof v === 'string' && (values as readonly string[]).includes(v) ? (v as T) : undefined),
    undefined,
  );
}

function toBytes(v: unknown): number | undefined {
  if (typeof v !== 'string' && typeof v !== 'number') return undefined;
  try {
    return parseByteSize(v);
  } catch {
    return undefined;
  }
}

function toMillis(v: unknown): number | undefined {
  if (typeof v !== 'string' && typeof v !== 'number') return undefined;
  try {
    return parseDuration(v);
  } catch {
    return undefined;
  }
}

/** A `bytesize` value ("50GB", "512KiB", or an integer of bytes), parsed to bytes. */
export const size = (dfltBytes: number) => field(`a size like "50GB" or "512KiB"`, toBytes, dfltBytes);

/**
 * A byte count upstream declares as a plain integer (`usize`); we also accept a size string, which upstream
 * would reject, because "512KiB" is what people write.
 */
export const byteCount = (dfltBytes: number) =>
  field(`a number of bytes or a size like "512KiB"`, toBytes, dfltBytes);

/** A `humantime` value ("360s", "10m", "1h30m"), parsed to milliseconds. */
export const duration = (dfltMs: number) => field(`a duration like "360s"`, toMillis, dfltMs);

export { BYTE_SIZE_FORM, DURATION_FORM };

/**
 * Compiles a Rust `regex` pattern as a JavaScript RegExp. The two syntaxes agree on what config files use
 * (classes, anchors, groups, escapes); Rust's leading inline flags such as `(?i)` become RegExp flags, and the
 * Rust-only `\A`, `\z` and `(?P<name>` are translated. Throws on an invalid pattern.
 */
export function compileRustRegex(source: string): RegExp {
  const m = /^\(\?([imsx]+)\)/.exec(source);
  let flags = 'u';
  let body = source;
  if (m) {
    body = source.slice(m[0].length);
    for (const f of m[1]!) {
      if (f === 'i' || f === 'm' || f === 's') flags += f;
      else throw new SyntaxError(`unsupported inline flag ${f}`);
    }
  }
  body = translateRustOnly(body);
  try {
    return new RegExp(body, flags);
  } catch {
    // Some Rust patterns are not valid under the stricter 'u' flag (e.g. needless escapes); retry without it.
    return new RegExp(body, flags.replace('u', ''));
  }
}

/**
 * `\A` (start of text), `\z` (end of text) and `(?P<name>...)`. Without this, the retry without 'u' read `\A` and
 * `\z` as the letters A and z: an anchored rule or block-list URL silently never matched.
 */
function translateRustOnly(body: string): string {
  let out = '';
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (c === '\\' && i + 1 < body.length) {
      const n = body[++i]!;
      // Lookarounds, not ^ and $: those follow lines under (?m), \A and \z never do.
      out += n === 'A' ? '(?<![\\s\\S])' : n === 'z' ? '(?![\\s\\S])' : c + n;
    } else if (body.startsWith('(?P<', i)) {
      out += '(?<';
      i += 3;
    } else {
      out += c;
    }
  }
  return out;
}

export const regex = (dflt: string) =>
  field(
    'a regular expression',
    (v) => {
      if (typeof v !== 'string') return undefined;
      try {
        compileRustRegex(v);
        return v;
      } catch {
        return undefined;
      }
    },
    dflt,
  );

export function regexList() {
  return field<string[], string[]>(
    'a list of regular expressions',
    (v) => {
      if (!Array.isArray(v)) return undefined;
      for (const s of v) {
        if (typeof s !== 'string') return undefined;
        try {
          compileRustRegex(s);
        } catch {
          return undefined;
        }
      }
      return v as string[];
    },
    () => [],
  );
}

export function stringList<D extends string[] | undefined>(dflt: D | (() => D)) {
  return field<string[], D>(
    'a list of strings',
    (v) => (Array.isArray(v) && v.every((s) => typeof s === 'string') ? (v as string[]) : undefined),
    dflt,
  );
}

export function optionalIntList() {
  return field<number[], undefined>(
    'a list of integers',
    (v) => (Array.isArray(v) && v.every((n) => Number.isInteger(n)) ? (v as number[]) : undefined),
    undefined,
  );
}

const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * A map of HTTP header name → value. A list value (several values for one header, as `http-serde` allows)
 * is joined with ", ".
 */
export function headerMap<D extends Record<string, string> | undefined>(dflt: D | (() => D)) {
  return field<Record<string, string>, D>(
    'a mapping of HTTP header names to string values',
    (v) => {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
      const out: Record<string, string> = {};
      for (const [k, val] of Object.entries(v)) {
        if (!HEADER_NAME.test(k)) return undefined;
        if (typeof val === 'string') out[k] = val;
        else if (Array.isArray(val) && val.every((s) => typeof s === 'string')) out[k] = val.join(', ');
        else return undefined;
      }
      return out;
    },
    dflt,
  );
}

// --- sections, lists and the unknown-key walk ---------------------------------------------------------------

const SECTION_SHAPES = new WeakMap<z.ZodType, Record<string, z.ZodType>>();
const LIST_ELEMENTS = new WeakMap<z.ZodType, z.ZodType>();
/** Map-valued sections whose keys are free-form (no unknown-key check below them). */
const FREE_FORM = new WeakSet<z.ZodType>();

type RefineCtx = z.RefinementCtx;

/**
 * A YAML mapping with known keys. Missing or null → all defaults (`{}` parsed), as serde's `#[serde(default)]`.
 * `refine` adds cross-field checks (issues carry a path relative to the section).
 */
export function section<S extends Record<string, z.ZodType>>(
  shape: S,
  refine?: (value: z.output<z.ZodObject<S>>, ctx: RefineCtx) => void,
) {
  const base = z.object(shape);
  const obj = refine ? base.superRefine(refine) : base;
  const schema = z.preprocess((v) => (v === null ? undefined : v), obj.prefault({} as never));
  SECTION_SHAPES.set(schema, shape);
  return schema;
}

/** Like `section`, but an absent or null section stays `undefined` (upstream's `Option<Struct>`). */
export function optionalSection<S extends Record<string, z.ZodType>>(shape: S) {
  const schema = z.preprocess((v) => (v === null ? undefined : v), z.object(shape).optional());
  SECTION_SHAPES.set(schema, shape);
  return schema;
}

/** A YAML list of `element`; missing or null → `dflt`. */
export function list<E extends z.ZodType, D extends z.output<E>[] | undefined>(element: E, dflt: () => D) {
  const schema = z.preprocess(
    (v) => (v === null || v === undefined ? dflt() : v),
    z.array(element).optional(),
  );
  LIST_ELEMENTS.set(schema, element);
  return schema;
}

/** Makes `wrapper` (a schema built around `inner`) known to the unknown-key walk as `inner` is. */
export function shareShape<T extends z.ZodType>(wrapper: T, inner: z.ZodType): T {
  const shape = SECTION_SHAPES.get(inner);
  if (shape) SECTION_SHAPES.set(wrapper, shape);
  return wrapper;
}

export function markFreeForm<T extends z.ZodType>(schema: T): T {
  FREE_FORM.add(schema);
  return schema;
}

function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function joinKey(prefix: string, key: string | number): string {
  if (typeof key === 'number') return `${prefix}[${key}]`;
  return prefix === '' ? key : `${prefix}.${key}`;
}

/** The dotted keys (e.g. `download.foo`, `proxy.rules[0].bar`) in `value` that `schema` does not know. */
export function findUnknownKeys(schema: z.ZodType, value: unknown, prefix = ''): string[] {
  const out: string[] = [];
  const walk = (s: z.ZodType, v: unknown, at: string) => {
    if (FREE_FORM.has(s)) return;
    const shape = SECTION_SHAPES.get(s);
    if (shape && isMapping(v)) {
      for (const [k, child] of Object.entries(v)) {
        // Own keys only: `constructor`, `toString` or `__proto__` in a file are unknown keys, not Object's.
        const sub = Object.hasOwn(shape, k) ? shape[k] : undefined;
        if (sub === undefined) out.push(joinKey(at, k));
        else walk(sub, child, joinKey(at, k));
      }
      return;
    }
    const element = LIST_ELEMENTS.get(s);
    if (element && Array.isArray(v)) v.forEach((item, i) => walk(element, item, joinKey(at, i)));
  };
  walk(schema, value, prefix);
  return out;
}
