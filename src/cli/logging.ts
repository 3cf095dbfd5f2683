// Logger construction for the binaries. dfdaemon logs to rotated files under its log dir (rotating-log-file.ts, on
// the main thread); the short-lived CLIs write one file synchronously-enough (sonic-boom) so start-up stays fast.
// `--console` sends everything to stderr instead, as upstream's `--console`.

import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import pino, { type DestinationStream, type Logger } from 'pino';
import { liveLogNumber, logFilePath, RotatingLogFile } from './rotating-log-file.js';

export type { Logger } from 'pino';

export interface LoggingOptions {
  name: string;
  level: string;
  console: boolean;
  logDir?: string;
}

/** Rotation of a long-running daemon's log files. */
export interface LogRotation {
  maxFiles: number;
  maxFileSize: number;
}

const LEVELS = new Set(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']);

export function checkLogLevel(level: string): string {
  const l = level.toLowerCase();
  if (!LEVELS.has(l))
    throw new Error(`invalid log level "${level}": expected trace, debug, info, warn or error`);
  return l;
}

export function createLogger(o: LoggingOptions): Logger {
  const destination =
    stderrUnlessLogDir(o) ??
    pino.destination({ dest: join(o.logDir!, `${o.name}.log`), sync: false, mkdir: true });
  return pino(logBase(o), destination);
}

/**
 * dfdaemon's logger: rotated files under `logDir` (rotating-log-file.ts), or the console as createLogger does.
 *
 * The files are written on the main thread rather than by a pino transport: a transport is a worker thread, a
 * second V8 isolate that held ~15 MiB of the daemon's idle RSS (measured: 110 against 95 MiB with --console) to
 * format nothing, since pino serialises lines on the calling thread anyway. Writes stay asynchronous (sonic-boom).
 */
export async function createRotatingLogger(o: LoggingOptions, rotate: LogRotation): Promise<Logger> {
  const stderr = stderrUnlessLogDir(o);
  if (stderr) return pino(logBase(o), stderr);
  const stream = new RotatingLogFile({
    dir: o.logDir!,
    name: o.name,
    number: liveLogNumber(o.logDir!, o.name),
    maxFileSize: Math.max(1, rotate.maxFileSize),
    maxFiles: rotate.maxFiles,
  });
  // sonic-boom opens the file asynchronously and cannot flush synchronously before that: wait for the file, so
  // that a line logged at start-up survives an exit right after.
  // A write error (disk full, the file removed) must not end the daemon: it is reported once on stderr.
  let reported = false;
  stream.on('error', (e: Error) => {
    if (!reported) process.stderr.write(`${o.name}: cannot write its log in ${o.logDir}: ${e.message}\n`);
    reported = true;
  });
  await new Promise((resolve) => {
    stream.once('ready', resolve);
    stream.once('error', resolve);
  });
  // What is still buffered reaches the file when the daemon exits (stopOnSignals ends with process.exit).
  process.once('exit', () => {
    try {
      stream.flushSync();
    } catch {
      // The file could not be opened: nothing was written to it, and nothing can be now.
    }
  });
  return pino(logBase(o), stream);
}

function logBase(o: LoggingOptions) {
  return { level: checkLogLevel(o.level), base: { bin: o.name, pid: process.pid } };
}

/** stderr with --console, without a log dir or when it cannot be made; undefined when logs go to the dir. */
function stderrUnlessLogDir(o: LoggingOptions): DestinationStream | undefined {
  const stderr = () => pino.destination({ dest: 2, sync: false });
  if (o.console || !o.logDir) return stderr();
  try {
    mkdirSync(o.logDir, { recursive: true });
  } catch {
    return stderr();
  }
  return undefined;
}

/** Longest wait for a log destination to be ready and flushed: logging must not hold up the daemon. */
const LOG_READY_TIMEOUT_MS = 5_000;

/**
 * Resolves once `file` (the log file `log` writes) exists and what was logged so far has been written, or after
 * 5 s: a start-up line that names the log file is printed after this, so that the file it names is there to read.
 * (sonic-boom opens its file asynchronously; on a busy machine later than the daemon's servers start.)
 */
export async function logFlushed(log: Logger, file: string): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  let timedOut = false;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      timedOut = true;
      resolve();
    }, LOG_READY_TIMEOUT_MS);
  });
  const flushed = (async () => {
    await new Promise<void>((resolve) => log.flush(() => resolve()));
    while (!timedOut && !existsSync(file)) await new Promise((resolve) => setTimeout(resolve, 10));
  })();
  try {
    await Promise.race([flushed, timeout]);
  } finally {
    clearTimeout(timer);
    timedOut = true;
  }
}

/** The file a rotating logger writes to now (rotating-log-file.ts numbers the files). */
export function activeLogFile(logDir: string, name: string): string {
  return logFilePath(logDir, name, liveLogNumber(logDir, name));
}
