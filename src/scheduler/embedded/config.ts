// scheduler.yaml, the config of dfscheduler (the embedded scheduler as a program of its own), with upstream's keys
// (`server.listenIP`, `server.port`, `server.tls`, `seedPeer.tls`, `scheduler.*`): keys we do not use are warnings naming them, invalid values are
// one error naming key and form.

import { existsSync, readFileSync } from 'node:fs';
import { z } from 'zod';
import { DfError } from '../../core/errors.js';
import { parseDuration } from '../../core/humantime.js';
import {
  bool,
  field,
  int,
  optionalInt,
  optionalIp,
  optionalPath,
  port,
  section,
  oneOf,
  U32_MAX,
} from '../../config/schema-kit.js';
import { addressList } from '../../config/dfdaemon.js';
import { tlsKeysRefine, type TlsFiles, type TlsRole } from '../../config/tls-files.js';
import { issuesToError, parseYamlText, warnUnknownKeys } from '../../config/yaml-file.js';
import { DEFAULT_SCHEDULER_OPTIONS, type PartialSchedulerOptions } from './options.js';

export const DEFAULT_SCHEDULER_CONFIG_PATH = '/etc/dragonfly/scheduler.yaml';
const DEFAULT_PORT = 8002;
/** Ours: connections the scheduler holds at once (one per peer), lowered to half the open-file limit at start. */
const DEFAULT_MAX_CONNECTIONS = 10_000;

/** The Go scheduler's `tls: {caCert, cert, key}` sections (server.tls, seedPeer.tls), checked as dfdaemon's are. */
const tlsSection = (prefix: string, role: TlsRole) =>
  section({ caCert: optionalPath(), cert: optionalPath(), key: optionalPath() }, tlsKeysRefine(prefix, role));

/** A duration greater than zero (timers and TTLs), in ms. */
const positiveDuration = (dfltMs: number) =>
  field(
    'a duration greater than 0 like "500ms", "10s" or "1h"',
    (v) => {
      if (typeof v !== 'string' && typeof v !== 'number') return undefined;
      try {
        const ms = parseDuration(v);
        return ms > 0 ? ms : undefined;
      } catch {
        return undefined;
      }
    },
    dfltMs,
  );

export function schedulerConfigSchema() {
  const d = DEFAULT_SCHEDULER_OPTIONS;
  return section({
    server: section({
      listenIP: optionalIp(),
      port: port(DEFAULT_PORT),
      // Upstream's scheduler serves TLS with server.tls; caCert here also requires client certificates (mTLS).
      tls: tlsSection('server.tls', 'server'),
      maxConnections: int(DEFAULT_MAX_CONNECTIONS, 1, U32_MAX),
      // Upstream's key: where the scheduler keeps its state (here hosts and persistent cache tasks, which Go
      // keeps in Redis) across restarts. Default /var/lib/dragonfly, or ~/.dragonfly/storage without root.
      dataDir: optionalPath(),
    }),
    // Upstream's: how the scheduler reaches seed peers' upload ports (their mTLS asks for a client certificate).
    seedPeer: section({ tls: tlsSection('seedPeer.tls', 'client') }),
    // Ours, as dfdaemon's key: the non-public hosts preheat may make the scheduler fetch image manifests from.
    security: section({ allowedPrivateSources: addressList(true) }),
    scheduler: section({
      algorithm: oneOf(['default'], 'default'),
      backToSourceCount: int(d.backToSourceCount, 0, 1_000_000),
      retryBackToSourceLimit: int(d.retryBackToSourceLimit, 0, 1000),
      retryLimit: int(d.retryLimit, 0, 1000),
      retryInterval: positiveDuration(d.retryIntervalMs),
      // Ours (upstream takes the two limits from the manager): swarm: false restores upstream's parent
      // selection, and an unset candidateParentLimit follows it (8 with swarm, 3 without).
      swarm: bool(d.swarm),
      seedPeerChildLimit: int(d.seedPeerChildLimit, 0, 1_000_000),
      candidateParentLimit: optionalInt(1, 20),
      filterParentLimit: int(d.filterParentLimit, 1, 1000),
      // Ours: the most hosts kept (AnnounceHost of one more is RESOURCE_EXHAUSTED).
      maxHosts: int(d.maxHosts, 1, 10_000_000),
      gc: section({
        pieceDownloadTimeout: positiveDuration(d.gc.pieceDownloadTimeoutMs),
        peerGCInterval: positiveDuration(d.gc.peerGCIntervalMs),
        peerTTL: positiveDuration(d.gc.peerTTLMs),
        taskGCInterval: positiveDuration(d.gc.taskGCIntervalMs),
        hostGCInterval: positiveDuration(d.gc.hostGCIntervalMs),
        hostTTL: positiveDuration(d.gc.hostTTLMs),
      }),
    }),
  });
}

export interface SchedulerConfig {
  listenIP: string;
  port: number;
  maxConnections: number;
  /** server.dataDir; undefined: the default data directory. */
  dataDir?: string;
  tls: TlsFiles;
  seedPeerTls: TlsFiles;
  /** security.allowedPrivateSources */
  allowedPrivateSources: string[];
  options: PartialSchedulerOptions;
}

/** Parses scheduler.yaml text; throws DfError('INVALID_CONFIG') naming the key, returns warnings for unknown keys. */
export function parseSchedulerConfig(
  text: string,
  file: string,
): { config: SchedulerConfig; warnings: string[] } {
  const src = parseYamlText(file, text);
  const warnings: string[] = [];
  const schema = schedulerConfigSchema();
  warnUnknownKeys(src, schema, warnings);
  const result = schema.safeParse(src.value);
  if (!result.success) throw issuesToError(src, result.error.issues, new Map());
  const c = result.data as z.output<ReturnType<typeof schedulerConfigSchema>>;
  const s = c.scheduler;
  return {
    warnings,
    config: {
      listenIP: c.server.listenIP ?? '0.0.0.0',
      port: c.server.port,
      maxConnections: c.server.maxConnections,
      dataDir: c.server.dataDir,
      tls: c.server.tls,
      seedPeerTls: c.seedPeer.tls,
      allowedPrivateSources: c.security.allowedPrivateSources,
      options: {
        backToSourceCount: s.backToSourceCount,
        retryBackToSourceLimit: s.retryBackToSourceLimit,
        retryLimit: s.retryLimit,
        retryIntervalMs: s.retryInterval,
        swarm: s.swarm,
        seedPeerChildLimit: s.seedPeerChildLimit,
        candidateParentLimit: s.candidateParentLimit,
        filterParentLimit: s.filterParentLimit,
        maxHosts: s.maxHosts,
        gc: {
          pieceDownloadTimeoutMs: s.gc.pieceDownloadTimeout,
          peerGCIntervalMs: s.gc.peerGCInterval,
          peerTTLMs: s.gc.peerTTL,
          taskGCIntervalMs: s.gc.taskGCInterval,
          hostGCIntervalMs: s.gc.hostGCInterval,
          hostTTLMs: s.gc.hostTTL,
        },
      },
    },
  };
}

export function loadSchedulerConfig(path: string | undefined): {
  config: SchedulerConfig;
  warnings: string[];
} {
  const file = path ?? DEFAULT_SCHEDULER_CONFIG_PATH;
  if (!existsSync(file)) {
    if (path !== undefined) throw new DfError('INVALID_CONFIG', `config file ${path} does not exist`);
    return parseSchedulerConfig('', file);
  }
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new DfError('INVALID_CONFIG', `${file}: cannot read config file: ${(e as Error).message}`, {
      cause: e,
    });
  }
  return parseSchedulerConfig(text, file);
}
