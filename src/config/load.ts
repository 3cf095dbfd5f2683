// Loading dfdaemon.yaml: parse → renamed/removed keys → unknown keys → schema (defaults, validation) → convert.
// Upstream (`Config::load`) fails on a missing file and silently drops unknown or renamed keys; we use defaults
// when the file at the default path is missing, and warn about every key we do not use, naming it.

import fs from 'node:fs';
import os from 'node:os';
import { DfError } from '../core/errors.js';
import { dfdaemonConfigSchema, machineDefaults, type DfdaemonConfig } from './dfdaemon.js';
import {
  defaultDfdaemonConfigPath,
  defaultLogDir,
  homeDirs,
  resolveDirs,
  resolveHome,
  type DirsOptions,
  type DragonflyDirs,
} from './dirs.js';
import {
  applyKeyChanges,
  issuesToError,
  parseYamlText,
  warnUnknownKeys,
  type KeyRename,
  type RemovedKey,
} from './yaml-file.js';

/**
 * Keys upstream renamed (value honoured under the new key, with a warning). From the history of
 * `dragonfly-client-config/src/dfdaemon.rs`; the `dist*` ones are still serde aliases upstream.
 */
export const DFDAEMON_KEY_RENAMES: readonly KeyRename[] = [
  { from: 'download.rateLimit', to: 'download.bandwidthLimit' }, // 8537322a, Jan 2026
  { from: 'upload.rateLimit', to: 'upload.bandwidthLimit' }, // 8537322a
  { from: 'proxy.prefetchRateLimit', to: 'proxy.prefetchBandwidthLimit' }, // 8537322a
  { from: 'network.enableIpv6', to: 'network.enableIPv6' }, // eb476ad7
  { from: 'gc.policy.distThreshold', to: 'gc.policy.diskThreshold', alias: true }, // 2c4ad662
  { from: 'gc.policy.distHighThresholdPercent', to: 'gc.policy.diskHighThresholdPercent', alias: true },
  { from: 'gc.policy.distLowThresholdPercent', to: 'gc.policy.diskLowThresholdPercent', alias: true },
  { from: 'proxy.registryMirror.certs', to: 'proxy.registryMirror.cert' }, // feb38d7f
  { from: 'storage.server.protocol', to: 'download.protocol' }, // 160f5139
  // 00f80e29: a list of manager addresses became one address.
  { from: 'manager.addrs', to: 'manager.addr', convert: (v) => (Array.isArray(v) ? v[0] : v) },
];

/** Keys upstream removed; each is a warning with a hint. */
export const DFDAEMON_REMOVED_KEYS: readonly RemovedKey[] = [
  {
    key: 'scheduler.enableBackToSource',
    hint: 'back-to-source is on by default; set proxy.disableBackToSource or the per-request option to turn it off',
  },
  { key: 'scheduler.cooldownInterval', hint: 'automatic scheduler switching was removed upstream' },
  { key: 'scheduler.maxAttempts', hint: 'automatic scheduler switching was removed upstream' },
  { key: 'scheduler.refreshThreshold', hint: 'automatic scheduler switching was removed upstream' },
  { key: 'seedPeer.clusterID', hint: 'seed peers no longer announce themselves to the manager' },
  { key: 'seedPeer.keepaliveInterval', hint: 'seed peers no longer announce themselves to the manager' },
  {
    key: 'download.parentSelector',
    hint: 'parents are selected by piece availability without configuration',
  },
  { key: 'storage.cacheTasksCapacity', hint: 'the cache is bounded by storage.cacheCapacity (bytes)' },
  { key: 'proxy.cacheCapacity', hint: 'the proxy cache was removed; see storage.cacheCapacity' },
  {
    key: 'backend.cacheTemporaryRedirectMaxSize',
    hint: 'cached redirects expire after cacheTemporaryRedirectTTL',
  },
  { key: 'tracing.addr', hint: 'use tracing.protocol ("http", "https" or "grpc") and tracing.endpoint' },
  { key: 'tracing.flamegraph', hint: 'use the stats server (/debug/pprof) for profiles' },
];

export interface LoadOptions extends DirsOptions {
  /** Use these directories for defaults instead of resolving them (with fallback) from the system. */
  dirs?: DragonflyDirs;
  /** Default `host.hostname`; os.hostname() otherwise. */
  hostname?: string;
  /** Picks the advertised IP when `host.ip` is not set; the first non-internal address otherwise. */
  detectHostIp?: (ipv6: boolean) => string | undefined;
}

export interface LoadedDfdaemonConfig {
  config: DfdaemonConfig;
  /** One line per ignored, renamed or removed key. */
  warnings: string[];
  /** Informational lines for the log: directory fallback, defaults used because no file exists. */
  notes: string[];
  /** The file read, if any. */
  path?: string;
  /** The directories the defaults came from. */
  dirs: DragonflyDirs;
  /** dfdaemon's default log directory: `/var/log/dragonfly/dfdaemon` (or `~/.dragonfly/logs/dfdaemon`). */
  logDir: string;
}

/** The first non-internal address of the machine (IPv4 first, as upstream's `local_ip()`, unless `ipv6`). */
export function detectHostIp(ipv6: boolean): string | undefined {
  const all = Object.values(os.networkInterfaces())
    .flat()
    .filter((a): a is os.NetworkInterfaceInfo => a !== undefined && !a.internal);
  const v4 = all.find((a) => a.family === 'IPv4');
  const v6 = all.find((a) => a.family === 'IPv6' && !a.address.toLowerCase().startsWith('fe80'));
  return ipv6 ? v6?.address : (v4?.address ?? v6?.address);
}

/**
 * Upstream's `convert()`: the advertised IP and the listen IPs of the TCP servers (upload, storage, health,
 * metrics, stats, proxy) default to the unspecified address of the configured family.
 */
export function applyNetworkDefaults(
  config: DfdaemonConfig,
  detect: (ipv6: boolean) => string | undefined = detectHostIp,
): void {
  const ipv6 = config.network.enableIPv6;
  config.host.ip ??= detect(ipv6);
  const any = ipv6 ? '::' : '0.0.0.0';
  for (const server of [
    config.upload.server,
    config.storage.server,
    config.health.server,
    config.metrics.server,
    config.stats.server,
  ]) {
    server.ip ??= any;
  }
  // Ours: the proxy listens on loopback unless proxy.server.ip names another address (upstream: every address).
  // On 0.0.0.0 it would forward any method to any host for anyone who reaches the port (an open proxy); the
  // container runtimes dfinit configures use http://127.0.0.1:4001.
  config.proxy.server.ip ??= ipv6 ? '::1' : '127.0.0.1';
}

/** Notes on keys that are accepted but do nothing, named so that nobody relies on them unknowingly. */
export function inertKeyWarnings(config: DfdaemonConfig): string[] {
  const warnings: string[] = [];
  if (config.security.enable) {
    warnings.push(
      'security.enable: true does nothing (upstream reads this key nowhere either); for mTLS on the upload ' +
        'server set upload.server.caCert/cert/key, and see docs/security.md for what remote ' +
        'callers may do (security.trustedSchedulers, security.allowedPrivateSources)',
    );
  }
  return warnings;
}

/**
 * Parses dfdaemon.yaml text (`file` names it in messages). Throws DfError('INVALID_CONFIG') on malformed YAML or
 * an invalid value; returns the warnings for unknown, renamed and removed keys.
 */
export function parseDfdaemonConfig(
  text: string,
  file: string,
  opts: { dirs: DragonflyDirs; hostname?: string; detectHostIp?: (ipv6: boolean) => string | undefined },
): { config: DfdaemonConfig; warnings: string[] } {
  const src = parseYamlText(file, text);
  const warnings: string[] = [];
  const origins = applyKeyChanges(src, DFDAEMON_KEY_RENAMES, DFDAEMON_REMOVED_KEYS, warnings);
  const { schema } = dfdaemonConfigSchema({
    ...machineDefaults(opts.dirs),
    ...(opts.hostname ? { hostname: opts.hostname } : {}),
  });
  warnUnknownKeys(src, schema, warnings);
  const result = schema.safeParse(src.value);
  if (!result.success) throw issuesToError(src, result.error.issues, origins);
  const config = result.data as DfdaemonConfig;
  applyNetworkDefaults(config, opts.detectHostIp);
  warnings.push(...inertKeyWarnings(config));
  return { config, warnings };
}

function readIfExists(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new DfError('INVALID_CONFIG', `${file}: cannot read config file: ${(e as Error).message}`, {
      cause: e,
    });
  }
}

/**
 * Loads dfdaemon.yaml. With `path` undefined, reads `/etc/dragonfly/dfdaemon.yaml`, else
 * `~/.dragonfly/config/dfdaemon.yaml`, else uses defaults; an explicit `path` that does not exist is an error.
 */
export function loadDfdaemonConfig(path: string | undefined, opts: LoadOptions = {}): LoadedDfdaemonConfig {
  const notes: string[] = [];
  let dirs = opts.dirs;
  if (!dirs) {
    const resolved = resolveDirs(opts);
    dirs = resolved.dirs;
    if (resolved.note) notes.push(resolved.note);
  }
  const parseOpts = { dirs, hostname: opts.hostname, detectHostIp: opts.detectHostIp };
  const logDir = defaultLogDir(dirs);

  if (path !== undefined) {
    const text = readIfExists(path);
    if (text === undefined) throw new DfError('INVALID_CONFIG', `config file ${path} does not exist`);
    return { ...parseDfdaemonConfig(text, path, parseOpts), notes, path, dirs, logDir };
  }

  const candidates = [
    defaultDfdaemonConfigPath(dirs),
    defaultDfdaemonConfigPath(homeDirs(resolveHome(opts))),
  ];
  for (const candidate of [...new Set(candidates)]) {
    const text = readIfExists(candidate);
    if (text !== undefined)
      return { ...parseDfdaemonConfig(text, candidate, parseOpts), notes, path: candidate, dirs, logDir };
  }
  notes.push(`no config file at ${candidates.join(' or ')}; using defaults`);
  return { ...parseDfdaemonConfig('', candidates[0]!, parseOpts), notes, dirs, logDir };
}
