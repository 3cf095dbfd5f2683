// Who asked dfdaemon to write a file, and whether that user could have written it itself. dfdaemon usually runs as
// root and its download socket is open to every user (0777, as upstream), so an output path is written only where
// the calling user could create, replace or link the file with its own permissions. Pure: the caller's identity is
// found by the daemon (SO_PEERCRED on the socket, /proc/net/tcp for the proxy), the file modes by the writer.

/** The kernel's view of a local process: effective uid and gid, and its supplementary groups. */
export interface CallerCredentials {
  uid: number;
  gid: number;
  groups: readonly number[];
  /** The caller's pid when known (for the log). */
  pid?: number;
}

/**
 * Who a download is for, as far as writing its output path goes:
 * - `local`: a process on this host whose credentials the kernel told us;
 * - `unidentified`: a local caller whose credentials could not be read (`why` says why) — no output path;
 * - `remote`: a caller over the network (the upload port) — no output path;
 * - `internal`: dfdaemon itself (prefetch, tests) — no check.
 */
export type Caller =
  | { kind: 'local'; cred: CallerCredentials; via: string }
  | { kind: 'unidentified'; why: string; via: string }
  | { kind: 'remote'; via: string }
  | { kind: 'internal' };

/** What an access check needs of a file: stat's mode, uid and gid. */
export interface FileMode {
  mode: number;
  uid: number;
  gid: number;
}

export const R_OK = 4;
export const W_OK = 2;
export const X_OK = 1;
const S_ISVTX = 0o1000;

/**
 * Whether `cred` has the `want` bits (R_OK | W_OK | X_OK) on a file of this mode, by the classic owner / group /
 * other rule of the kernel. root passes (CAP_DAC_OVERRIDE; for X_OK on a directory too). POSIX ACLs are not read:
 * the group bits of a file with an ACL are its mask, so a directory writable only through a named ACL entry is
 * refused (the safe side).
 */
export function mayAccess(f: FileMode, cred: CallerCredentials, want: number): boolean {
  if (cred.uid === 0) return true;
  let bits: number;
  if (f.uid === cred.uid) bits = (f.mode >> 6) & 7;
  else if (f.gid === cred.gid || cred.groups.includes(f.gid)) bits = (f.mode >> 3) & 7;
  else bits = f.mode & 7;
  return (bits & want) === want;
}

/**
 * Whether `cred` may remove or replace an existing entry `file` of directory `dir` (in which it may already
 * write): in a sticky directory (/tmp) only the file's owner, the directory's owner or root may.
 */
export function mayReplace(dir: FileMode, file: FileMode, cred: CallerCredentials): boolean {
  if (cred.uid === 0 || (dir.mode & S_ISVTX) === 0) return true;
  return file.uid === cred.uid || dir.uid === cred.uid;
}

/** "uid 1001 (gid 1001, pid 4242)" for messages. */
export function describeCred(cred: CallerCredentials): string {
  return `uid ${cred.uid} (gid ${cred.gid}${cred.pid ? `, pid ${cred.pid}` : ''})`;
}

/** "owner 0, group 0, mode 0700" for messages. */
export function describeMode(f: FileMode): string {
  return `owner ${f.uid}, group ${f.gid}, mode ${(f.mode & 0o7777).toString(8).padStart(4, '0')}`;
}
