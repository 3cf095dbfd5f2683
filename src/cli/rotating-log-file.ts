// dfdaemon's log files, rotated by size: `<name>.<n>.log`, moving to n + 1 once the live file reaches
// `maxFileSize`, keeping the `maxFiles` newest rotated files beside the live one (older numbers are deleted). At
// start it continues the highest-numbered file (activeLogFile). This is what pino-roll did for us with size and
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
  /** The live file's number (activeLogFile's). */
  number: number;
  maxFileSize: number;
  /** Rotated files kept beside the live one. */
  maxFiles: number;
}

type SonicBoom = ReturnType<typeof pino.destination>;

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

  /** The file written now. */
  get file(): string {
    return this.path(this.number);
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
    return join(this.o.dir, `${this.o.name}.${n}.log`);
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
  const own = new RegExp(`^${o.name}\\.(\\d+)\\.log$`); // our binaries' names: letters only
  for (const f of files) {
    const m = own.exec(f);
    if (m && Number(m[1]) < oldestKept) unlink(join(o.dir, f), () => {});
  }
}
