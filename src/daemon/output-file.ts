// Writing a download's output path on behalf of a caller, safely.
//
// - The output's directory is opened once and everything after that happens relative to that open directory
//   (through /proc/self/fd/<fd>/<name>): a directory swapped for a symlink after the checks changes nothing.
// - The checks are on the directory as it really is (the open directory's path, symlinks resolved): never inside
//   dfdaemon's storage, and — for a caller other than root — only where that user could itself create the file
//   (search permission on every directory above it, write and search permission on it) or replace an existing one
//   (--overwrite: a sticky directory's rule applies; the file's own mode does not, as for `mv`).
// - An existing final name is never followed: a symlink there is replaced (with overwrite) or refused.
// - A copy goes to a temporary sibling (O_EXCL), made writable for and owned by the caller, then takes the name
//   (rename with overwrite, link otherwise, so an entry created meanwhile is not clobbered).

import { randomUUID } from 'node:crypto';
import { constants, type Stats } from 'node:fs';
import {
  chmod,
  chown,
  copyFile,
  link,
  lstat,
  open,
  readlink,
  realpath,
  rename,
  stat,
  unlink,
} from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { basename, dirname, isAbsolute, resolve, sep } from 'node:path';
import {
  describeCred,
  describeMode,
  mayAccess,
  mayReplace,
  W_OK,
  X_OK,
  type Caller,
  type CallerCredentials,
} from '../core/caller.js';
import { DfError, toDfError } from '../core/errors.js';

function ancestors(dir: string): string[] {
  const out: string[] = [];
  for (let d = dir; ; d = dirname(d)) {
    out.unshift(d);
    if (dirname(d) === d) return out;
  }
}

function inside(path: string, root: string): boolean {
  return path === root || path.startsWith(root.endsWith(sep) ? root : root + sep);
}

export interface OpenOutputOptions {
  /** The absolute output path as the client gave it. */
  path: string;
  caller: Caller;
  overwrite: boolean;
  /** storage.dir: no output may be inside it (after resolving symlinks). */
  storageDir: string;
}

/** An output path checked for its caller, its directory held open. close() when the download ends. */
export class OutputFile {
  readonly path: string;
  /** The directory as it really is (symlinks resolved). */
  readonly realDir: string;
  private readonly dir: FileHandle;
  private readonly name: string;
  private readonly cred?: CallerCredentials;
  private readonly overwrite: boolean;

  private constructor(init: {
    path: string;
    realDir: string;
    dir: FileHandle;
    name: string;
    cred?: CallerCredentials;
    overwrite: boolean;
  }) {
    this.path = init.path;
    this.realDir = init.realDir;
    this.dir = init.dir;
    this.name = init.name;
    this.cred = init.cred;
    this.overwrite = init.overwrite;
  }

  /** Checks the output path for the caller; throws PERMISSION_DENIED / ALREADY_EXISTS / INVALID_ARGUMENT naming why. */
  static async open(o: OpenOutputOptions): Promise<OutputFile> {
    const p = o.path;
    if (!isAbsolute(p)) throw new DfError('INVALID_ARGUMENT', `output path "${p}" must be absolute`);
    const path = resolve(p);
    const name = basename(path);
    if (!name || name === '.' || name === '..' || path === sep) {
      throw new DfError('INVALID_ARGUMENT', `output path "${p}" names no file`);
    }
    let cred: CallerCredentials | undefined;
    switch (o.caller.kind) {
      case 'internal':
        break;
      case 'local':
        cred = o.caller.cred;
        break;
      case 'remote':
        throw new DfError(
          'PERMISSION_DENIED',
          `output path ${p} refused: a caller over ${o.caller.via} cannot make dfdaemon write files on this host`,
        );
      case 'unidentified':
        throw new DfError(
          'PERMISSION_DENIED',
          `output path ${p} refused: dfdaemon cannot tell which user is calling over ${o.caller.via} ` +
            `(${o.caller.why}), so it writes no file for it; use --transfer-from-dfdaemon to write the file yourself`,
        );
    }
    let dir: FileHandle;
    try {
      dir = await open(dirname(path), constants.O_RDONLY | constants.O_DIRECTORY);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') {
        throw new DfError('INVALID_ARGUMENT', `output path ${p}: directory ${dirname(path)} does not exist`);
      }
      throw toDfError(e, `output path ${p}`);
    }
    try {
      const realDir = await readlink(`/proc/self/fd/${dir.fd}`);
      const storage = await realpath(o.storageDir).catch(() => resolve(o.storageDir));
      if (inside(realDir, storage) || inside(resolve(realDir, name), storage)) {
        throw new DfError(
          'PERMISSION_DENIED',
          `output path ${p} is inside dfdaemon's storage directory ${storage}` +
            (realDir !== dirname(path) ? ` (its directory is ${realDir} once symlinks are resolved)` : ''),
        );
      }
      const out = new OutputFile({ path, realDir, dir, name, cred, overwrite: o.overwrite });
      await out.check(p);
      return out;
    } catch (e) {
      await dir.close().catch(() => undefined);
      throw e;
    }
  }

  /** /proc/self/fd/<dir>/<name>: a name in the directory we hold open. */
  private at(name: string): string {
    return `/proc/self/fd/${this.dir.fd}/${name}`;
  }

  private denied(p: string, what: string, f: Stats, where: string): DfError {
    return new DfError(
      'PERMISSION_DENIED',
      `output path ${p} refused: permission denied: ${describeCred(this.cred!)} may not ${what} ` +
        `${where} (${describeMode(f)}); dfdaemon writes an output only where the calling user could itself`,
    );
  }

  private async check(p: string): Promise<void> {
    const dirStat = await this.dir.stat();
    const existing = await this.existing();
    if (existing?.isDirectory()) throw new DfError('INVALID_ARGUMENT', `output path ${p} is a directory`);
    if (existing && !this.overwrite) {
      throw new DfError('ALREADY_EXISTS', `output path ${p} already exists (use --overwrite to replace it)`);
    }
    const cred = this.cred;
    if (!cred || cred.uid === 0) return;
    for (const a of ancestors(this.realDir).slice(0, -1)) {
      const st = await stat(a).catch(() => undefined);
      if (!st)
        throw new DfError('PERMISSION_DENIED', `output path ${p} refused: cannot check directory ${a}`);
      if (!mayAccess(st, cred, X_OK)) throw this.denied(p, 'search (x) directory', st, a);
    }
    if (!mayAccess(dirStat, cred, W_OK | X_OK)) {
      throw this.denied(p, 'create files (w) in directory', dirStat, this.realDir);
    }
    if (existing && !mayReplace(dirStat, existing, cred)) {
      throw new DfError(
        'PERMISSION_DENIED',
        `output path ${p} refused: permission denied: ${describeCred(cred)} may not replace it ` +
          `(${describeMode(existing)}) in the sticky directory ${this.realDir} (${describeMode(dirStat)})`,
      );
    }
  }

  /** What is at the output name now (not followed), if anything. */
  existing(): Promise<Stats | undefined> {
    return lstat(this.at(this.name)).catch(() => undefined);
  }

  /** Whether the output name is the file `file` itself (same device and inode). */
  async isFile(file: string): Promise<boolean> {
    const [a, b] = await Promise.all([stat(file).catch(() => undefined), this.existing()]);
    return !!a && !!b && a.dev === b.dev && a.ino === b.ino;
  }

  /**
   * Hard-links `file` (a task's content file) to the output. An output that already is this file counts as
   * linked; an existing other file is replaced only with overwrite (atomically, through a temporary link).
   */
  async link(file: string): Promise<void> {
    try {
      await link(file, this.at(this.name));
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw toDfError(e, `hard link ${this.path}`);
    }
    if (await this.isFile(file)) return;
    if (!this.overwrite) throw new DfError('ALREADY_EXISTS', `output path ${this.path} already exists`);
    const tmp = this.tempName();
    try {
      await link(file, this.at(tmp));
      await rename(this.at(tmp), this.at(this.name));
    } catch (e) {
      await unlink(this.at(tmp)).catch(() => undefined);
      throw toDfError(e, `hard link ${this.path}`);
    }
  }

  /**
   * A download's start (as upstream's dfdaemon): the output becomes a hard link to the content file `file` if it can;
   * undefined when it did, else why not. A refused link (EPERM on a filesystem without hard links, EXDEV across
   * filesystems) means a copy at the end, unless `forceHardLink` (then INVALID_ARGUMENT naming the flag); an
   * existing output is final either way (ALREADY_EXISTS). The caller's permission was checked when it was opened.
   */
  async linkAtStart(file: string, forceHardLink: boolean): Promise<string | undefined> {
    try {
      await this.link(file);
      return undefined;
    } catch (e) {
      if (toDfError(e).code === 'ALREADY_EXISTS') throw e;
      if (forceHardLink) {
        throw new DfError(
          'INVALID_ARGUMENT',
          `cannot hard link to ${this.path} (--force-hard-link): ${(e as Error).message}`,
          { cause: e },
        );
      }
      return (e as Error).message;
    }
  }

  /**
   * Copies `file` to the output through a temporary sibling (a reflink where the filesystem can), so a failed copy
   * never leaves a truncated file at the user's path. The copy is the caller's: mode 0644 and, when dfdaemon runs
   * as root, owned by the calling user.
   */
  async copy(file: string): Promise<void> {
    const existing = await this.existing();
    if (existing?.isDirectory())
      throw new DfError('INVALID_ARGUMENT', `output path ${this.path} is a directory`);
    if (existing && (await this.isFile(file))) return;
    if (existing && !this.overwrite) {
      throw new DfError('ALREADY_EXISTS', `output path ${this.path} already exists`);
    }
    const tmp = this.tempName();
    try {
      await copyFile(file, this.at(tmp), constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE);
      await chmod(this.at(tmp), 0o644);
      if (this.cred && this.cred.uid !== 0 && process.geteuid?.() === 0) {
        await chown(this.at(tmp), this.cred.uid, this.cred.gid);
      }
      if (this.overwrite) await rename(this.at(tmp), this.at(this.name));
      else {
        await link(this.at(tmp), this.at(this.name));
        await unlink(this.at(tmp));
      }
    } catch (e) {
      await unlink(this.at(tmp)).catch(() => undefined);
      throw toDfError(e, `copy to ${this.path}`);
    }
  }

  private tempName(): string {
    return `.${this.name}.dfget-${randomUUID()}.tmp`;
  }

  async close(): Promise<void> {
    await this.dir.close().catch(() => undefined);
  }
}
