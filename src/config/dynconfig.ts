// The local dynconfig file (`/etc/dragonfly/dynconfig.yaml`), used when `manager.addr` is not set: where the
// schedulers are and which downloads/uploads are blocked. Upstream: `dragonfly-client/src/dynconfig/local.rs`
// (file schema, generated with defaults when missing) and `dynconfig/mod.rs` (block-list structs).
// Same conventions as dfdaemon.yaml: unknown keys are warnings, invalid values are errors naming the key.

import fs from 'node:fs';
import net from 'node:net';
import { stringify } from 'yaml';
import { z } from 'zod';
import { DfError } from '../core/errors.js';
import {
  field,
  list,
  optionalIntList,
  optionalSection,
  regexList,
  section,
  stringList,
  str,
} from './schema-kit.js';
import {
  applyKeyChanges,
  issuesToError,
  parseYamlText,
  warnUnknownKeys,
  type KeyRename,
} from './yaml-file.js';

/** Upstream's default `scheduler.addr`, resolved by DNS (a Kubernetes headless service). */
export const DEFAULT_LOCAL_SCHEDULER_ADDR = 'dragonfly-scheduler:8002';

/** Rules for download requests; a request matching any listed value is refused (PermissionDenied / 403). */
export interface DownloadBlockList {
  applications?: string[];
  /** Rust-syntax regexes over the URL (see `compileRustRegex`). */
  urls: string[];
  tags?: string[];
  /** `common.v2.Priority` numbers. */
  priorities?: number[];
}

export interface UploadBlockList {
  applications?: string[];
  urls: string[];
  tags?: string[];
}

export interface BlockList {
  task?: { download?: DownloadBlockList };
  persistentTask?: { download?: DownloadBlockList; upload?: UploadBlockList };
  persistentCacheTask?: { download?: DownloadBlockList; upload?: UploadBlockList };
}

export interface LocalDynconfig {
  scheduler: {
    /** host:port resolved by DNS to every scheduler; default "dragonfly-scheduler:8002". */
    addr: string;
    /** Static "ip:port" list; when non-empty it takes precedence over `addr`. */
    addrs?: string[];
  };
  /** Block lists for a normal peer. */
  clientConfig?: { blockList?: BlockList };
  /** Block lists for a seed peer. */
  seedClientConfig?: { blockList?: BlockList };
}

/** Whether `addr` is an "ip:port" socket address as Rust's `SocketAddr` parses it ("1.2.3.4:8002", "[::1]:8002"). */
export function isSocketAddr(addr: string): boolean {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(addr);
  if (!m) return false;
  const host = m[1] ?? m[2]!;
  const family = net.isIP(host);
  if (m[1] !== undefined ? family !== 6 : family !== 4) return false;
  return Number(m[3]) <= 65_535;
}

function dynconfigSchema() {
  const download = () =>
    optionalSection({
      applications: stringList(undefined),
      urls: regexList(),
      tags: stringList(undefined),
      priorities: optionalIntList(),
    });
  const upload = () =>
    optionalSection({ applications: stringList(undefined), urls: regexList(), tags: stringList(undefined) });
  const blockList = () =>
    optionalSection({
      task: optionalSection({ download: download() }),
      persistentTask: optionalSection({ download: download(), upload: upload() }),
      persistentCacheTask: optionalSection({ download: download(), upload: upload() }),
    });
  const socketAddr = field<string, string>(
    'an "ip:port" address like "192.168.1.10:8002"',
    (v) => (typeof v === 'string' && isSocketAddr(v) ? v : undefined),
    '',
  );
  return section({
    scheduler: section({
      addr: str(DEFAULT_LOCAL_SCHEDULER_ADDR),
      addrs: list(socketAddr, () => undefined),
    }),
    clientConfig: optionalSection({ blockList: blockList() }),
    seedClientConfig: optionalSection({ blockList: blockList() }),
  });
}

// The block-list structs upstream have no `rename_all`, so their snake_case field names are the canonical ones
// there and the camelCase spellings are serde aliases. Both are fine; we take either, silently.
const SNAKE_CASE_ALIASES: readonly KeyRename[] = ['clientConfig', 'seedClientConfig'].flatMap((top) => [
  { from: `${top}.block_list`, to: `${top}.blockList`, alias: true },
]);

function normalizeBlockListKeys(value: unknown): void {
  if (typeof value !== 'object' || value === null) return;
  for (const top of ['clientConfig', 'seedClientConfig']) {
    const bl = (value as Record<string, Record<string, unknown> | undefined>)[top]?.blockList;
    if (typeof bl !== 'object' || bl === null) continue;
    const b = bl as Record<string, unknown>;
    for (const [snake, camel] of [
      ['persistent_task', 'persistentTask'],
      ['persistent_cache_task', 'persistentCacheTask'],
    ] as const) {
      if (snake in b && !(camel in b)) b[camel] = b[snake];
      delete b[snake];
    }
  }
}

/** Upstream's `Config::default()` for the local dynconfig. */
export function defaultLocalDynconfig(): LocalDynconfig {
  return { scheduler: { addr: DEFAULT_LOCAL_SCHEDULER_ADDR } };
}

/** The file upstream writes when the dynconfig file is missing (`Local::generate_default`). */
export function renderDefaultLocalDynconfig(): string {
  return stringify(defaultLocalDynconfig());
}

/** Parses dynconfig.yaml text. Throws DfError('INVALID_CONFIG') naming file/key; warns about unknown keys. */
export function parseLocalDynconfig(
  text: string,
  file: string,
): { config: LocalDynconfig; warnings: string[] } {
  const src = parseYamlText(file, text);
  const warnings: string[] = [];
  // Snake-case block-list keys are accepted silently (they are upstream's own field names).
  const ignored: string[] = [];
  const origins = applyKeyChanges(src, SNAKE_CASE_ALIASES, [], ignored);
  normalizeBlockListKeys(src.value);
  const schema = dynconfigSchema();
  warnUnknownKeys(src, schema, warnings);
  const result = schema.safeParse(src.value);
  if (!result.success) throw issuesToError(src, result.error.issues, origins);
  const config = result.data as LocalDynconfig;
  if (!(config.scheduler.addrs?.length ?? 0) && config.scheduler.addr === '') {
    throw new DfError(
      'INVALID_CONFIG',
      `scheduler.addr: expected an address like "${DEFAULT_LOCAL_SCHEDULER_ADDR}"`,
    );
  }
  return { config, warnings };
}

// The parsed value must be a LocalDynconfig.
type _Matches = z.output<ReturnType<typeof dynconfigSchema>> extends LocalDynconfig ? true : never;
const _matches: _Matches = true;
void _matches;

/** Loads the local dynconfig file; a missing file is an error (the caller generates the default first). */
export function loadLocalDynconfig(path: string): { config: LocalDynconfig; warnings: string[] } {
  let text: string;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'does not exist' : `cannot be read: ${(e as Error).message}`;
    throw new DfError('INVALID_CONFIG', `dynconfig file ${path} ${why}`, { cause: e });
  }
  return parseLocalDynconfig(text, path);
}

/** Writes the default dynconfig file when none exists; returns whether it wrote one. */
export function generateDefaultLocalDynconfig(path: string): boolean {
  try {
    fs.writeFileSync(path, renderDefaultLocalDynconfig(), { flag: 'wx' });
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new DfError('IO', `cannot write dynconfig file ${path}: ${(e as Error).message}`, { cause: e });
  }
}
