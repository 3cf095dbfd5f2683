// CRI-O and podman: containers-registries.conf(5), the v2 format. Each configured registry gets a
// `[[registry]]` entry whose first `[[registry.mirror]]` is dfdaemon's proxy (`insecure = true`: the proxy speaks
// plain HTTP), and `unqualified-search-registries` is set, as upstream's `container_runtime/{crio,podman}.rs`.
// Upstream writes the whole file anew; we keep everything else in it (other registries, other mirrors after
// ours, comments, layout), and write upstream's exact text when there is no file yet.

import type { PrefixedRegistry } from '../config/dfinit.js';
import { DfError } from '../core/errors.js';
import {
  appendBlock,
  applySplices,
  checkEdit,
  cloneValue,
  indentAt,
  insertLinesAfter,
  keyNames,
  lineStart,
  newlineOf,
  parseToml,
  removeLines,
  rootKeyValues,
  samePath,
  sameValue,
  startsWith,
  tables,
  tomlInline,
  tomlString,
  type Splice,
  type TomlDoc,
} from './toml.js';

export interface RegistriesConfOptions {
  unqualifiedSearchRegistries: readonly string[];
  registries: readonly PrefixedRegistry[];
  /** `host:port` of the proxy. */
  proxyLocation: string;
}

type Entry = Record<string, unknown>;

function mirrorLines(proxyLocation: string, indent = ''): string[] {
  return [
    `${indent}[[registry.mirror]]`,
    `${indent}insecure = true`,
    `${indent}location = ${tomlString(proxyLocation)}`,
  ];
}

function registryLines(r: PrefixedRegistry, proxyLocation: string): string[] {
  return [
    '[[registry]]',
    `prefix = ${tomlString(r.prefix)}`,
    `location = ${tomlString(r.location)}`,
    '',
    ...mirrorLines(proxyLocation),
  ];
}

/** The file upstream writes: search list, then one `[[registry]]` with its mirror per registry. */
export function freshRegistriesConf(o: RegistriesConfOptions): string {
  const blocks = [[`unqualified-search-registries = ${tomlInline([...o.unqualifiedSearchRegistries])}`]];
  for (const r of o.registries) blocks.push(registryLines(r, o.proxyLocation));
  return blocks.map((b) => b.join('\n')).join('\n\n') + '\n';
}

/** containers/image: an entry's prefix defaults to its location. */
function entryPrefix(e: Entry): unknown {
  return typeof e.prefix === 'string' && e.prefix !== '' ? e.prefix : e.location;
}

const isOurs = (m: unknown, loc: string) =>
  typeof m === 'object' && m !== null && (m as Entry).location === loc && (m as Entry).insecure === true;

function setSearchList(doc: TomlDoc, list: readonly string[], splices: Splice[], expected: Entry): void {
  const key = 'unqualified-search-registries';
  if (sameValue(doc.value[key], [...list])) return;
  expected[key] = [...list];
  const text = tomlInline([...list]);
  const kv = rootKeyValues(doc).find((k) => samePath(keyNames(k), [key]));
  if (kv) {
    splices.push({ start: kv.value.range[0], end: kv.value.range[1], text });
    return;
  }
  const line = `${key} = ${text}`;
  const roots = rootKeyValues(doc);
  const firstTable = tables(doc)[0];
  const nl = newlineOf(doc.text);
  if (roots.length > 0) splices.push(insertLinesAfter(doc.text, roots.at(-1)!.range[1], [line]));
  else if (firstTable) {
    const at = lineStart(doc.text, firstTable.range[0]);
    splices.push({ start: at, end: at, text: line + nl + nl });
  } else splices.push(appendBlock(doc.text, [line]));
}

/** Makes entry `i` (matched by prefix) have our location, prefix and, first among its mirrors, the proxy. */
function updateEntry(
  doc: TomlDoc,
  i: number,
  r: PrefixedRegistry,
  proxyLoc: string,
  splices: Splice[],
  entry: Entry,
): void {
  const table = tables(doc).find((t) => t.kind === 'array' && samePath(t.resolvedKey, ['registry', i]));
  if (!table) throw new DfError('INVALID_CONFIG', `${doc.file}: [[registry]] entry ${i + 1} is not a table`);
  const indent = indentAt(doc.text, table.range[0]);
  const own = (name: string) => table.body.find((kv) => samePath(keyNames(kv), [name]));
  const setKey = (name: string, value: string) => {
    const kv = own(name);
    if (kv) splices.push({ start: kv.value.range[0], end: kv.value.range[1], text: tomlString(value) });
    else
      splices.push(
        insertLinesAfter(doc.text, table.key.range[1], [`${indent}${name} = ${tomlString(value)}`]),
      );
    entry[name] = value;
  };
  if (r.prefix !== '' && entry.prefix !== r.prefix) setKey('prefix', r.prefix);
  if (entry.location !== r.location) setKey('location', r.location);

  const mirrors = Array.isArray(entry.mirror) ? (entry.mirror as unknown[]) : [];
  if (isOurs(mirrors[0], proxyLoc)) return;
  const ours = { insecure: true, location: proxyLoc };
  const others = mirrors.filter((m) => (m as Entry)?.location !== proxyLoc);
  entry.mirror = [ours, ...others];

  const inline = own('mirror');
  if (inline) {
    if (inline.value.type !== 'TOMLArray')
      throw new DfError(
        'INVALID_CONFIG',
        `${doc.file}: registry ${JSON.stringify(r.location)}: mirror is not a list`,
      );
    const kept = inline.value.elements
      .filter((_el, j) => (mirrors[j] as Entry)?.location !== proxyLoc)
      .map((el) => doc.text.slice(el.range[0], el.range[1]));
    splices.push({
      start: inline.value.range[0],
      end: inline.value.range[1],
      text: `[${[tomlInline(ours), ...kept].join(', ')}]`,
    });
    return;
  }
  const mirrorTables = tables(doc).filter((t) => startsWith(t.resolvedKey, ['registry', i, 'mirror']));
  const remaining = [];
  for (const t of mirrorTables) {
    const j = t.resolvedKey[3] as number;
    if ((mirrors[j] as Entry)?.location === proxyLoc && t.resolvedKey.length === 4)
      splices.push(removeLines(doc.text, t.range[0], t.range[1]));
    else if (t.resolvedKey.length === 4) remaining.push(t);
  }
  const nl = newlineOf(doc.text);
  if (remaining[0]) {
    const at = lineStart(doc.text, remaining[0].range[0]);
    splices.push({ start: at, end: at, text: mirrorLines(proxyLoc, indent).join(nl) + nl + nl });
  } else {
    const last = tables(doc)
      .filter((t) => startsWith(t.resolvedKey, ['registry', i]))
      .at(-1)!;
    splices.push(insertLinesAfter(doc.text, last.range[1], ['', ...mirrorLines(proxyLoc, indent)]));
  }
}

/**
 * registries.conf after pointing `o.registries` at the proxy: `text` undefined (no file) gives upstream's
 * file; otherwise the same text with only the needed lines changed (the input itself when nothing changes).
 */
export function planRegistriesConf(text: string | undefined, file: string, o: RegistriesConfOptions): string {
  if (text === undefined || text.trim() === '') return freshRegistriesConf(o);
  const doc = parseToml(text, file);
  if (typeof doc.value.registries === 'object' && doc.value.registries !== null) {
    throw new DfError(
      'INVALID_CONFIG',
      `${file}: uses the old v1 format ([registries.search] ...), which cannot be mixed with [[registry]]; ` +
        'convert it to the v2 format (containers-registries.conf(5)) and run dfinit again',
    );
  }
  if (rootKeyValues(doc).some((kv) => keyNames(kv)[0] === 'registry')) {
    throw new DfError(
      'INVALID_CONFIG',
      `${file}: registry is written as an inline list; write it as [[registry]] tables and run dfinit again`,
    );
  }
  const existing = doc.value.registry;
  if (existing !== undefined && !Array.isArray(existing)) {
    throw new DfError('INVALID_CONFIG', `${file}: registry: expected [[registry]] tables`);
  }
  const expected = cloneValue(doc.value);
  const entries = (expected.registry as Entry[] | undefined) ?? [];
  const splices: Splice[] = [];
  setSearchList(doc, o.unqualifiedSearchRegistries, splices, expected);

  const appended: string[][] = [];
  const seen = new Set<string>();
  for (const r of o.registries) {
    const want = r.prefix || r.location;
    // Two configured entries for one prefix: the first wins, as containers/image refuses duplicates.
    if (seen.has(want)) continue;
    seen.add(want);
    const i = entries.findIndex((e) => entryPrefix(e) === want);
    if (i >= 0 && i < ((existing as unknown[] | undefined)?.length ?? 0)) {
      updateEntry(doc, i, r, o.proxyLocation, splices, entries[i]!);
    } else if (i < 0) {
      entries.push({
        prefix: r.prefix,
        location: r.location,
        mirror: [{ insecure: true, location: o.proxyLocation }],
      });
      appended.push(registryLines(r, o.proxyLocation));
    }
  }
  if (entries.length > 0) expected.registry = entries;
  if (appended.length > 0) {
    const lines = appended.flatMap((b, k) => (k === 0 ? b : ['', ...b]));
    splices.push(appendBlock(doc.text, lines));
  }
  if (splices.length === 0) return text;
  const after = applySplices(text, splices);
  checkEdit(file, after, expected, 'add the dfdaemon mirror');
  return after;
}
