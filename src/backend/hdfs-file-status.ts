// WebHDFS's JSON answers (Hadoop's WebHDFS REST API, "FileStatus JSON Schema" and "FileStatuses JSON Schema"), read
// into the few fields a download needs, and the version of a file that its pieces are checked against. Pure.

/** The fields of a WebHDFS FileStatus a download uses. */
export interface HdfsFileStatus {
  /** The entry's name in its directory ('' when the status is of the path itself). */
  pathSuffix: string;
  type: 'FILE' | 'DIRECTORY' | 'SYMLINK';
  length: number;
  /** Milliseconds since the epoch. */
  modificationTime: number;
  /** The inode id: a file written anew under the same name (overwrite) has another one. */
  fileId?: number;
}

/** `{"FileStatus": {...}}` (op=GETFILESTATUS); throws an Error saying what is wrong. */
export function parseFileStatus(json: unknown): HdfsFileStatus {
  const status = (json as { FileStatus?: unknown } | null)?.FileStatus;
  if (status === undefined) throw new Error('the answer has no FileStatus');
  return fileStatusOf(status);
}

/** `{"FileStatuses": {"FileStatus": [...]}}` (op=LISTSTATUS); throws an Error saying what is wrong. */
export function parseFileStatuses(json: unknown): HdfsFileStatus[] {
  const list = (json as { FileStatuses?: { FileStatus?: unknown } } | null)?.FileStatuses?.FileStatus;
  if (!Array.isArray(list)) throw new Error('the answer has no FileStatuses.FileStatus list');
  return list.map(fileStatusOf);
}

/**
 * The version of a file as a strong ETag: inode, length and modification time, the three things that change when
 * a file is rewritten, appended to or truncated. WebHDFS has no ETag of its own, and Last-Modified (an HTTP date)
 * has whole seconds only; the ETag goes through the same validator path as an origin's (core/validator.ts).
 */
export function versionTag(status: HdfsFileStatus): string {
  return `"hdfs-${status.fileId ?? 0}-${status.length}-${status.modificationTime}"`;
}

/** A file's status as the task's response header: its length and version, as an origin's full answer has them. */
export function statusHeader(status: HdfsFileStatus): Record<string, string> {
  return {
    'content-length': String(status.length),
    'last-modified': new Date(status.modificationTime).toUTCString(),
    etag: versionTag(status),
  };
}

const TYPES: ReadonlySet<string> = new Set(['FILE', 'DIRECTORY', 'SYMLINK']);

function fileStatusOf(value: unknown): HdfsFileStatus {
  const s = value as Record<string, unknown> | null;
  if (typeof s !== 'object' || s === null) throw new Error('a FileStatus is not an object');
  const { pathSuffix, type, length, modificationTime, fileId } = s;
  if (typeof type !== 'string' || !TYPES.has(type))
    throw new Error(`a FileStatus has type ${JSON.stringify(type)}`);
  if (!isCount(length)) throw new Error(`a FileStatus has length ${JSON.stringify(length)}`);
  if (!isCount(modificationTime)) {
    throw new Error(`a FileStatus has modificationTime ${JSON.stringify(modificationTime)}`);
  }
  // A name is one path segment: a listing that names `..` or `a/b` would place an entry outside its directory.
  if (
    typeof pathSuffix !== 'string' ||
    pathSuffix.includes('/') ||
    pathSuffix === '.' ||
    pathSuffix === '..'
  ) {
    throw new Error(`a FileStatus has pathSuffix ${JSON.stringify(pathSuffix)}`);
  }
  return {
    pathSuffix,
    type: type as HdfsFileStatus['type'],
    length,
    modificationTime,
    fileId: isCount(fileId) ? fileId : undefined,
  };
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}
