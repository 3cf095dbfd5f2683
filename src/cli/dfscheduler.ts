#!/usr/bin/env node
// dfscheduler: the embedded scheduler as a program of its own, for a small cluster without a Dragonfly control
// plane. Reads scheduler.yaml with upstream's keys (`server.listenIP`, `server.port`, `server.tls`, `seedPeer.tls`,
// `scheduler.*`); keys we do not use are warnings naming them, invalid values are errors naming key and form.
// Stops gracefully on SIGINT/SIGTERM.

import { existsSync, readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { z } from 'zod';
import { DfError } from '../core/errors.js';
import { parseDuration } from '../core/humantime.js';
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
} from '../config/schema-kit.js';
import { loadTlsFiles, tlsKeysRefine, type TlsFiles, type TlsRole } from '../config/tls-files.js';
import { openFileLimit } from '../daemon/connection-limits.js';
import { issuesToError, parseYamlText, warnUnknownKeys } from '../config/yaml-file.js';
import { DEFAULT_SCHEDULER_OPTIONS, type PartialSchedulerOptions } from '../scheduler/embedded/options.js';
import { EmbeddedScheduler } from '../scheduler/embedded/scheduler-server.js';
import { describeError, packageVersion, stopOnSignals } from './common.js';
import { createLogger } from './logging.js';

const DEFAULT_CONFIG_PATH = '/etc/dragonfly/scheduler.yaml';
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

function schedulerConfigSchema() {
  const d = DEFAULT_SCHEDULER_OPTIONS;
  return section({
    server: section({
      listenIP: optionalIp(),
      port: port(DEFAULT_PORT),
      // Upstream's scheduler serves TLS with server.tls; caCert here also requires client certificates (mTLS).
      tls: tlsSection('server.tls', 'server'),
      maxConnections: int(DEFAULT_MAX_CONNECTIONS, 1, U32_MAX),
    }),
    // Upstream's: how the scheduler reaches seed peers' upload ports (their mTLS asks for a client certificate).
    seedPeer: section({ tls: tlsSection('seedPeer.tls', 'client') }),
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

interface SchedulerConfig {
  listenIP: string;
  port: number;
  maxConnections: number;
  tls: TlsFiles;
  seedPeerTls: TlsFiles;
  options: PartialSchedulerOptions;
}

/** Parses scheduler.yaml text; throws DfError('INVALID_CONFIG') naming the key, returns warnings for unknown keys. */
function parseSchedulerConfig(text: string, file: string): { config: SchedulerConfig; warnings: string[] } {
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
      tls: c.server.tls,
      seedPeerTls: c.seedPeer.tls,
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

function loadSchedulerConfig(path: string | undefined): { config: SchedulerConfig; warnings: string[] } {
  const file = path ?? DEFAULT_CONFIG_PATH;
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

interface DfschedulerArgs {
  config?: string;
  logLevel: string;
  logDir?: string;
  console: boolean;
}

async function main(a: DfschedulerArgs): Promise<void> {
  const { config, warnings } = loadSchedulerConfig(a.config);
  const log = createLogger({ name: 'dfscheduler', level: a.logLevel, console: a.console, logDir: a.logDir });
  for (const w of warnings) {
    log.warn({}, w);
    process.stderr.write(`dfscheduler: warning: ${w}\n`);
  }
  const tls = await loadTlsFiles('server.tls', config.tls, 'server');
  const seedPeerTls = await loadTlsFiles('seedPeer.tls', config.seedPeerTls, 'client');
  // Nothing else of ours holds descriptors here: half the open-file limit for peers' connections.
  const fileLimit = openFileLimit();
  const maxConnections =
    fileLimit === undefined
      ? config.maxConnections
      : Math.min(config.maxConnections, Math.max(1, Math.floor(fileLimit / 2)));
  if (maxConnections < config.maxConnections) {
    log.warn(
      { configured: config.maxConnections, cap: maxConnections, openFileLimit: fileLimit },
      `server.maxConnections lowered to ${maxConnections} to fit the open-file limit ${fileLimit}`,
    );
  }
  let refusedLoggedAt = 0;
  const scheduler = new EmbeddedScheduler({
    ip: config.listenIP,
    port: config.port,
    log,
    options: config.options,
    tls,
    seedPeerTls,
    maxConnections,
    onRefused: () => {
      const now = Date.now();
      if (now - refusedLoggedAt < 1000) return;
      refusedLoggedAt = now;
      log.warn({ maxConnections }, 'connection refused: server.maxConnections reached');
    },
  });
  stopOnSignals(log, () => scheduler.stop());
  try {
    await scheduler.start();
  } catch (e) {
    log.error({ err: e }, 'dfscheduler failed to start');
    await scheduler.stop().catch(() => undefined);
    throw e;
  }
}

const program = new Command('dfscheduler')
  .description('The embedded Dragonfly scheduler: a scheduler.v2 server for a small cluster.')
  .addOption(new Option('-c, --config <path>', 'scheduler.yaml').env('DFSCHEDULER_CONFIG'))
  .option('-l, --log-level <level>', 'log level', 'info')
  .option('--log-dir <dir>', 'log directory (logs go to stderr without it)')
  .option('--console', 'log to the console instead of files', false)
  .version(`dfscheduler ${packageVersion()}`, '-V, --version')
  .action(async (a: DfschedulerArgs) => {
    try {
      await main(a);
    } catch (e) {
      process.stderr.write(`dfscheduler: ${describeError(e)}\n`);
      process.exit(1);
    }
  });

await program.parseAsync(process.argv);
