// containerd: pull through dfdaemon's proxy by way of registry host files (containerd docs/hosts.md).
// As upstream (`dragonfly-client-init/src/container_runtime/containerd.rs`):
//   - the CRI registry plugin must have `config_path` (the hosts directory); when config.toml has none, it gets
//     "/etc/containerd/certs.d", under `plugins."io.containerd.grpc.v1.cri".registry` (config version 2) or
//     `plugins."io.containerd.cri.v1.images".registry` (version 3); a list "a:b" uses its first directory;
//   - each `registries[]` entry becomes `<config_path>/<hostNamespace>/hosts.toml`: `server` = serverAddr and the
//     proxy as the one mirror host, with the `X-Dragonfly-Registry` header naming the real registry;
//   - `proxyAllRegistries` adds `<config_path>/_default/hosts.toml`, the proxy with no header (dfdaemon reads the
//     registry from the `ns=` query parameter containerd appends for `_default` hosts).
// Where we differ: config.toml keeps its comments and layout, and its other registry settings (upstream
// replaces the whole `registry` table); only `mirrors` and `configs.*.tls`, which containerd refuses next to
// `config_path`, are removed. A file without `version` is read by containerd as version 1: we use the short
// plugin id `cri` when the file is written that way, else add `version = 2` so containerd reads what we write.

import path from 'node:path';
import type { ContainerdRegistry } from '../config/dfinit.js';
import { DfError } from '../core/errors.js';
import {
  appendBlock,
  applySplices,
  checkEdit,
  cloneValue,
  getIn,
  indentAt,
  insertLinesAfter,
  keyNames,
  keyValuesWithPaths,
  lineStart,
  newlineOf,
  parseToml,
  removeLines,
  samePath,
  setIn,
  startsWith,
  tables,
  tomlDottedKey,
  tomlInline,
  tomlKey,
  tomlString,
  topLevel,
  type Splice,
  type TomlDoc,
  type TomlPath,
} from './toml.js';

/** The hosts directory upstream sets when config.toml has none. */
export const DEFAULT_CERTS_DIR = '/etc/containerd/certs.d';

/** The header that tells dfdaemon's proxy which registry a mirrored request is for (upstream proxy/header.rs). */
export const DRAGONFLY_REGISTRY_HEADER = 'X-Dragonfly-Registry';

/** The CRI plugin that owns `registry.config_path`, by config version. */
export function registryPluginId(version: number): string {
  return version === 3 ? 'io.containerd.cri.v1.images' : version === 2 ? 'io.containerd.grpc.v1.cri' : 'cri';
}

export interface ContainerdConfigPlan {
  /** config.toml after the change; the input itself when nothing changes. */
  text: string;
  /** The hosts directory containerd reads (`config_path`, first entry). */
  certsDir: string;
  /** The config version the file is read as. */
  version: number;
  /** Lines for the person running dfinit: what changed beyond config_path, and why. */
  notes: string[];
}

/** Short plugin names (`[plugins.cri]`, `disabled_plugins = ["cri"]`) only mean something in version 1. */
function looksLikeVersion1(value: Record<string, unknown>): boolean {
  const plugins = value.plugins;
  if (typeof plugins === 'object' && plugins !== null && Object.keys(plugins).some((k) => !k.includes('.')))
    return true;
  for (const key of ['disabled_plugins', 'required_plugins']) {
    const list = value[key];
    if (Array.isArray(list) && list.some((p) => typeof p === 'string' && !p.includes('.'))) return true;
  }
  return false;
}

function configVersion(doc: TomlDoc): { version: number; addVersion: boolean } {
  const v = doc.value.version;
  if (v === undefined) {
    return looksLikeVersion1(doc.value)
      ? { version: 1, addVersion: false }
      : { version: 2, addVersion: true };
  }
  if (v !== 1 && v !== 2 && v !== 3) {
    throw new DfError(
      'INVALID_CONFIG',
      `${doc.file}: version: expected 1, 2 or 3 (containerd config versions), got ${JSON.stringify(v)}`,
    );
  }
  return { version: v, addVersion: false };
}

/** `version = 2` as the first line of the root table (root keys must come before any table header). */
function insertVersion(doc: TomlDoc): Splice {
  const first = topLevel(doc).body[0];
  const nl = newlineOf(doc.text);
  // No key or table yet (empty, or comments only): first line of the file.
  if (!first) return { start: 0, end: 0, text: `version = 2${nl}${doc.text.trim() === '' ? nl : ''}` };
  const at = lineStart(doc.text, first.range[0]);
  const blank = first.type === 'TOMLTable' ? nl : '';
  return { start: at, end: at, text: `version = 2${nl}${blank}` };
}

/** Entries containerd refuses next to `config_path`: `registry.mirrors.<host>` and `registry.configs.<host>.tls`. */
function isConflict(p: TomlPath, registry: TomlPath): boolean {
  const n = registry.length;
  if (startsWith(p, [...registry, 'mirrors'])) return p.length >= n + 2;
  return startsWith(p, [...registry, 'configs']) && p.length >= n + 3 && p[n + 2] === 'tls';
}

function removeConflicts(
  doc: TomlDoc,
  registry: TomlPath,
  splices: Splice[],
  expected: Record<string, unknown>,
) {
  const notes: string[] = [];
  const mirrors = getIn(expected, [...registry, 'mirrors']);
  if (typeof mirrors === 'object' && mirrors !== null) {
    const hosts = Object.keys(mirrors);
    if (hosts.length > 0) {
      notes.push(
        `removed registry.mirrors (${hosts.join(', ')}): containerd refuses them next to config_path ` +
          '(write hosts.toml files instead)',
      );
      for (const h of hosts) delete (mirrors as Record<string, unknown>)[h];
    }
  }
  const configs = getIn(expected, [...registry, 'configs']);
  if (typeof configs === 'object' && configs !== null) {
    for (const [host, c] of Object.entries(configs as Record<string, unknown>)) {
      if (typeof c === 'object' && c !== null && 'tls' in c) {
        notes.push(
          `removed registry.configs."${host}".tls: containerd refuses it next to config_path ` +
            `(put ca/client/skip_verify in ${host}/hosts.toml instead)`,
        );
        delete (c as Record<string, unknown>).tls;
      }
    }
  }
  const removed = new Set<unknown>();
  for (const t of tables(doc)) {
    if (isConflict(t.resolvedKey, registry)) {
      splices.push(removeLines(doc.text, t.range[0], t.range[1]));
      removed.add(t);
    }
  }
  for (const { kv, path: p, table } of keyValuesWithPaths(doc)) {
    if (table && removed.has(table)) continue;
    if (isConflict(p, registry)) splices.push(removeLines(doc.text, kv.range[0], kv.range[1]));
    else if (
      samePath(p, [...registry, 'mirrors']) &&
      kv.value.type === 'TOMLInlineTable' &&
      kv.value.body.length
    )
      splices.push({ start: kv.value.range[0], end: kv.value.range[1], text: '{}' });
  }
  return notes;
}

/** The indentation for a new table under `parent`, and for its keys, following the file's own style. */
function newTableIndent(doc: TomlDoc, parentKey: TomlPath): { header: string; body: string } {
  const parent = tables(doc).find((t) => samePath(t.resolvedKey, parentKey));
  if (!parent) return { header: '', body: '  ' };
  const parentIndent = indentAt(doc.text, parent.range[0]);
  const header = parent.body[0]
    ? indentAt(doc.text, parent.body[0].range[0])
    : parentIndent === ''
      ? ''
      : parentIndent + '  ';
  return { header, body: header + '  ' };
}

/** Splices that set `<registry>.config_path` to `certsDir`, wherever and however the file defines the table. */
function setConfigPath(doc: TomlDoc, registry: string[], certsDir: string, splices: Splice[]): void {
  const value = tomlString(certsDir);
  const kvs = keyValuesWithPaths(doc);
  // 1. The key is there (empty): replace its value.
  const existing = kvs.find((e) => samePath(e.path, [...registry, 'config_path']));
  if (existing) {
    splices.push({ start: existing.kv.value.range[0], end: existing.kv.value.range[1], text: value });
    return;
  }
  // 2. A `[...registry]` header: first line of its body.
  const header = tables(doc).find((t) => t.kind === 'standard' && samePath(t.resolvedKey, registry));
  if (header) {
    const indent = header.body[0]
      ? indentAt(doc.text, header.body[0].range[0])
      : indentAt(doc.text, header.range[0]) + (indentAt(doc.text, header.range[0]) ? '  ' : '');
    splices.push(insertLinesAfter(doc.text, header.key.range[1], [`${indent}config_path = ${value}`]));
    return;
  }
  // 3. `registry = { ... }`: one more key in the inline table.
  const inline = kvs.find((e) => samePath(e.path, registry) && e.kv.value.type === 'TOMLInlineTable');
  if (inline && inline.kv.value.type === 'TOMLInlineTable') {
    const body = inline.kv.value.body;
    const own = body.find((kv) => kv.key.keys.length === 1 && keyNames(kv)[0] === 'config_path');
    if (own) {
      splices.push({ start: own.value.range[0], end: own.value.range[1], text: value });
      return;
    }
    if (body.length === 0)
      splices.push({
        start: inline.kv.value.range[0],
        end: inline.kv.value.range[1],
        text: `{ config_path = ${value} }`,
      });
    else
      splices.push({
        start: body.at(-1)!.range[1],
        end: body.at(-1)!.range[1],
        text: `, config_path = ${value}`,
      });
    return;
  }
  // 4. Dotted keys through the table (`registry.mirrors... = ...` under its parent): a sibling dotted key.
  const dotted = kvs.find(
    (e) =>
      startsWith(e.path, registry) &&
      e.path.length > registry.length &&
      (e.table?.resolvedKey.length ?? 0) < registry.length,
  );
  if (dotted) {
    const base = dotted.table ? dotted.table.resolvedKey.length : 0;
    const key = tomlDottedKey([...registry.slice(base), 'config_path']);
    const indent = indentAt(doc.text, dotted.kv.range[0]);
    splices.push(insertLinesAfter(doc.text, dotted.kv.range[1], [`${indent}${key} = ${value}`]));
    return;
  }
  // 5. A new `[...registry]` table, after the plugin's last table (or at the end).
  const pluginKey = registry.slice(0, 2);
  const { header: hIndent, body: bIndent } = newTableIndent(doc, pluginKey);
  const lines = [`${hIndent}[${registry.map(tomlKey).join('.')}]`, `${bIndent}config_path = ${value}`];
  const last = tables(doc)
    .filter((t) => startsWith(t.resolvedKey, pluginKey))
    .at(-1);
  if (last) splices.push(insertLinesAfter(doc.text, last.range[1], ['', ...lines]));
  else splices.push(appendBlock(doc.text, lines));
}

/**
 * What config.toml needs so that containerd reads registry host files: the text after the change (the same
 * text when nothing changes) and the hosts directory. Pure; throws DfError naming the file when it cannot.
 */
export function planContainerdConfig(
  text: string,
  file: string,
  defaultCertsDir = DEFAULT_CERTS_DIR,
): ContainerdConfigPlan {
  const doc = parseToml(text, file);
  const { version, addVersion } = configVersion(doc);
  const registry = ['plugins', registryPluginId(version), 'registry'];
  const splices: Splice[] = [];
  const notes: string[] = [];
  const expected = cloneValue(doc.value);
  if (addVersion) {
    splices.push(insertVersion(doc));
    expected.version = 2;
    notes.push('added version = 2: containerd reads a config.toml without version as version 1');
  }

  const current = getIn(doc.value, [...registry, 'config_path']);
  if (current !== undefined && typeof current !== 'string') {
    throw new DfError(
      'INVALID_CONFIG',
      `${file}: ${registry.join('.')}.config_path: expected a directory path, got ${JSON.stringify(current)}`,
    );
  }
  let certsDir: string;
  if (current) {
    // containerd takes a list of directories separated by ':'; upstream writes into the first.
    certsDir = current.split(':')[0] || current;
  } else {
    certsDir = defaultCertsDir;
    notes.push(...removeConflicts(doc, registry, splices, expected));
    setConfigPath(doc, registry, certsDir, splices);
    setIn(expected, [...registry, 'config_path'], certsDir);
  }
  if (splices.length === 0) return { text, certsDir, version, notes };
  const after = applySplices(text, splices);
  checkEdit(file, after, expected, `set ${registry.map(tomlKey).join('.')}.config_path`);
  return { text: after, certsDir, version, notes };
}

/**
 * `<hostNamespace>/hosts.toml` for one registry, byte for byte what upstream's toml_edit writes:
 * the registry as `server`, the proxy as the host to try first, and the header naming the registry.
 */
export function hostsToml(registry: ContainerdRegistry, proxyAddr: string): string {
  const host = `host.${tomlString(proxyAddr)}`;
  const lines = [`server = ${tomlString(registry.serverAddr)}`, '', `[${host}]`];
  lines.push(`capabilities = ${tomlInline(registry.capabilities)}`);
  if (registry.skipVerify !== undefined) lines.push(`skip_verify = ${tomlInline(registry.skipVerify)}`);
  if (registry.ca !== undefined) lines.push(`ca = ${tomlInline(registry.ca)}`);
  lines.push('', `[${host}.header]`, `${DRAGONFLY_REGISTRY_HEADER} = ${tomlString(registry.serverAddr)}`);
  return lines.join('\n') + '\n';
}

/** `_default/hosts.toml`: the proxy for every registry without its own file; no server, no header. */
export function defaultHostsToml(
  proxyAddr: string,
  capabilities: readonly string[] = ['pull', 'resolve'],
): string {
  return `[host.${tomlString(proxyAddr)}]\ncapabilities = ${tomlInline([...capabilities])}\n`;
}

/** Where the hosts.toml of `hostNamespace` lives. */
export function hostsTomlPath(certsDir: string, hostNamespace: string): string {
  return path.join(certsDir, hostNamespace, 'hosts.toml');
}
