// Reading a YAML config file the way our conventions want it (DESIGN.md "Config"): malformed YAML names the file
// and line; renamed and removed keys are warnings that name old and new key (the value of a renamed key is used
// under its new name); unknown keys are warnings; invalid values are one error naming key, expected form and line.

import { Document, isMap, LineCounter, parseDocument } from 'yaml';
import type { z } from 'zod';
import { DfError, oneLine } from '../core/errors.js';
import { findUnknownKeys, joinKey, showValue } from './schema-kit.js';

export interface YamlSource {
  file: string;
  doc: Document;
  lines: LineCounter;
  /** The document as plain JS (null for an empty file). */
  value: unknown;
}

/** Parses YAML text; throws DfError('INVALID_CONFIG') naming file, line and column on a syntax error. */
export function parseYamlText(file: string, text: string): YamlSource {
  const lines = new LineCounter();
  // resolveKnownTags off: YAML 1.1's !!binary, !!set, !!omap, !!pairs and !!timestamp would give a Buffer, Set,
  // Map or Date, which the schema took for an empty section (`download: !!omap [...]` was silently dropped). Left
  // unresolved they stay plain scalars, mappings and lists, and are validated as such.
  const doc = parseDocument(text, {
    lineCounter: lines,
    prettyErrors: true,
    uniqueKeys: true,
    resolveKnownTags: false,
  });
  const err = doc.errors[0];
  if (err) {
    const pos = err.linePos?.[0];
    const where = pos ? `${file}:${pos.line}:${pos.col}` : file;
    const what = err.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
    throw new DfError('INVALID_CONFIG', `${where}: invalid YAML: ${what}`, { cause: err });
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    // An alias bomb (`b: [*a, *a, ...]` nested) throws a ReferenceError from the yaml package.
    throw new DfError('INVALID_CONFIG', `${file}: invalid YAML: ${(e as Error).message}`, { cause: e });
  }
  if (value !== null && value !== undefined && !isMap(doc.contents)) {
    throw new DfError('INVALID_CONFIG', `${file}: expected a mapping of keys at the top level`);
  }
  return { file, doc, lines, value: value ?? {} };
}

type Path = Array<string | number>;

function splitKey(key: string): string[] {
  return key.split('.');
}

/** The 1-based line of the value at `path` in the document, if it is there. */
export function lineOf(src: YamlSource, path: Path): number | undefined {
  const node: unknown = src.doc.getIn(path, true);
  if (node === undefined || node === null) return undefined;
  const range = (node as { range?: [number, number, number] }).range;
  if (!range) return undefined;
  return src.lines.linePos(range[0]).line;
}

export interface KeyRename {
  /** Old dotted key, e.g. `download.rateLimit`. */
  from: string;
  /** New dotted key, e.g. `download.bandwidthLimit`. */
  to: string;
  /** Upstream still accepts the old key (a serde alias) rather than having dropped it. */
  alias?: boolean;
  /** Turns the old value into the new one when the type changed. */
  convert?: (old: unknown) => unknown;
}

export interface RemovedKey {
  key: string;
  hint: string;
}

function getAt(root: unknown, keys: ReadonlyArray<string | number>): unknown {
  let cur = root;
  for (const k of keys) {
    if (typeof cur !== 'object' || cur === null) return undefined;
    if (Array.isArray(cur) !== (typeof k === 'number')) return undefined;
    cur = (cur as Record<string | number, unknown>)[k];
  }
  return cur;
}

function hasAt(root: unknown, keys: string[]): boolean {
  const parent = getAt(root, keys.slice(0, -1));
  return typeof parent === 'object' && parent !== null && !Array.isArray(parent) && keys.at(-1)! in parent;
}

function deleteAt(root: unknown, keys: string[]): void {
  const parent = getAt(root, keys.slice(0, -1)) as Record<string, unknown>;
  delete parent[keys.at(-1)!];
}

/** Sets a value, creating mappings on the way; returns false when something on the way is not a mapping. */
function setAt(root: Record<string, unknown>, keys: string[], value: unknown): boolean {
  let cur: Record<string, unknown> = root;
  for (const k of keys.slice(0, -1)) {
    const next = cur[k];
    if (next === undefined || next === null) cur[k] = {};
    else if (typeof next !== 'object' || Array.isArray(next)) return false;
    cur = cur[k] as Record<string, unknown>;
  }
  cur[keys.at(-1)!] = value;
  return true;
}

function at(src: YamlSource, keys: Path): string {
  const line = lineOf(src, keys);
  return line === undefined ? '' : ` (line ${line})`;
}

/**
 * Moves renamed keys to their new place and drops removed ones, in `value` (mutated), pushing one warning per key.
 * Returns where each moved value came from (new dotted key → old path), to point errors at the right line.
 */
export function applyKeyChanges(
  src: YamlSource,
  renames: readonly KeyRename[],
  removed: readonly RemovedKey[],
  warnings: string[],
): Map<string, Path> {
  const origins = new Map<string, Path>();
  const root = src.value as Record<string, unknown>;
  for (const r of renames) {
    const from = splitKey(r.from);
    if (!hasAt(root, from)) continue;
    const to = splitKey(r.to);
    const old = getAt(root, from);
    deleteAt(root, from);
    const spelled = r.alias ? 'is an old spelling of' : 'was renamed to';
    if (hasAt(root, to) && getAt(root, to) !== null) {
      warnings.push(`${r.from}${at(src, from)} ${spelled} ${r.to}; ignoring it because ${r.to} is also set`);
      continue;
    }
    const value = r.convert ? r.convert(old) : old;
    if (setAt(root, to, value)) {
      origins.set(r.to, from);
      warnings.push(
        `${r.from}${at(src, from)} ${spelled} ${r.to}; using its value for ${r.to} (please rename it)`,
      );
    }
  }
  for (const r of removed) {
    const keys = splitKey(r.key);
    if (!hasAt(root, keys)) continue;
    warnings.push(`${r.key}${at(src, keys)} is no longer supported and is ignored: ${r.hint}`);
    deleteAt(root, keys);
  }
  return origins;
}

/** Pushes one warning per key the schema does not know. */
export function warnUnknownKeys(src: YamlSource, schema: z.ZodType, warnings: string[]): void {
  for (const key of findUnknownKeys(schema, src.value)) {
    // A key holding a newline must not start a line of its own in the log or on stderr.
    const path: Path = [];
    for (const m of key.matchAll(/([^.[\]]+)|\[(\d+)\]/g))
      path.push(m[2] !== undefined ? Number(m[2]) : m[1]!);
    warnings.push(`unknown key ${oneLine(key)}${at(src, path)} is ignored`);
  }
}

function dotted(path: readonly PropertyKey[]): string {
  return path.reduce<string>((acc, k) => joinKey(acc, typeof k === 'number' ? k : String(k)), '');
}

function describeIssue(src: YamlSource, issue: z.core.$ZodIssue): string {
  if (issue.code === 'invalid_type') {
    const got = showValue(getAt(src.value, issue.path as Path));
    if (issue.expected === 'object') return `expected a mapping of keys, got ${got}`;
    if (issue.expected === 'array') return `expected a list, got ${got}`;
    return `expected ${issue.expected}, got ${got}`;
  }
  return issue.message;
}

/** One DfError('INVALID_CONFIG') for all issues, each naming its key, the expected form and the line. */
export function issuesToError(
  src: YamlSource,
  issues: readonly z.core.$ZodIssue[],
  origins: Map<string, Path>,
) {
  const parts = issues.map((issue) => {
    const key = dotted(issue.path);
    const origin = origins.get(key);
    const shownKey = origin ? `${key} (set as ${origin.join('.')})` : key;
    const line = lineOf(src, origin ?? (issue.path as Path));
    const where = line === undefined ? '' : ` (${src.file}:${line})`;
    return `${shownKey}: ${describeIssue(src, issue)}${where}`;
  });
  return new DfError('INVALID_CONFIG', parts.join('; '));
}
