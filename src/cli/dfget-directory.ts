// dfget's directory download (upstream dfget `download_dir`): a URL ending in `/` (or --recursive) is listed by
// dfdaemon (ListTaskEntries), and each file is downloaded as its own task, at most --max-concurrent-requests at a
// time; the first failure stops the rest. Every file lands under the output directory and nowhere else: an entry
// whose key would climb out (`..`, an absolute name, an encoded slash) is refused, directories are made one level
// at a time, and a symlink met on the way (or at the file itself) stops the download.

import { lstat, mkdir, realpath } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';
import type { Download, HDFS, ObjectStorage } from '../gen/common.js';

/** A Download's (and ListTaskEntries request's) model hub messages; at most one is set. */
export type HubMessages = Pick<Download, 'huggingFace' | 'modelScope' | 'openCsg'>;
import type { DfdaemonDownloadClient, Entry } from '../gen/dfdaemon.js';
import { DfError } from '../core/errors.js';
import { parseIncludeFiles, type IncludePattern } from '../core/include-files.js';

export interface DirectoryDownloadOptions {
  /** The directory URL, ending in `/`. */
  url: string;
  /** The existing output directory. */
  output: string;
  includeFiles: string[];
  maxFiles: number;
  maxConcurrentRequests: number;
  requestHeader: Record<string, string>;
  objectStorage?: ObjectStorage;
  /** The hub's revision, token and base URL, for the model hub schemes. */
  hub: HubMessages;
  /** The delegation token, for hdfs. */
  hdfs?: HDFS;
  timeoutMs: number;
  client: DfdaemonDownloadClient;
  /** Downloads one file of the directory to its output path. */
  downloadFile(url: string, output: string): Promise<void>;
  log?: { info(o: object, m: string): void };
}

/** A file to fetch: its URL and the path it is written to. */
export interface PlannedFile {
  url: string;
  relativePath: string;
}

export async function downloadDirectory(o: DirectoryDownloadOptions): Promise<PlannedFile[]> {
  const patterns = parseIncludeFiles(o.includeFiles);
  const root = await checkOutputRoot(o.output);
  const files = await planFiles(o, patterns);
  if (files.length > o.maxFiles) {
    throw new DfError(
      'INVALID_ARGUMENT',
      `${o.url} holds ${files.length} files to download, more than --max-files ${o.maxFiles}`,
    );
  }
  o.log?.info({ url: o.url, files: files.length }, 'directory listed');
  const queue = [...files];
  let failed: unknown;
  const worker = async () => {
    for (let f = queue.shift(); f !== undefined && failed === undefined; f = queue.shift()) {
      try {
        const output = await prepareOutput(root, f.relativePath);
        await o.downloadFile(f.url, output);
      } catch (e) {
        failed ??= e;
      }
    }
  };
  const workers = Math.max(1, Math.min(o.maxConcurrentRequests, files.length));
  await Promise.all(Array.from({ length: workers }, worker));
  if (failed !== undefined) throw failed;
  return files;
}

/** The listing (or, for plain --include-files paths, the named files), as files relative to the directory URL. */
async function planFiles(o: DirectoryDownloadOptions, patterns: IncludePattern[]): Promise<PlannedFile[]> {
  const base = new URL(o.url);
  const byUrl = new Map<string, PlannedFile>();
  const add = (url: string) => {
    const relativePath = relativeEntryPath(base, url);
    byUrl.set(url, { url, relativePath });
  };
  const globs = patterns.filter((p) => p.match);
  const listed = new Map<string, Entry[]>();
  const list = async (url: string) => {
    let entries = listed.get(url);
    if (entries === undefined) {
      entries = await listEntries(o, url);
      listed.set(url, entries);
    }
    return entries;
  };
  if (patterns.length === 0) {
    for (const e of await list(o.url)) if (!e.isDir) add(e.url);
  }
  for (const p of patterns) {
    if (p.match) continue;
    const url = new URL(p.source, base).href;
    if (!url.endsWith('/')) add(url);
    else for (const e of await list(url)) if (!e.isDir) add(e.url);
  }
  if (globs.length > 0) {
    for (const e of await list(o.url)) {
      if (e.isDir) continue;
      const rel = relativeEntryPath(base, e.url);
      if (globs.some((g) => g.match!.test(rel))) add(e.url);
    }
  }
  return [...byUrl.values()].sort((a, b) => a.relativePath.localeCompare(b.relativePath));
}

async function listEntries(o: DirectoryDownloadOptions, url: string): Promise<Entry[]> {
  const res = await new Promise<{ entries: Entry[] }>((ok, fail) =>
    o.client.listTaskEntries(
      {
        taskId: '',
        url,
        requestHeader: o.requestHeader,
        timeout: { seconds: Math.floor(o.timeoutMs / 1000), nanos: (o.timeoutMs % 1000) * 1e6 },
        certificateChain: [],
        objectStorage: o.objectStorage,
        hdfs: o.hdfs,
        ...o.hub,
      },
      (err, r) => (err ? fail(err) : ok(r)),
    ),
  );
  return res.entries;
}

/**
 * The path of a listed entry relative to the directory URL, checked: same scheme and host, under the directory's
 * path, and made only of plain names once decoded.
 */
export function relativeEntryPath(base: URL, entryUrl: string): string {
  let u: URL;
  try {
    u = new URL(entryUrl);
  } catch {
    throw new DfError('INVALID_ARGUMENT', `listed entry "${entryUrl}" is not a URL`);
  }
  if (u.protocol !== base.protocol || u.host !== base.host || !u.pathname.startsWith(base.pathname)) {
    throw new DfError('INVALID_ARGUMENT', `listed entry ${entryUrl} is not under ${base.href}`);
  }
  const segments = u.pathname.slice(base.pathname.length).split('/');
  const names = segments.map((s) => {
    let name: string;
    try {
      name = decodeURIComponent(s);
    } catch {
      throw new DfError('INVALID_ARGUMENT', `listed entry ${entryUrl} has an invalid percent-encoding`);
    }
    // eslint-disable-next-line no-control-regex
    if (name === '' || name === '.' || name === '..' || /[/\\\u0000]/.test(name)) {
      throw new DfError(
        'INVALID_ARGUMENT',
        `listed entry ${entryUrl} would be written outside the output directory (segment ${JSON.stringify(name)})`,
      );
    }
    return name;
  });
  return names.join('/');
}

async function checkOutputRoot(output: string): Promise<string> {
  const dir = resolve(output);
  const st = await lstat(dir).catch(() => undefined);
  if (!st?.isDirectory()) {
    throw new DfError(
      'INVALID_ARGUMENT',
      `output path ${output} is not a directory (a directory download needs one)`,
    );
  }
  return realpath(dir);
}

/**
 * Makes the parent directories of `relativePath` under `root`, one level at a time, refusing any that is a symlink
 * (or anything but a directory), and refuses an output file that is a symlink. Returns the file's path.
 */
export async function prepareOutput(root: string, relativePath: string): Promise<string> {
  const names = relativePath.split('/');
  let dir = root;
  for (const name of names.slice(0, -1)) {
    dir = join(dir, name);
    await mkdir(dir).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'EEXIST') throw e;
    });
    const st = await lstat(dir);
    if (!st.isDirectory()) {
      throw new DfError(
        'PERMISSION_DENIED',
        `${dir} is ${st.isSymbolicLink() ? 'a symlink' : 'not a directory'}: a directory download never writes through it`,
      );
    }
  }
  const file = join(dir, names[names.length - 1]!);
  const existing = await lstat(file).catch(() => undefined);
  if (existing?.isSymbolicLink()) {
    throw new DfError(
      'PERMISSION_DENIED',
      `${file} is a symlink: a directory download never writes through it`,
    );
  }
  const rel = relative(root, file);
  if (rel.startsWith('..') || rel.startsWith(sep)) {
    throw new DfError('INVALID_ARGUMENT', `${relativePath} would be written outside ${root}`);
  }
  return file;
}
