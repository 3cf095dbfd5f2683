// TOML for dfinit: parse with source positions, write small values, and change a file by splicing text.
// Upstream edits containerd's config.toml with `toml_edit`, which keeps comments and layout. We do the same the
// other way round: `toml-eslint-parser` gives every table and key with its byte range, the writers splice only
// the lines they change, and `checkEdit` parses the result again and compares it with the value the change was
// meant to produce, so a layout we did not foresee ends in a clear error, never in a broken file.

import { getStaticTOMLValue, parseTOML, type AST } from 'toml-eslint-parser';
import { DfError } from '../core/errors.js';

export type TOMLKeyValue = AST.TOMLKeyValue;
export type TOMLTable = AST.TOMLTable;
type TOMLProgram = AST.TOMLProgram;
type TOMLTopLevelTable = AST.TOMLTopLevelTable;

export type TomlPath = Array<string | number>;

export interface TomlDoc {
  file: string;
  text: string;
  ast: TOMLProgram;
  /** The whole document as plain values. */
  value: Record<string, unknown>;
}

/** Parses TOML 1.0 (what containerd's and containers/image's parsers read); errors name file, line and column. */
export function parseToml(text: string, file: string): TomlDoc {
  let ast: TOMLProgram;
  try {
    ast = parseTOML(text, { tomlVersion: '1.0' });
  } catch (e) {
    const err = e as { message?: string; lineNumber?: number; column?: number };
    const where = err.lineNumber ? `${file}:${err.lineNumber}:${(err.column ?? 0) + 1}` : file;
    throw new DfError('INVALID_CONFIG', `${where}: invalid TOML: ${err.message ?? String(e)}`, { cause: e });
  }
  return { file, text, ast, value: getStaticTOMLValue(ast) as Record<string, unknown> };
}

export function topLevel(doc: TomlDoc): TOMLTopLevelTable {
  return doc.ast.body[0];
}

export function tables(doc: TomlDoc): TOMLTable[] {
  return topLevel(doc).body.filter((n): n is TOMLTable => n.type === 'TOMLTable');
}

/** Key-values directly in the root table (before the first header). */
export function rootKeyValues(doc: TomlDoc): TOMLKeyValue[] {
  return topLevel(doc).body.filter((n): n is TOMLKeyValue => n.type === 'TOMLKeyValue');
}

export function keyNames(kv: TOMLKeyValue): string[] {
  return kv.key.keys.map((k) => (k.type === 'TOMLBare' ? k.name : k.value));
}

/** Every key-value in a table or the root, with its full path (table key + dotted key). Inline bodies not walked. */
export function keyValuesWithPaths(
  doc: TomlDoc,
): Array<{ kv: TOMLKeyValue; path: TomlPath; table?: TOMLTable }> {
  const out: Array<{ kv: TOMLKeyValue; path: TomlPath; table?: TOMLTable }> = [];
  for (const n of topLevel(doc).body) {
    if (n.type === 'TOMLKeyValue') out.push({ kv: n, path: keyNames(n) });
    else for (const kv of n.body) out.push({ kv, path: [...n.resolvedKey, ...keyNames(kv)], table: n });
  }
  return out;
}

export function startsWith(path: TomlPath, prefix: TomlPath): boolean {
  return prefix.length <= path.length && prefix.every((k, i) => path[i] === k);
}

export function samePath(a: TomlPath, b: TomlPath): boolean {
  return a.length === b.length && startsWith(a, b);
}

// --- writing values ----------------------------------------------------------------------------------------

/** A TOML basic string. */
export function tomlString(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '"') out += '\\"';
    else if (ch === '\\') out += '\\\\';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\t') out += '\\t';
    else if (ch === '\r') out += '\\r';
    else if (c < 0x20 || c === 0x7f) out += `\\u${c.toString(16).toUpperCase().padStart(4, '0')}`;
    else out += ch;
  }
  return out + '"';
}

/** A key: bare when it can be, else a basic string (as toml_edit writes them). */
export function tomlKey(k: string): string {
  return /^[A-Za-z0-9_-]+$/.test(k) ? k : tomlString(k);
}

export function tomlDottedKey(keys: readonly string[]): string {
  return keys.map(tomlKey).join('.');
}

export type TomlScalar = string | boolean | number;
export type TomlInline = TomlScalar | TomlInline[] | { [k: string]: TomlInline };

/** A value on one line: `["a", "b"]`, `{ a = 1 }`. */
export function tomlInline(v: TomlInline): string {
  if (typeof v === 'string') return tomlString(v);
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new Error(`cannot write ${v} as TOML`);
    return String(v);
  }
  if (Array.isArray(v)) return `[${v.map(tomlInline).join(', ')}]`;
  const entries = Object.entries(v);
  if (entries.length === 0) return '{}';
  return `{ ${entries.map(([k, x]) => `${tomlKey(k)} = ${tomlInline(x)}`).join(', ')} }`;
}

// --- splicing ----------------------------------------------------------------------------------------------

export interface Splice {
  start: number;
  end: number;
  text: string;
}

/** Applies non-overlapping splices (given in any order); insertions at one offset keep their given order. */
export function applySplices(text: string, splices: readonly Splice[]): string {
  // At one offset an insertion goes before a removal that starts there, so both can apply.
  const sorted = splices
    .map((s, i) => ({ ...s, i }))
    .sort((a, b) => a.start - b.start || Number(a.end > a.start) - Number(b.end > b.start) || a.i - b.i);
  let out = '';
  let at = 0;
  for (const s of sorted) {
    if (s.start < at) throw new Error(`overlapping edits at offset ${s.start}`);
    out += text.slice(at, s.start) + s.text;
    at = s.end;
  }
  return out + text.slice(at);
}

export function lineStart(text: string, offset: number): number {
  return text.lastIndexOf('\n', offset - 1) + 1;
}

/** The offset just past the newline ending the line that holds `offset` (or the end of the text). */
export function nextLineStart(text: string, offset: number): number {
  const nl = text.indexOf('\n', offset);
  return nl === -1 ? text.length : nl + 1;
}

/** The offset of the end of the line holding `offset` (before its newline). */
export function lineEnd(text: string, offset: number): number {
  const nl = text.indexOf('\n', offset);
  if (nl === -1) return text.length;
  return nl > 0 && text[nl - 1] === '\r' ? nl - 1 : nl;
}

/** The leading whitespace of the line holding `offset`. */
export function indentAt(text: string, offset: number): string {
  const start = lineStart(text, offset);
  return /^[ \t]*/.exec(text.slice(start))![0];
}

/** The newline the file uses (CRLF if its first line ends so). */
export function newlineOf(text: string): string {
  const nl = text.indexOf('\n');
  return nl > 0 && text[nl - 1] === '\r' ? '\r\n' : '\n';
}

/** Removes the whole lines spanning [start, end), from the start of the first to past the newline of the last. */
export function removeLines(text: string, start: number, end: number): Splice {
  return { start: lineStart(text, start), end: nextLineStart(text, Math.max(start, end - 1)), text: '' };
}

/** Inserts `lines` (each without newline) as new lines right after the line holding `offset`. */
export function insertLinesAfter(text: string, offset: number, lines: readonly string[]): Splice {
  const nl = newlineOf(text);
  const at = nextLineStart(text, offset);
  const needsBreak = at === text.length && text.length > 0 && !text.endsWith('\n');
  return { start: at, end: at, text: (needsBreak ? nl : '') + lines.map((l) => l + nl).join('') };
}

/** Appends `lines` at the end, separated from the existing content by one blank line. */
export function appendBlock(text: string, lines: readonly string[]): Splice {
  const nl = newlineOf(text);
  const trimmed = text.replace(/(\r?\n)*$/, '');
  const sep = trimmed === '' ? '' : nl + nl;
  return { start: trimmed.length, end: text.length, text: sep + lines.map((l) => l + nl).join('') };
}

// --- checking ----------------------------------------------------------------------------------------------

/** Deep equality of parsed TOML values (plain objects, arrays, scalars, dates); prototypes ignored. */
export function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a instanceof Date && b instanceof Date) return a.getTime() === b.getTime();
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    return a.length === bb.length && a.every((x, i) => sameValue(x, bb[i]));
  }
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return (
    ka.length === kb.length &&
    ka.every(
      (k) =>
        Object.prototype.hasOwnProperty.call(b, k) &&
        sameValue((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]),
    )
  );
}

/** A deep copy of a parsed value as plain objects and arrays. */
export function cloneValue<T>(v: T): T {
  if (v instanceof Date) return new Date(v.getTime()) as T;
  if (Array.isArray(v)) return v.map(cloneValue) as T;
  if (typeof v === 'object' && v !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = cloneValue(x);
    return out as T;
  }
  return v;
}

export function getIn(root: unknown, path: TomlPath): unknown {
  let cur = root;
  for (const k of path) {
    if (typeof cur !== 'object' || cur === null) return undefined;
    cur = (cur as Record<string | number, unknown>)[k];
  }
  return cur;
}

/** Sets a value, creating tables on the way. */
export function setIn(root: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let cur = root;
  for (const k of path.slice(0, -1)) {
    const next = cur[k];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) cur[k] = {};
    cur = cur[k] as Record<string, unknown>;
  }
  cur[path.at(-1)!] = value;
}

/**
 * Parses `after` and checks it holds exactly `expected`; throws a DfError naming the file and `what` otherwise.
 * This is the guard that keeps an edit from writing a file the runtime would read differently than intended.
 */
export function checkEdit(file: string, after: string, expected: unknown, what: string): void {
  let got: unknown;
  try {
    got = parseToml(after, file).value;
  } catch {
    got = undefined;
  }
  if (got === undefined || !sameValue(got, expected)) {
    throw new DfError(
      'INVALID_CONFIG',
      `${file}: cannot ${what} without rewriting the file (its layout is unusual); make the change by hand ` +
        'or simplify the file, then run dfinit again',
    );
  }
}
