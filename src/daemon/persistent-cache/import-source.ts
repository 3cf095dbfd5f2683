// The file a dfcache import names, checked before a byte is read: it exists, is a regular file, and the calling user
// could read it itself. dfdaemon usually runs as root with its socket open to every user, so without the last
// check any user could import (and then export) a file only root may read.

import { constants, type Stats } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { dirname, isAbsolute } from 'node:path';
import { describeCred, describeMode, mayAccess, R_OK, X_OK, type Caller } from '../../core/caller.js';
import { DfError } from '../../core/errors.js';

function kindOf(s: Stats): string {
  if (s.isFIFO()) return 'a FIFO';
  if (s.isSocket()) return 'a socket';
  if (s.isCharacterDevice()) return 'a character device';
  if (s.isBlockDevice()) return 'a block device';
  return 'not a regular file';
}

function ancestors(path: string): string[] {
  const out: string[] = [];
  for (let d = dirname(path); ; d = dirname(d)) {
    out.unshift(d);
    if (dirname(d) === d) return out;
  }
}

/** Throws a DfError naming what is wrong with `path` as an import source; returns its stat otherwise. */
export async function checkImportSource(path: string, caller: Caller): Promise<Stats> {
  if (!path) throw new DfError('INVALID_ARGUMENT', 'path is empty');
  if (!isAbsolute(path)) throw new DfError('INVALID_ARGUMENT', `path ${path} must be absolute`);
  let s: Stats;
  try {
    s = await stat(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new DfError('INVALID_ARGUMENT', `path ${path} does not exist`);
    }
    if (code === 'EACCES')
      throw new DfError('PERMISSION_DENIED', `path ${path} cannot be read: permission denied`);
    throw new DfError('IO', `path ${path}: ${(e as Error).message}`);
  }
  if (s.isDirectory()) throw new DfError('INVALID_ARGUMENT', `path ${path} is a directory`);
  if (!s.isFile()) {
    throw new DfError('INVALID_ARGUMENT', `path ${path} is ${kindOf(s)}; only regular files can be imported`);
  }
  if (caller.kind === 'remote' || caller.kind === 'unidentified') {
    throw new DfError(
      'PERMISSION_DENIED',
      `path ${path} refused: dfdaemon cannot tell which user is calling over ${caller.via}, so it imports no file for it`,
    );
  }
  if (caller.kind === 'local' && caller.cred.uid !== 0) {
    const cred = caller.cred;
    for (const dir of ancestors(path)) {
      const d = await stat(dir);
      if (!mayAccess(d, cred, X_OK)) {
        throw new DfError(
          'PERMISSION_DENIED',
          `path ${path} cannot be read: permission denied: ${describeCred(cred)} may not search directory ${dir} (${describeMode(d)})`,
        );
      }
    }
    if (!mayAccess(s, cred, R_OK)) {
      throw new DfError(
        'PERMISSION_DENIED',
        `path ${path} cannot be read: permission denied: ${describeCred(cred)} may not read it (${describeMode(s)})`,
      );
    }
  }
  try {
    await access(path, constants.R_OK);
  } catch {
    throw new DfError(
      'PERMISSION_DENIED',
      `path ${path} cannot be read: permission denied (dfdaemon cannot read it)`,
    );
  }
  return s;
}
