#!/usr/bin/env node
// dfscheduler: the embedded scheduler as a program of its own, for a small cluster without a Dragonfly control
// plane. Reads scheduler.yaml (scheduler/embedded/config.ts). Stops gracefully on SIGINT/SIGTERM.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { SourceAddressPolicy } from '../backend/address-policy.js';
import { resolveDirs } from '../config/dirs.js';
import { loadTlsFiles } from '../config/tls-files.js';
import { AddressList } from '../core/addresses.js';
import { DfError } from '../core/errors.js';
import { openFileLimit } from '../daemon/connection-limits.js';
import { loadSchedulerConfig } from '../scheduler/embedded/config.js';
import { EmbeddedScheduler } from '../scheduler/embedded/scheduler-server.js';
import { SCHEDULER_STORE_FILE, SqliteSchedulerStore } from '../storage/scheduler-store.js';
import { describeError, stopOnSignals } from './common.js';
import { packageVersion } from './version.js';
import { createLogger, type Logger } from './logging.js';

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
  const storePath = schedulerStorePath(config.dataDir, log);
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
    store: new SqliteSchedulerStore(storePath),
    sourceGate: new SourceAddressPolicy({
      allow: new AddressList(config.allowedPrivateSources, 'security.allowedPrivateSources', {
        hostNames: true,
      }),
    }),
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

/**
 * `<server.dataDir>/scheduler/scheduler.db`, the directory made if missing. Without server.dataDir:
 * /var/lib/dragonfly, or ~/.dragonfly/storage when that cannot be written (said once in the log).
 */
function schedulerStorePath(dataDir: string | undefined, log: Logger): string {
  let base = dataDir;
  if (base === undefined) {
    const { dirs, note } = resolveDirs();
    if (note) log.info({}, note);
    base = dirs.storageDir;
  }
  const dir = join(base, 'scheduler');
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw new DfError('IO', `server.dataDir: cannot create ${dir}: ${(e as Error).message}`, { cause: e });
  }
  return join(dir, SCHEDULER_STORE_FILE);
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
