// dfdaemon's log files, rotated by size: `<name>.<n>.log`, moving to n + 1 once the live file reaches
// `maxFileSize`, keeping the `maxFiles` newest rotated files beside the live one (older numbers are deleted). At
// start it continues the highest-numbered file (liveLogNumber). This is what pino-roll did for us with size and
// count — its time-based rotation was never used — without loading it and date-fns (304 modules: 54.5-55.4 MiB
// of RSS in a bare node against 49.7-49.9 with this, measured 2026-12-07), in every daemon that logs to files,
// which is the default.
//
// Each file is written by its own sonic-boom (pino.destination): asynchronous, buffered, flushed synchronously at
// exit. A rotation flushes the old one, ends it and opens the next; sonic-boom's reopen() was not used because a
// reopen asked for while a write is in flight waits for the next write to happen.

import { EventEmitter } from 'node:events';
import { readdirSync, statSync, unlink } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';

export interface RotatingLogFileOptions {
  dir: string;
  name: string;
  /** The live file's number (liveLogNumber's). */
  number: number;
  maxFileSize: number;
  /** Rotated files kept beside the live one. */
  maxFiles: number;
}

type SonicBoom = ReturnType<typeof pino.destination>;

/** `<dir>/<name>.<n>.log`. */
export function logFilePath(dir: string, name: string, n: number): string {
  return join(dir, `${name}.${n}.log`);
}

/** n of a `<name>.<n>.log` file name, else undefined. Our binaries' names are letters only. */
function ownLogNumber(name: string, file: string): number | undefined {
  const m = new RegExp(`^${name}\\.(\\d+)\\.log$`).exec(file);
  return m ? Number(m[1]) : undefined;
}

/**
 * The number of the file a rotating logger writes to now: the highest of `<name>.<n>.log` in `dir`, or, before
 * one exists, 1 — or, in a directory pino-roll wrote (which numbered from any `*<n>.log` there), the highest
 * number of those, so an upgraded daemon goes on where the old one stopped.
 */
export function liveLogNumber(dir: string, name: string): number {
  let files: string[] = [];
  try {
    files = readdirSync(dir);
  } catch {
    // No directory yet: start at 1.
  }
  const highest = (numberOf: (f: string) => number | undefined) =>
    files.reduce((max, f) => Math.max(max, numberOf(f) ?? 0), 0);
  const own = highest((f) => ownLogNumber(name, f));
  if (own > 0) return own;
  return Math.max(
    1,
    highest((f) => {
      const m = /(\d+)\.log$/.exec(f);
      return m ? Number(m[1]) : undefined;
    }),
  );
}

/**
 * A pino destination over the numbered files. Emits 'ready' once the first file is open and 'error' for a file
 * that cannot be opened or written.
 */
export class RotatingLogFile extends EventEmitter {
  private current: SonicBoom;
  private number: number;
  private size: number;

  constructor(private readonly o: RotatingLogFileOptions) {
    super();
    this.number = o.number;
    this.size = sizeOf(this.path(this.number));
    this.current = this.open(this.number);
    this.current.once('ready', () => this.emit('ready'));
  }

  write(data: string): boolean {
    const accepted = this.current.write(data);
    this.size += Buffer.byteLength(data);
    if (this.size >= this.o.maxFileSize) this.rotate();
    return accepted;
  }

  flush(cb?: (err?: Error) => void): void {
    this.current.flush(cb ?? (() => {}));
  }

  flushSync(): void {
    this.current.flushSync();
  }

  private rotate(): void {
    const old = this.current;
    try {
      old.flushSync();
    } catch {
      // Still opening (a tiny size): end() below writes what it holds once open.
    }
    old.end();
    this.number++;
    this.size = 0;
    const oldestKept = this.number - this.o.maxFiles;
    this.current = this.open(this.number);
    // Once the new file is open: the files before it were asked for earlier and are there to be deleted by then.
    this.current.once('ready', () => removeOlderThan(this.o, oldestKept));
  }

  private open(n: number): SonicBoom {
    const stream = pino.destination({ dest: this.path(n), sync: false, mkdir: true });
    stream.on('error', (e: Error) => this.emit('error', e));
    return stream;
  }

  private path(n: number): string {
    return logFilePath(this.o.dir, this.o.name, n);
  }
}

function sizeOf(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

/** Deletes `<name>.<k>.log` for every k below `oldestKept`, in the background (a failure only leaves a file). */
function removeOlderThan(o: RotatingLogFileOptions, oldestKept: number): void {
  let files: string[];
  try {
    files = readdirSync(o.dir);
  } catch {
    return;
  }
  for (const f of files) {
    const n = ownLogNumber(o.name, f);
    if (n !== undefined && n < oldestKept) unlink(join(o.dir, f), () => {});
  }
}
