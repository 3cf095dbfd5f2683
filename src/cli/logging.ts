// Logger construction for the binaries. dfdaemon logs to rotated files under its log dir (pino-roll, in a
// worker thread); the short-lived CLIs write one file synchronously-enough (sonic-boom) so start-up stays fast.
// `--console` sends everything to stderr instead, as upstream's `--console`.

import { mkdirSync, readdirSync } from 'node:fs';
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
    return pino(base, transport);
  }
  return pino(base, pino.destination({ dest: join(o.logDir, `${o.name}.log`), sync: false, mkdir: true }));
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
