// The dfdaemon.yaml schema: every section and key of upstream's `dragonfly-client-config/src/dfdaemon.rs`
// (plus `BBRConfig` from `dragonfly-client-util/src/ratelimiter/bbr.rs`), with upstream's defaults.
// Keys are camelCase exactly as in the YAML. Units after parsing:
//   - sizes (`bytesize` strings such as "50GB", "512KiB") are numbers of BYTES  (type `Bytes`);
//   - durations (`humantime` strings such as "360s", "30d") are numbers of MILLISECONDS (type `Milliseconds`);
//   - rates named `requestRateLimit` are requests per second; bandwidth limits are bytes per second.
// Defaults that depend on the machine (directories, hostname) come from `dirs.ts` / the caller.

import os from 'node:os';
import { z } from 'zod';
import { AddressList } from '../core/addresses.js';
import {
  bool,
  byteCount,
  duration,
  field,
  headerMap,
  int,
  list,
  oneOf,
  optionalInt,
  optionalIp,
  optionalOneOf,
  optionalPath,
  optionalSection,
  optionalStr,
  path,
  percent,
  port,
  regex,
  section,
  size,
  str,
  stringList,
  markFreeForm,
  shareShape,
  U32_MAX,
} from './schema-kit.js';
import { tlsKeysRefine, type TlsFiles } from './tls-files.js';
import {
  defaultCacheDir,
  defaultPluginDir,
  defaultSocketPath,
  SYSTEM_DIRS,
  type DragonflyDirs,
} from './dirs.js';

/** A number of bytes. */
export type Bytes = number;
/** A number of milliseconds. */
export type Milliseconds = number;

const KIB = 1024;
const MIB = 1024 * KIB;
const GB = 1000 ** 3;
const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** Upstream's defaults, by dotted key, in our units. Tests compare these against the Rust source. */
export const DEFAULTS = {
  'server.adaptiveRateLimit.bucketCount': 50,
  'server.adaptiveRateLimit.bucketInterval': 200,
  'server.adaptiveRateLimit.cpuThreshold': 100,
  'server.adaptiveRateLimit.memoryThreshold': 90,
  'server.adaptiveRateLimit.shedCooldown': 5 * SECOND,
  'server.adaptiveRateLimit.collectInterval': 3 * SECOND,
  'download.server.requestRateLimit': 400,
  'download.server.requestBufferSize': 50,
  'download.protocol': 'tcp',
  'download.bandwidthLimit': 50 * GB,
  'download.backToSourceBandwidthLimit': 50 * GB,
  'download.pieceTimeout': 360 * SECOND,
  'download.collectedPieceTimeout': 360 * SECOND,
  'download.concurrentPieceCount': 8,
  'upload.server.port': 4000,
  'upload.server.requestRateLimit': 400,
  'upload.server.requestBufferSize': 50,
  'upload.disableShared': false,
  'upload.bandwidthLimit': 50 * GB,
  'scheduler.announceInterval': 300 * SECOND,
  'scheduler.scheduleTimeout': 3 * HOUR,
  'scheduler.maxScheduleCount': 5,
  'seedPeer.enable': false,
  'seedPeer.type': 'normal',
  'dynconfig.refreshInterval': 60 * SECOND,
  'storage.server.tcpPort': 4005,
  'storage.server.tcpFastopen': false,
  'storage.server.quicPort': 4006,
  // Upstream's default is false (wipe on start). We keep tasks across restarts by default: a restart, or a
  // crash, then costs only the missing pieces. `storage.keep: false` restores upstream's wipe.
  'storage.keep': true,
  'storage.writePieceTimeout': 360 * SECOND,
  'storage.writeBufferSize': 512 * KIB,
  'storage.readBufferSize': 512 * KIB,
  'storage.cacheCapacity': 64 * MIB,
  'backend.maxRetries': 1,
  'backend.enableCacheTemporaryRedirect': true,
  'backend.cacheTemporaryRedirectTTL': 10 * MINUTE,
  'backend.putConcurrentChunkCount': 16,
  'backend.putChunkSize': 8 * MIB,
  'backend.putTimeout': 15 * MINUTE,
  'backend.enableHickoryDNS': true,
  'gc.interval': 900 * SECOND,
  'gc.policy.taskTTL': 30 * DAY,
  'gc.policy.persistentTaskTTL': DAY,
  'gc.policy.persistentCacheTaskTTL': DAY,
  'gc.policy.pageCacheIdleTimeout': 40 * MINUTE,
  'gc.policy.diskThreshold': 0,
  'gc.policy.diskHighThresholdPercent': 80,
  'gc.policy.diskLowThresholdPercent': 60,
  'proxy.server.port': 4001,
  'proxy.server.requestRateLimit': 4000,
  'proxy.registryMirror.addr': 'https://index.docker.io',
  'proxy.registryMirror.enableTaskIDBasedBlobDigest': false,
  'proxy.disableBackToSource': false,
  'proxy.prefetch': false,
  'proxy.prefetchBandwidthLimit': 10 * GB,
  'proxy.readBufferSize': 512 * KIB,
  'security.enable': false,
  'network.enableIPv6': false,
  'health.server.port': 4003,
  'metrics.server.port': 4002,
  'stats.server.port': 4004,
  // The upstream scheduler's default port.
  'embeddedScheduler.port': 8002,
  // Ours (no upstream key): piece content on its way to transfer-mode clients, all calls together.
  'download.server.transferBufferSize': 2 * MIB,
  // Ours (no upstream keys): connections each TCP listener holds at once; lowered at start to fit the open-file
  // limit (daemon/connection-limits.ts).
  'storage.server.maxConnections': 2048,
  'storage.server.cutThrough': false,
  'upload.server.maxConnections': 1024,
  'proxy.server.maxConnections': 2048,
  'health.server.maxConnections': 64,
  'metrics.server.maxConnections': 64,
  'stats.server.maxConnections': 64,
  // Ours, likewise: connections on the download socket (each dfget holds one) and on the embedded scheduler (each
  // peer of the cluster holds one).
  'download.server.maxConnections': 1024,
  'embeddedScheduler.maxConnections': 4096,
  'tracing.path': '/v1/traces',
} as const;

// The default filtered query params are core's (asserted against upstream's vectors there).
export { DEFAULT_FILTERED_QUERY_PARAMS } from '../core/task-id.js';
import { DEFAULT_FILTERED_QUERY_PARAMS } from '../core/task-id.js';

// --- the parsed configuration ---------------------------------------------------------------------------------

export interface HostConfig {
  idc?: string;
  location?: string;
  /** Default: the OS hostname. */
  hostname: string;
  /** Advertised IP. After loading: the first non-internal IPv4 (IPv6 with network.enableIPv6), if any. */
  ip?: string;
  schedulerClusterID?: number;
}

/** BBR-style adaptive load shedding for both gRPC servers (`server.adaptiveRateLimit`). */
export interface AdaptiveRateLimitConfig {
  bucketCount: number;
  bucketInterval: Milliseconds;
  /** Percent 0-100; 100 ignores CPU. */
  cpuThreshold: number;
  /** Percent 0-100; 100 ignores memory. */
  memoryThreshold: number;
  shedCooldown: Milliseconds;
  collectInterval: Milliseconds;
}

export interface ServerConfig {
  /** Default `/usr/local/lib/dragonfly/plugins/dfdaemon`. */
  pluginDir: string;
  /** Default `/var/cache/dragonfly/dfdaemon`. */
  cacheDir: string;
  /** On by default; `adaptiveRateLimit: null` in the YAML turns it off (null here). */
  adaptiveRateLimit: AdaptiveRateLimitConfig | null;
}

export interface DownloadConfig {
  server: {
    /** Default `/var/run/dragonfly/dfdaemon.sock` (or `~/.dragonfly/dfdaemon.sock`). */
    socketPath: string;
    /** Requests per second. */
    requestRateLimit: number;
    requestBufferSize: number;
    /**
     * Ours: bytes of piece content read for need_piece_content clients (`dfget --transfer-from-dfdaemon`) and not
     * yet written to their sockets, all calls together: the memory bound of transfer mode.
     */
    transferBufferSize: Bytes;
    /** Ours: connections on the socket held at once; more are closed at once (daemon/connection-limits.ts). */
    maxConnections: number;
  };
  protocol: 'tcp' | 'quic';
  /** Bytes per second. */
  bandwidthLimit: Bytes;
  /** Bytes per second. */
  backToSourceBandwidthLimit: Bytes;
  pieceTimeout: Milliseconds;
  collectedPieceTimeout: Milliseconds;
  concurrentPieceCount: number;
}

/** A section's TLS keys: PEM file paths (config/tls-files.ts says what each turns on). */
export type { TlsFiles } from './tls-files.js';

export interface UploadConfig {
  server: TlsFiles & {
    /** After loading: `0.0.0.0` (or `::` with network.enableIPv6) when not set. */
    ip?: string;
    port: number;
    requestRateLimit: number;
    requestBufferSize: number;
    /** Ours: connections held at once; more are refused (see daemon/connection-limits.ts). */
    maxConnections: number;
  };
  client: TlsFiles;
  disableShared: boolean;
  /** Bytes per second. */
  bandwidthLimit: Bytes;
}

export interface ManagerConfig extends TlsFiles {
  /** Without it, dynconfig comes from the local dynconfig file. */
  addr?: string;
}

export interface SchedulerConfig extends TlsFiles {
  announceInterval: Milliseconds;
  scheduleTimeout: Milliseconds;
  maxScheduleCount: number;
}

export interface SeedPeerConfig {
  enable: boolean;
  /**
   * "normal" when the seedPeer section is absent; "super" when the section is present without `type`
   * (upstream's field-level `#[serde(default)]` takes HostType's default, which is Super).
   */
  type: 'normal' | 'super';
}

export interface DynconfigConfig {
  refreshInterval: Milliseconds;
}

export interface StorageConfig {
  /**
   * Ours (upstream's Vortex TCP server has no TLS): `cert` + `key` serve Vortex over TLS, `caCert` also requires
   * client certificates signed by it (mTLS), as upload.server does for gRPC.
   */
  server: TlsFiles & {
    ip?: string;
    tcpPort: number;
    tcpFastopen: boolean;
    quicPort: number;
    /** Ours: Vortex TCP connections held at once; more are answered with an Error packet and closed. */
    maxConnections: number;
    /**
     * Ours: piece requests that may wait for an upload slot; one more is answered busy at once (a Vortex Internal
     * error beginning "busy:"). Unset: no limit. Our children then ask another holder, but an upstream child takes
     * the answer as a failed piece (and may be sent to the origin): set it only where every peer is ours.
     */
    queueLimit?: number;
    /**
     * Ours: relay a piece from a parent to children while it still arrives (cut-through), announcing it in
     * SyncPieces as soon as its Vortex header came; the last byte goes only once the piece is stored and verified.
     * Off by default: in the swarm benchmark it helped at 10 Mbit/s and not at 100 Mbit/s (docs/benchmarks.md).
     */
    cutThrough: boolean;
  };
  /**
   * Ours: the Vortex client (pieces from parents). `caCert` fetches pieces over TLS, checking each parent's
   * certificate against it and the parent's IP; `cert` + `key` are presented to parents that require them.
   */
  client: TlsFiles;
  /** Default `/var/lib/dragonfly` (or `~/.dragonfly/storage`). */
  dir: string;
  /** Keep task metadata and content across restarts (false wipes them at start). */
  keep: boolean;
  writePieceTimeout: Milliseconds;
  writeBufferSize: Bytes;
  readBufferSize: Bytes;
  cacheCapacity: Bytes;
}

export interface BackendConfig {
  requestHeader?: Record<string, string>;
  maxRetries: number;
  enableCacheTemporaryRedirect: boolean;
  cacheTemporaryRedirectTTL: Milliseconds;
  putConcurrentChunkCount: number;
  putChunkSize: Bytes;
  putTimeout: Milliseconds;
  enableHickoryDNS: boolean;
}

export interface GcPolicyConfig {
  taskTTL: Milliseconds;
  persistentTaskTTL: Milliseconds;
  persistentCacheTaskTTL: Milliseconds;
  pageCacheIdleTimeout: Milliseconds;
  /** 0 = the whole filesystem is the base for the percentages. */
  diskThreshold: Bytes;
  diskHighThresholdPercent: number;
  diskLowThresholdPercent: number;
}

export interface GcConfig {
  interval: Milliseconds;
  policy: GcPolicyConfig;
}

export interface ProxyRule {
  /** A Rust-syntax regex over the request URL (check with `compileRustRegex`); default ".*". */
  regex: string;
  useTLS: boolean;
  redirect?: string;
  filteredQueryParams: string[];
  /**
   * How the rule's downloads use the scheduler (upstream 1.5.10): "auto" sends a download of one piece at most
   * straight to the source; "always" announces it to the scheduler anyway, so other peers can take it from us.
   */
  schedulingPolicy: SchedulingPolicyName;
}

export const SCHEDULING_POLICIES = ['auto', 'always'] as const;
export type SchedulingPolicyName = (typeof SCHEDULING_POLICIES)[number];

export interface ProxyConfig {
  server: {
    ip?: string;
    port: number;
    requestRateLimit: number;
    /** Ours: connections held at once; more are closed at once. */
    maxConnections: number;
    caCert?: string;
    caKey?: string;
    basicAuth?: { username: string; password: string };
  };
  rules?: ProxyRule[];
  registryMirror: {
    addr: string;
    cert?: string;
    enableTaskIDBasedBlobDigest: boolean;
  };
  disableBackToSource: boolean;
  prefetch: boolean;
  /** Bytes per second. */
  prefetchBandwidthLimit: Bytes;
  readBufferSize: Bytes;
}

/**
 * `security`: upstream's `enable` (read nowhere upstream; `true` is refused here, see SECURITY_ENABLE_REFUSED),
 * and ours: what remote callers may make this daemon do (docs/security.md).
 */
export interface SecurityConfig {
  enable: boolean;
  /**
   * IPs / CIDRs that may call DownloadTask (seed triggering, preheat) and DeleteTask on the upload port, besides
   * the schedulers this daemon uses (e.g. a scheduler reached through a Service address, whose calls come from
   * its pod's address).
   */
  trustedSchedulers: string[];
  /**
   * IPs, CIDRs and host names of loopback, link-local or private sources a remote caller (a scheduler's trigger,
   * a proxy client on another host) may make this daemon fetch from. `["0.0.0.0/0", "::/0"]` allows every address
   * (upstream's behaviour).
   */
  allowedPrivateSources: string[];
}

export interface ListenServer {
  ip?: string;
  port: number;
  /** Ours: connections held at once; more are closed at once. */
  maxConnections: number;
}

export interface TracingConfig {
  protocol?: 'http' | 'https' | 'grpc';
  endpoint?: string;
  /** Default "/v1/traces"; `path: null` in the YAML unsets it. */
  path?: string;
  headers: Record<string, string>;
}

export interface DfdaemonConfig {
  host: HostConfig;
  server: ServerConfig;
  download: DownloadConfig;
  upload: UploadConfig;
  manager: ManagerConfig;
  scheduler: SchedulerConfig;
  seedPeer: SeedPeerConfig;
  dynconfig: DynconfigConfig;
  storage: StorageConfig;
  backend: BackendConfig;
  gc: GcConfig;
  proxy: ProxyConfig;
  security: SecurityConfig;
  network: { enableIPv6: boolean };
  health: { server: ListenServer };
  metrics: { server: ListenServer };
  stats: { server: ListenServer };
  /**
   * Ours: the in-process scheduler (standalone mode). `cert` + `key` serve it over TLS (`caCert`: mTLS); it
   * triggers seed peers with upload.client's certificate; `maxConnections` caps its listener.
   */
  embeddedScheduler: TlsFiles & { enable?: boolean; ip?: string; port: number; maxConnections: number };
  tracing: TracingConfig;
}

// --- the schema ---------------------------------------------------------------------------------------------

/** Machine-dependent defaults. */
export interface SchemaDefaults {
  dirs: DragonflyDirs;
  hostname: string;
}

const D = DEFAULTS;

/**
 * Why `security.enable: true` is refused. Upstream declares the key (`Security { enable }`) and reads it nowhere:
 * `true` turns nothing on there, and a config that asks for security and silently gets none is worse than one
 * that does not start. `false` (the value in upstream's charts) is accepted.
 */
export const SECURITY_ENABLE_REFUSED =
  'true is refused: upstream dfdaemon reads this key nowhere, so it turns nothing on (there or here). Remove it, ' +
  'and use what does: upload.server.caCert/cert/key (mTLS on the upload port), storage.server.caCert/cert/key ' +
  '(TLS on Vortex), upload.client, storage.client, scheduler and manager caCert/cert/key (TLS to parents, ' +
  'schedulers and the manager), security.trustedSchedulers and security.allowedPrivateSources (docs/security.md)';

function tlsFiles() {
  return { caCert: optionalPath(), cert: optionalPath(), key: optionalPath() };
}

/** A list of IPs and CIDRs (and host names, with `hostNames`), checked as AddressList checks them. */
/** A list of IPs and CIDRs (and host names with `hostNames`), checked as core's AddressList reads it. */
export function addressList(hostNames: boolean) {
  return field<string[], string[]>(
    hostNames
      ? 'a list of IPs, CIDRs like "10.0.0.0/8" and host names'
      : 'a list of IPs and CIDRs like "10.0.0.0/8"',
    (v) => {
      if (!Array.isArray(v) || !v.every((e) => typeof e === 'string')) return undefined;
      try {
        new AddressList(v as string[], '', { hostNames });
        return v as string[];
      } catch {
        return undefined;
      }
    },
    () => [],
  );
}

function listenServer(defaultPort: number, defaultMaxConnections: number) {
  return section({
    server: section({
      ip: optionalIp(),
      port: port(defaultPort),
      maxConnections: int(defaultMaxConnections, 1, U32_MAX),
    }),
  });
}

function adaptiveRateLimitSection() {
  const shape = {
    bucketCount: int(D['server.adaptiveRateLimit.bucketCount'], 1, U32_MAX),
    bucketInterval: duration(D['server.adaptiveRateLimit.bucketInterval']),
    cpuThreshold: percent(D['server.adaptiveRateLimit.cpuThreshold'], 0, 100),
    memoryThreshold: percent(D['server.adaptiveRateLimit.memoryThreshold'], 0, 100),
    shedCooldown: duration(D['server.adaptiveRateLimit.shedCooldown']),
    collectInterval: duration(D['server.adaptiveRateLimit.collectInterval']),
  };
  const present = section(shape);
  // Upstream: `Option<BBRConfig>` defaulting to Some(default); an explicit null disables it.
  const schema = z
    .unknown()
    .optional()
    .transform((v, ctx) => {
      if (v === null) return null;
      const r = present.safeParse(v);
      if (!r.success) {
        for (const issue of r.error.issues) ctx.addIssue({ ...issue, path: issue.path } as never);
        return z.NEVER;
      }
      return r.data;
    });
  shareShape(schema, present);
  return { schema, present };
}

const SEED_PEER_TYPES = ['normal', 'super'] as const;

export function dfdaemonConfigSchema(defaults: SchemaDefaults) {
  const { dirs } = defaults;
  const arl = adaptiveRateLimitSection();

  const rule = section({
    regex: regex('.*'),
    useTLS: bool(false),
    redirect: optionalStr('a URL'),
    filteredQueryParams: stringList(() => [...DEFAULT_FILTERED_QUERY_PARAMS]),
    schedulingPolicy: oneOf(SCHEDULING_POLICIES, 'auto'),
  });

  const seedPeerShape = {
    enable: bool(D['seedPeer.enable']),
    type: oneOf(SEED_PEER_TYPES, 'super'),
  };
  const seedPeerPresent = section(seedPeerShape);
  const seedPeer = shareShape(
    z.preprocess((v) => (v === null || v === undefined ? { type: D['seedPeer.type'] } : v), seedPeerPresent),
    seedPeerPresent,
  );

  const schema = section({
    host: section({
      idc: optionalStr(),
      location: optionalStr(),
      hostname: str(defaults.hostname),
      ip: optionalIp(),
      schedulerClusterID: optionalInt(0),
    }),
    server: section({
      pluginDir: path(() => defaultPluginDir(dirs)),
      cacheDir: path(() => defaultCacheDir(dirs)),
      adaptiveRateLimit: arl.schema,
    }),
    download: section({
      server: section({
        socketPath: path(() => defaultSocketPath(dirs)),
        requestRateLimit: int(D['download.server.requestRateLimit']),
        requestBufferSize: int(D['download.server.requestBufferSize']),
        transferBufferSize: size(D['download.server.transferBufferSize']),
        maxConnections: int(D['download.server.maxConnections'], 1, U32_MAX),
      }),
      protocol: oneOf(['tcp', 'quic'] as const, D['download.protocol']),
      bandwidthLimit: size(D['download.bandwidthLimit']),
      backToSourceBandwidthLimit: size(D['download.backToSourceBandwidthLimit']),
      pieceTimeout: duration(D['download.pieceTimeout']),
      collectedPieceTimeout: duration(D['download.collectedPieceTimeout']),
      concurrentPieceCount: int(D['download.concurrentPieceCount'], 1, U32_MAX),
    }),
    upload: section({
      server: section(
        {
          ip: optionalIp(),
          port: port(D['upload.server.port']),
          ...tlsFiles(),
          requestRateLimit: int(D['upload.server.requestRateLimit']),
          requestBufferSize: int(D['upload.server.requestBufferSize']),
          maxConnections: int(D['upload.server.maxConnections'], 1, U32_MAX),
        },
        tlsKeysRefine('upload.server', 'server'),
      ),
      client: section(tlsFiles(), tlsKeysRefine('upload.client', 'client')),
      disableShared: bool(D['upload.disableShared']),
      bandwidthLimit: size(D['upload.bandwidthLimit']),
    }),
    manager: section(
      { addr: optionalStr('an address like "manager:65003"'), ...tlsFiles() },
      tlsKeysRefine('manager', 'client'),
    ),
    scheduler: section(
      {
        announceInterval: duration(D['scheduler.announceInterval']),
        scheduleTimeout: duration(D['scheduler.scheduleTimeout']),
        maxScheduleCount: int(D['scheduler.maxScheduleCount'], 1, U32_MAX),
        ...tlsFiles(),
      },
      tlsKeysRefine('scheduler', 'client'),
    ),
    seedPeer,
    dynconfig: section({ refreshInterval: duration(D['dynconfig.refreshInterval']) }),
    storage: section({
      server: section(
        {
          ip: optionalIp(),
          tcpPort: port(D['storage.server.tcpPort']),
          tcpFastopen: bool(D['storage.server.tcpFastopen']),
          quicPort: port(D['storage.server.quicPort']),
          maxConnections: int(D['storage.server.maxConnections'], 1, U32_MAX),
          queueLimit: optionalInt(0, U32_MAX),
          cutThrough: bool(D['storage.server.cutThrough']),
          ...tlsFiles(),
        },
        tlsKeysRefine('storage.server', 'server'),
      ),
      client: section(tlsFiles(), tlsKeysRefine('storage.client', 'client')),
      dir: path(() => dirs.storageDir),
      keep: bool(D['storage.keep']),
      writePieceTimeout: duration(D['storage.writePieceTimeout']),
      writeBufferSize: byteCount(D['storage.writeBufferSize']),
      readBufferSize: byteCount(D['storage.readBufferSize']),
      cacheCapacity: size(D['storage.cacheCapacity']),
    }),
    backend: section({
      requestHeader: markFreeForm(headerMap<undefined>(undefined)),
      maxRetries: int(D['backend.maxRetries'], 0, U32_MAX),
      enableCacheTemporaryRedirect: bool(D['backend.enableCacheTemporaryRedirect']),
      cacheTemporaryRedirectTTL: duration(D['backend.cacheTemporaryRedirectTTL']),
      putConcurrentChunkCount: int(D['backend.putConcurrentChunkCount'], 0, U32_MAX),
      putChunkSize: size(D['backend.putChunkSize']),
      putTimeout: duration(D['backend.putTimeout']),
      enableHickoryDNS: bool(D['backend.enableHickoryDNS']),
    }),
    gc: section({
      interval: duration(D['gc.interval']),
      policy: section(
        {
          taskTTL: duration(D['gc.policy.taskTTL']),
          persistentTaskTTL: duration(D['gc.policy.persistentTaskTTL']),
          persistentCacheTaskTTL: duration(D['gc.policy.persistentCacheTaskTTL']),
          pageCacheIdleTimeout: duration(D['gc.policy.pageCacheIdleTimeout']),
          diskThreshold: size(D['gc.policy.diskThreshold']),
          diskHighThresholdPercent: percent(D['gc.policy.diskHighThresholdPercent'], 1, 99),
          diskLowThresholdPercent: percent(D['gc.policy.diskLowThresholdPercent'], 1, 99),
        },
        (p, ctx) => {
          // Upstream declares 1..=99 for both but never checks that low < high; GC that stops above where it
          // starts would run on every tick, so we refuse it.
          if (p.diskLowThresholdPercent >= p.diskHighThresholdPercent) {
            ctx.addIssue({
              code: 'custom',
              path: ['diskLowThresholdPercent'],
              message:
                `expected a percent lower than gc.policy.diskHighThresholdPercent ` +
                `(${p.diskHighThresholdPercent}), got ${p.diskLowThresholdPercent}`,
            });
          }
        },
      ),
    }),
    proxy: section({
      server: section({
        ip: optionalIp(),
        port: port(D['proxy.server.port']),
        requestRateLimit: int(D['proxy.server.requestRateLimit']),
        maxConnections: int(D['proxy.server.maxConnections'], 1, U32_MAX),
        caCert: optionalPath(),
        caKey: optionalPath(),
        basicAuth: optionalSection({ username: str(''), password: str('') }),
      }),
      rules: list(rule, () => undefined),
      registryMirror: section({
        addr: str(D['proxy.registryMirror.addr']),
        cert: optionalPath(),
        enableTaskIDBasedBlobDigest: bool(D['proxy.registryMirror.enableTaskIDBasedBlobDigest']),
      }),
      disableBackToSource: bool(D['proxy.disableBackToSource']),
      prefetch: bool(D['proxy.prefetch']),
      prefetchBandwidthLimit: size(D['proxy.prefetchBandwidthLimit']),
      readBufferSize: byteCount(D['proxy.readBufferSize']),
    }),
    security: section(
      {
        enable: bool(D['security.enable']),
        trustedSchedulers: addressList(false),
        allowedPrivateSources: addressList(true),
      },
      (v, ctx) => {
        if (v.enable) ctx.addIssue({ code: 'custom', path: ['enable'], message: SECURITY_ENABLE_REFUSED });
      },
    ),
    network: section({ enableIPv6: bool(D['network.enableIPv6']) }),
    health: listenServer(D['health.server.port'], D['health.server.maxConnections']),
    metrics: listenServer(D['metrics.server.port'], D['metrics.server.maxConnections']),
    stats: listenServer(D['stats.server.port'], D['stats.server.maxConnections']),
    // Ours (no upstream key): the in-process scheduler of the standalone mode. `enable` unset = automatic: on
    // when neither manager.addr nor a dynconfig file names a scheduler.
    embeddedScheduler: section(
      {
        enable: z.boolean().optional(),
        ip: optionalIp(),
        port: port(D['embeddedScheduler.port']),
        maxConnections: int(D['embeddedScheduler.maxConnections'], 1, U32_MAX),
        ...tlsFiles(),
      },
      tlsKeysRefine('embeddedScheduler', 'server'),
    ),
    tracing: section({
      protocol: optionalOneOf(['http', 'https', 'grpc'] as const),
      endpoint: optionalStr('an endpoint like "localhost:4317"'),
      // Upstream: Option<PathBuf> defaulting to Some("/v1/traces"); an explicit null unsets it.
      path: z
        .unknown()
        .optional()
        .transform((v, ctx) => {
          if (v === undefined) return D['tracing.path'] as string;
          if (v === null) return undefined;
          if (typeof v === 'string') return v;
          ctx.addIssue({
            code: 'custom',
            message: `expected a URL path like "/v1/traces", got ${String(v)}`,
          });
          return z.NEVER;
        }),
      headers: markFreeForm(headerMap(() => ({}))),
    }),
  });
  return { schema, nested: { adaptiveRateLimit: arl.present, seedPeer: seedPeerPresent } };
}

export type DfdaemonConfigSchema = ReturnType<typeof dfdaemonConfigSchema>['schema'];

// The schema's output must be a DfdaemonConfig.
type _SchemaMatchesType = z.output<DfdaemonConfigSchema> extends DfdaemonConfig ? true : never;
const _schemaMatchesType: _SchemaMatchesType = true;
void _schemaMatchesType;

/** Machine defaults: system directories (no fallback probing) and the OS hostname. */
export function machineDefaults(dirs: DragonflyDirs = SYSTEM_DIRS): SchemaDefaults {
  return { dirs, hostname: os.hostname() };
}

/**
 * Upstream's `Config::default()`: every key at its default. Listen IPs and host.ip stay unset here; the loader
 * fills them as upstream's `convert()` does.
 */
export function defaultConfig(defaults: Partial<SchemaDefaults> = {}): DfdaemonConfig {
  const { schema } = dfdaemonConfigSchema({ ...machineDefaults(), ...defaults });
  return schema.parse({}) as DfdaemonConfig;
}
