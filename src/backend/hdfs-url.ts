// HDFS URLs, `hdfs://namenode[:port]/path` (upstream `hdfs.rs`): the NameNode's WebHDFS server is the URL's host
// and port (9870, the NameNode's HTTP port, when none is given), the file its percent-decoded path. A path ending
// in `/` names a directory: listed, never read. Every WebHDFS call is `http://namenode:port/webhdfs/v1<path>?op=..`
// (the REST API of Hadoop's WebHDFS documentation); the delegation token, when given, goes as `delegation=`.

import { DfError } from '../core/errors.js';

/** The NameNode's HTTP port (dfs.namenode.http-address), as upstream's DEFAULT_NAMENODE_PORT. */
export const DEFAULT_NAMENODE_PORT = 9870;

export interface HdfsUrl {
  /** `host:port` of the NameNode's WebHDFS server. */
  namenode: string;
  /** The URL's host and port as written (no port when the URL has none): listed entries keep the user's form. */
  authority: string;
  /** The decoded absolute path, starting with `/`. */
  path: string;
  /** The path ends in `/`: a directory to list. */
  isDir: boolean;
}

export function parseHdfsUrl(url: string): HdfsUrl {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new DfError('INVALID_ARGUMENT', `invalid hdfs URL "${url}": expected hdfs://NAMENODE[:PORT]/PATH`);
  }
  if (u.protocol !== 'hdfs:') {
    throw new DfError('INVALID_ARGUMENT', `"${u.protocol.slice(0, -1)}" is not the hdfs scheme in ${url}`);
  }
  // `hdfs:/nn:9870/file` (one slash) parses with an empty host: refused, as upstream refuses it.
  if (!u.hostname) {
    throw new DfError(
      'INVALID_ARGUMENT',
      `hdfs URL ${url} names no NameNode: expected hdfs://NAMENODE[:PORT]/PATH`,
    );
  }
  if (u.username || u.password) {
    throw new DfError(
      'INVALID_ARGUMENT',
      `hdfs URL hdfs://${u.host}${u.pathname} carries user information: use --hdfs-delegation-token`,
    );
  }
  let path: string;
  try {
    path = decodeURIComponent(u.pathname || '/');
  } catch {
    throw new DfError('INVALID_ARGUMENT', `hdfs URL ${url} has an invalid percent-encoding in its path`);
  }
  if (!path.startsWith('/')) path = `/${path}`;
  // WebHDFS resolves no `.` or `..` (the NameNode refuses them); a listing could never have produced them.
  if (path.split('/').some((segment) => segment === '.' || segment === '..')) {
    throw new DfError('INVALID_ARGUMENT', `hdfs URL ${url} has a "." or ".." segment in its path`);
  }
  const port = u.port === '' ? DEFAULT_NAMENODE_PORT : Number(u.port);
  return { namenode: `${u.hostname}:${port}`, authority: u.host, path, isDir: path.endsWith('/') };
}

/** A WebHDFS operation on the URL's path: `http://namenode/webhdfs/v1<path>?op=OP&...`. */
export function webhdfsUrl(
  parsed: HdfsUrl,
  op: 'GETFILESTATUS' | 'LISTSTATUS' | 'OPEN',
  params: Record<string, string | number> = {},
  delegationToken?: string,
): string {
  // A directory's trailing `/` is not part of its name in the REST path.
  const path = parsed.isDir && parsed.path !== '/' ? parsed.path.slice(0, -1) : parsed.path;
  const u = new URL(`http://${parsed.namenode}/webhdfs/v1${encodePath(path)}`);
  u.searchParams.set('op', op);
  for (const [name, value] of Object.entries(params)) u.searchParams.set(name, String(value));
  if (delegationToken) u.searchParams.set('delegation', delegationToken);
  return u.href;
}

/** The hdfs URL of an entry listed under a directory; a directory entry's URL ends with `/`. */
export function entryUrl(parsed: HdfsUrl, path: string, isDir: boolean): string {
  return `hdfs://${parsed.authority}${encodePath(path)}${isDir ? '/' : ''}`;
}

/** `hdfs://namenode:port/path` for messages: never a query (nor the token). */
export function describeHdfsPath(parsed: HdfsUrl): string {
  return `hdfs://${parsed.authority}${parsed.path}`;
}

function encodePath(path: string): string {
  return path
    .split('/')
    .map((segment) => encodeURIComponent(segment))
    .join('/');
}
