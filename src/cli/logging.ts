// Logger construction for the binaries. dfdaemon logs to rotated files under its log dir (pino-roll, in a
// worker thread); the short-lived CLIs write one file synchronously-enough (sonic-boom) so start-up stays fast.
// `--console` sends everything to stderr instead, as upstream's `--console`.

import { mkdirSync } from 'node:fs';
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
