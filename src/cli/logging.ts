// Logger construction for the binaries. dfdaemon logs to rotated files under its log dir (pino-roll, in a
// worker thread); the short-lived CLIs write one file synchronously-enough (sonic-boom) so start-up stays fast.
// `--console` sends everything to stderr instead, as upstream's `--console`.

import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import pino, { type Logger } from 'pino';

export type { Logger } from 'pino';

export interface LoggingOptions {
  name: string;
  level: string;
  console: boolean;
  logDir?: string;
  /** Rotation for long-running daemons; absent for CLIs. */
  rotate?: { maxFiles: number; maxFileSize: number };
}

const LEVELS = new Set(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']);

export function checkLogLevel(level: string): string {
  const l = level.toLowerCase();
  if (!LEVELS.has(l))
    throw new Error(`invalid log level "${level}": expected trace, debug, info, warn or error`);
  return l;
}

export function createLogger(o: LoggingOptions): Logger {
  const base = { level: checkLogLevel(o.level), base: { bin: o.name, pid: process.pid } };
  if (o.console || !o.logDir) return pino(base, pino.destination({ dest: 2, sync: false }));
  try {
    mkdirSync(o.logDir, { recursive: true });
  } catch {
    return pino(base, pino.destination({ dest: 2, sync: false }));
  }
  if (o.rotate) {
    const transport = pino.transport({
      target: 'pino-roll',
      options: {
        file: join(o.logDir, `${o.name}.log`),
        size: `${Math.max(1, Math.floor(o.rotate.maxFileSize / 1024))}k`,
        limit: { count: o.rotate.maxFiles },
        mkdir: true,
      },
    });
    const logger = pino(base, transport);
    transportReady.set(
      logger,
      new Promise((resolve) => {
        transport.once('ready', resolve);
        transport.once('error', resolve);
      }),
    );
    return logger;
  }
  return pino(base, pino.destination({ dest: join(o.logDir, `${o.name}.log`), sync: false, mkdir: true }));
}

/** Loggers whose destination runs in a worker (pino-roll): resolved once the worker has opened its file. */
const transportReady = new WeakMap<Logger, Promise<unknown>>();

/** Longest wait for a log destination to be ready and flushed: logging must not hold up the daemon. */
const LOG_READY_TIMEOUT_MS = 5_000;

/**
 * Resolves once `file` (the log file `log` writes) exists and what was logged so far has reached the log's worker,
 * or after 5 s: a start-up line that names the log file is printed after this, so that the file it names is there
 * to read. (pino-roll's worker starts, and opens its file, more slowly than the daemon's servers on a busy machine.)
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
    await transportReady.get(log);
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

/**
 * The file a rotating logger writes to now. pino-roll appends a number to `<name>.log` (`dfdaemon.1.log`) and, at
 * start, continues from the highest number of any `*<n>.log` in the directory; rotation moves on to the next
 * number. So the live file is the highest-numbered `<name>.<n>.log`, or, before it exists, the one pino-roll
 * would open.
 */
export function activeLogFile(logDir: string, name: string): string {
  let files: string[] = [];
  try {
    files = readdirSync(logDir);
  } catch {
    // No directory yet: pino-roll starts at 1.
  }
  const numbered = (re: RegExp) =>
    files.map((f) => re.exec(f)).reduce((max, m) => (m ? Math.max(max, Number(m[1])) : max), 0);
  const own = numbered(new RegExp(`^${name}\\.(\\d+)\\.log$`)); // our binaries' names: letters only
  const n = own > 0 ? own : Math.max(1, numbered(/(\d+)\.log$/));
  return join(logDir, `${name}.${n}.log`);
}
