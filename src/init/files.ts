// Reading runtime config files and writing the changed ones: a backup of the original first, then an atomic
// replace (temporary file in the same directory, renamed over the old one) with the old file's mode.
// Backups: the first change to a file keeps the original as `<file>.dfinit.bak`; that backup is never
// overwritten, so it always holds the file as it was before dfinit first touched it. A later change (say, a
// new proxy address) keeps the file it replaces as `<file>.dfinit.<UTC timestamp>.bak`.

import fs from 'node:fs';
import path from 'node:path';
import { DfError } from '../core/errors.js';

/** One file dfinit manages: its content now (undefined if absent) and what it should be. */
export interface FileChange {
  path: string;
  before: string | undefined;
  after: string;
}

export type ChangeStatus = 'unchanged' | 'created' | 'updated';

export interface AppliedChange {
  path: string;
  status: ChangeStatus;
  /** The backup written before updating, if any. */
  backup?: string;
}

function ioError(file: string, what: string, e: unknown): DfError {
  const err = e as NodeJS.ErrnoException;
  const why =
    err.code === 'ENOENT'
      ? 'no such file or directory'
      : err.code === 'EACCES' || err.code === 'EPERM'
        ? 'permission denied (run dfinit as root?)'
        : err.code === 'EISDIR'
          ? 'is a directory'
          : err.message;
  return new DfError(
    err.code === 'EACCES' || err.code === 'EPERM' ? 'PERMISSION_DENIED' : 'IO',
    `${file}: cannot ${what}: ${why}`,
    {
      cause: e,
    },
  );
}

/** The file's text, or undefined when it does not exist; any other failure names the file. */
export function readTextIfExists(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw ioError(file, 'read', e);
  }
}

export function readText(file: string, what: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw ioError(file, `read ${what}`, e);
  }
}

export function statusOf(c: FileChange): ChangeStatus {
  return c.before === c.after ? 'unchanged' : c.before === undefined ? 'created' : 'updated';
}

export const FIRST_BACKUP_SUFFIX = '.dfinit.bak';

function stamp(now: Date): string {
  return now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
}

/** The name for a backup of `file`: the first backup if there is none yet, else a timestamped one. */
export function backupPath(file: string, now = new Date()): string {
  const first = file + FIRST_BACKUP_SUFFIX;
  if (!fs.existsSync(first)) return first;
  const base = `${file}.dfinit.${stamp(now)}`;
  let candidate = `${base}.bak`;
  for (let n = 1; fs.existsSync(candidate); n++) candidate = `${base}-${n}.bak`;
  return candidate;
}

/** Why a file cannot be made in `dir`: an errno of access(2) in words. */
function accessWhy(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied (run dfinit as root?)';
  if (code === 'EROFS') return 'read-only file system';
  return (e as Error).message;
}

/**
 * Why dfinit could not put a file in `dir` (write a temporary file there and rename it), creating `dir` and its
 * missing parents first if need be; undefined when it can. Creates nothing.
 */
export function directoryProblem(dir: string): string | undefined {
  let current = path.resolve(dir);
  for (;;) {
    let st: fs.Stats;
    try {
      st = fs.statSync(current);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') return `cannot look at ${current}: ${accessWhy(e)}`;
      // Missing (or under a file, which the parent shows): dfinit would create it in its parent.
      const parent = path.dirname(current);
      if (parent === current) return `${current} does not exist`;
      current = parent;
      continue;
    }
    if (!st.isDirectory()) return `${current} is not a directory`;
    try {
      fs.accessSync(current, fs.constants.W_OK | fs.constants.X_OK);
    } catch (e) {
      const what = current === path.resolve(dir) ? 'write in' : `create ${path.resolve(dir)} in`;
      return `cannot ${what} ${current}: ${accessWhy(e)}`;
    }
    return undefined;
  }
}

/**
 * Every reason the changes could not all be written, checked before any is: each file's directory (created if
 * missing) must take a new file, and an updated file's directory its backup too (a symlinked file is written
 * where it points). Empty when all of them can be written. A half-applied dfinit (config.toml rewritten, then a
 * permission error on certs.d) is what this prevents.
 */
export function writeProblems(changes: readonly FileChange[]): string[] {
  const problems: string[] = [];
  for (const c of changes) {
    const status = statusOf(c);
    if (status === 'unchanged') continue;
    const dirs = new Set([path.dirname(path.resolve(c.path))]);
    if (status === 'updated') {
      try {
        dirs.add(path.dirname(fs.realpathSync(c.path)));
      } catch (e) {
        problems.push(`${c.path}: cannot resolve: ${accessWhy(e)}`);
      }
    }
    for (const dir of dirs) {
      const problem = directoryProblem(dir);
      if (problem) problems.push(`${c.path}: ${problem}`);
    }
  }
  return problems;
}

/** Writes one change: nothing when unchanged; else backup (if the file exists), then atomic replace. */
export function applyChange(c: FileChange, now = new Date()): AppliedChange {
  const status = statusOf(c);
  if (status === 'unchanged') return { path: c.path, status };
  const dir = path.dirname(c.path);
  let mode = 0o644;
  let backup: string | undefined;
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw ioError(dir, 'create directory', e);
  }
  if (status === 'updated') {
    try {
      mode = fs.statSync(c.path).mode & 0o7777;
      backup = backupPath(c.path, now);
      // COPYFILE_EXCL: a backup that appeared meanwhile is never overwritten.
      fs.copyFileSync(c.path, backup, fs.constants.COPYFILE_EXCL);
    } catch (e) {
      throw ioError(c.path, 'back up', e);
    }
  }
  // A symlinked config (common for managed hosts) is written where the link points, and stays a link.
  const target = status === 'updated' ? fs.realpathSync(c.path) : c.path;
  const tmp = path.join(path.dirname(target), `.${path.basename(target)}.dfinit-${process.pid}.tmp`);
  try {
    fs.writeFileSync(tmp, c.after, { mode });
    fs.chmodSync(tmp, mode);
    fs.renameSync(tmp, target);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw ioError(c.path, 'write', e);
  }
  return { path: c.path, status, backup };
}
