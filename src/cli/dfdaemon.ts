#!/usr/bin/env -S MALLOC_ARENA_MAX=2 node --max-semi-space-size=2
// dfdaemon: the long-running peer. Loads dfdaemon.yaml (warning on unknown or renamed keys, refusing invalid
// values), starts every server, and stops gracefully on SIGINT/SIGTERM.
//
// The shebang sets what must be set before the process starts (`npm start` and the tests' startDaemon repeat it):
// --max-semi-space-size=2 (MiB): V8's young generation otherwise grows to 3 x 16 MiB and stays committed. Measured:
// idle RSS 112 -> 97 MiB, peak while downloading 1 GiB ~160 -> ~148 MiB, CPU no worse. Not 1 MiB: serving pieces
// over Vortex then spent 4 s of 10 in GC (0.5 s with 2 MiB).
// MALLOC_ARENA_MAX=2: glibc gives each thread that allocates (libuv's pool, V8's GC and compiler threads) an arena
// of its own, and memory freed in one is not reused by the others; with two, the peak while downloading 1 GiB
// was 126-136 MiB against 142-152 (A/B, alternating, same run), CPU no worse. See docs/benchmarks.md.

import { Command, Option } from 'commander';
import { defaultDynconfigPath } from '../config/dirs.js';
import { loadDfdaemonConfig } from '../config/load.js';
import { parseByteSize } from '../core/bytesize.js';
import { Dfdaemon } from '../daemon/dfdaemon.js';
import { describeError, stopOnSignals } from './common.js';
import { packageVersion } from './version.js';
import { activeLogFile, createRotatingLogger, logFlushed } from './logging.js';

interface DfdaemonArgs {
  config?: string;
  dynconfig?: string;
  logLevel: string;
  logDir?: string;
  logMaxFiles: string;
  logMaxFileSize: string;
  console: boolean;
}

async function main(a: DfdaemonArgs): Promise<void> {
  const { config, warnings, notes, logDir, dirs } = loadDfdaemonConfig(a.config);
  const log = await createRotatingLogger(
    { name: 'dfdaemon', level: a.logLevel, console: a.console, logDir: a.logDir ?? logDir },
    { maxFiles: Number(a.logMaxFiles), maxFileSize: parseByteSize(a.logMaxFileSize) },
  );
  for (const w of warnings) {
    log.warn({}, w);
    process.stderr.write(`dfdaemon: warning: ${w}\n`);
  }
  for (const n of notes) log.info({}, n);
  const daemon = new Dfdaemon({
    config,
    log,
    version: packageVersion(),
    dynconfigPath: a.dynconfig ?? defaultDynconfigPath(dirs),
  });
  stopOnSignals(log, () => daemon.stop());
  try {
    await daemon.start();
  } catch (e) {
    log.error({ err: e }, 'dfdaemon failed to start');
    await daemon.stop().catch(() => undefined);
    throw e;
  }
  if (!a.console) {
    // The file itself (the rotating logger numbers it: dfdaemon.1.log), so that `tail -f` on what this line names works.
    const logFile = activeLogFile(a.logDir ?? logDir, 'dfdaemon');
    await logFlushed(log, logFile);
    process.stderr.write(
      `dfdaemon ${packageVersion()} running: socket ${config.download.server.socketPath}, storage ${config.storage.dir}, log ${logFile}\n`,
    );
  }
}

const program = new Command('dfdaemon')
  .description('The Dragonfly peer daemon: downloads, caches and shares pieces.')
  .addOption(new Option('-c, --config <path>', 'dfdaemon.yaml').env('DFDAEMON_CONFIG'))
  .option('--dynconfig <path>', 'local dynconfig file (scheduler addresses)')
  .option('-l, --log-level <level>', 'log level', 'info')
  .option('--log-dir <dir>', 'log directory')
  .option('--log-max-files <n>', 'rotated log files kept', '6')
  .option('--log-max-file-size <size>', 'size at which a log file rotates', '1GiB')
  .option('--console', 'log to the console instead of files', false)
  .version(`dfdaemon ${packageVersion()}`, '-V, --version')
  .action(async (a: DfdaemonArgs) => {
    try {
      await main(a);
    } catch (e) {
      process.stderr.write(`dfdaemon: ${describeError(e)}\n`);
      process.exit(1);
    }
  });

await program.parseAsync(process.argv);
