// The HDFS backend (upstream `dragonfly-client-backend/src/hdfs.rs`, which goes through opendal's webhdfs service):
// `hdfs://namenode[:port]/path` over the NameNode's WebHDFS REST API, made by the http backend, so redirects to
// DataNodes, retries, timeouts and the source address policy are the http backend's.
//
// - stat is op=GETFILESTATUS; the file's inode, length and modification time become the task's validator (an
//   ETag: see hdfs-file-status.ts). Upstream keeps no validator for hdfs; a file rewritten during a download would
//   mix two versions there.
// - a piece is op=OPEN&offset=&length= (the NameNode answers 307 to a DataNode, which sends exactly those bytes
//   with 200). It streams into storage; the byte count is checked, and after its last byte a GETFILESTATUS must
//   still show the task's version, or the piece fails with SOURCE_CHANGED: one more NameNode request per piece,
//   the price of never keeping bytes of another version.
// - a directory (a URL ending in `/`) is listed with op=LISTSTATUS, level by level.
// - the delegation token (`--hdfs-delegation-token`, Download.hdfs) goes as `delegation=` on every call; the
//   NameNode copies it into the DataNode's redirect. It never appears in a message: messages name the hdfs URL.

import { DfError } from '../core/errors.js';
import { answerChanged } from '../core/validator.js';
import type {
  Backend,
  DirEntry,
  GetRequest,
  GetResponse,
  HdfsOptions,
  StatRequest,
  StatResponse,
} from './backend.js';
import { readBoundedText } from './bounded-text.js';
import {
  parseFileStatus,
  parseFileStatuses,
  statusHeader,
  versionTag,
  type HdfsFileStatus,
} from './hdfs-file-status.js';
import { describeHdfsPath, entryUrl, parseHdfsUrl, webhdfsUrl, type HdfsUrl } from './hdfs-url.js';
import { HttpBackend, type HttpBackendOptions } from './http.js';
import { MAX_LIST_ENTRIES } from './object-storage.js';

/** A GETFILESTATUS answer is a few hundred bytes; anything near this is not WebHDFS. */
const MAX_STATUS_BYTES = 1024 * 1024;

/** One directory's LISTSTATUS answer larger than this is refused rather than held in memory (~300 B per entry). */
const MAX_LISTING_BYTES = 64 * 1024 * 1024;

export class HdfsBackend implements Backend {
  readonly scheme = 'hdfs';
  private readonly http: HttpBackend;

  constructor(scheme: string, options: HttpBackendOptions) {
    if (scheme !== 'hdfs') throw new DfError('INVALID_ARGUMENT', `hdfs backend does not serve "${scheme}"`);
    // The NameNode is not the user's origin: the configured default headers (backend.requestHeader) are for http
    // sources. The 307 of an OPEN names one piece's offset and length, so caching it would never be used again.
    this.http = new HttpBackend('http', {
      ...options,
      requestHeader: {},
      enableCacheTemporaryRedirect: false,
    });
  }

  async stat(req: StatRequest): Promise<StatResponse> {
    const parsed = parseHdfsUrl(req.url);
    if (parsed.isDir) {
      throw new DfError(
        'INVALID_ARGUMENT',
        `${describeHdfsPath(parsed)} is a directory (the URL ends with /): download it with dfget --recursive`,
      );
    }
    const status = await this.fileStatus(parsed, req, 'stat', req.timeoutMs);
    if (status.type !== 'FILE') {
      throw new DfError(
        'INVALID_ARGUMENT',
        `${describeHdfsPath(parsed)} is a ${status.type.toLowerCase()}, not a file: download a directory with dfget --recursive`,
      );
    }
    return { contentLength: status.length, responseHeader: statusHeader(status), statusCode: 200 };
  }

  async get(req: GetRequest): Promise<GetResponse> {
    const started = Date.now();
    const parsed = parseHdfsUrl(req.url);
    const operation = `read piece ${req.pieceNumber} of`;
    const range: Record<string, number> = req.range
      ? { offset: req.range.start, length: req.range.length }
      : {};
    let res: GetResponse;
    try {
      res = await this.http.get({
        taskId: req.taskId,
        pieceNumber: req.pieceNumber,
        url: webhdfsUrl(parsed, 'OPEN', range, req.hdfs?.delegationToken),
        requestHeader: {},
        timeoutMs: req.timeoutMs,
        signal: req.signal,
        remoteCaller: req.remoteCaller,
      });
    } catch (e) {
      throw hdfsError(e, parsed, operation);
    }
    const recorded = req.validator?.etag;
    const checkVersion = async () => {
      if (recorded === undefined) return;
      const remaining = Math.max(1, req.timeoutMs - (Date.now() - started));
      let changed: string | undefined;
      try {
        const now = await this.fileStatus(parsed, req, `stat after piece ${req.pieceNumber} of`, remaining);
        changed = answerChanged({ etag: recorded }, { etag: versionTag(now) });
      } catch (e) {
        // Deleted since the piece was opened: another version (none) as much as a rewrite is.
        if (!(e instanceof DfError && e.backend?.statusCode === 404)) throw e;
        changed = 'the file was deleted';
      }
      if (changed !== undefined) {
        throw new DfError(
          'SOURCE_CHANGED',
          `source changed during the download: ${describeHdfsPath(parsed)} is no longer the version the task started with (${changed})`,
        );
      }
    };
    // Passed through as it comes, not through a stream's buffer: the DataNode's chunks are valid only until the
    // next one is asked for (backend.ts, GetResponse.body).
    const body = exactBytes(res.body, req.range?.length, parsed, operation, checkVersion);
    return { statusCode: req.range ? 206 : 200, responseHeader: {}, body };
  }

  /** Every file and directory under a directory URL, depth first, as hdfs URLs (a directory's ends with `/`). */
  async listEntries(req: StatRequest): Promise<DirEntry[]> {
    const parsed = parseHdfsUrl(req.url);
    if (!parsed.isDir) {
      throw new DfError(
        'INVALID_ARGUMENT',
        `${describeHdfsPath(parsed)} is not a directory: a listed URL ends with /`,
      );
    }
    const deadline = Date.now() + req.timeoutMs;
    const entries: DirEntry[] = [];
    const pending = [parsed.path];
    while (pending.length > 0) {
      const dir = pending.pop()!;
      const here: HdfsUrl = { ...parsed, path: dir, isDir: true };
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        throw new DfError('TIMEOUT', `list ${describeHdfsPath(parsed)}: not done within ${req.timeoutMs} ms`);
      }
      const listed = await this.listStatus(here, req, remaining);
      for (const status of listed) {
        if (status.pathSuffix === '') {
          throw new DfError(
            'INVALID_ARGUMENT',
            `${describeHdfsPath(here)} is a file, not a directory: download it without --recursive`,
          );
        }
        // A symlink has no content of its own to fetch (and WebHDFS does not say where it points).
        if (status.type === 'SYMLINK') continue;
        const isDir = status.type === 'DIRECTORY';
        const path = `${dir}${status.pathSuffix}`;
        entries.push({ url: entryUrl(parsed, path, isDir), contentLength: isDir ? 0 : status.length, isDir });
        if (isDir) pending.push(`${path}/`);
      }
      if (entries.length > MAX_LIST_ENTRIES) {
        throw new DfError(
          'RESOURCE_EXHAUSTED',
          `${describeHdfsPath(parsed)} holds more than ${MAX_LIST_ENTRIES} entries: list a narrower directory`,
        );
      }
    }
    return entries;
  }

  async close(): Promise<void> {
    await this.http.close();
  }

  private async fileStatus(
    parsed: HdfsUrl,
    req: StatRequest | GetRequest,
    operation: string,
    timeoutMs: number,
  ): Promise<HdfsFileStatus> {
    const text = await this.call(parsed, 'GETFILESTATUS', req, operation, timeoutMs, MAX_STATUS_BYTES);
    return parseAnswer(text, parseFileStatus, parsed, operation);
  }

  private async listStatus(parsed: HdfsUrl, req: StatRequest, timeoutMs: number): Promise<HdfsFileStatus[]> {
    const text = await this.call(parsed, 'LISTSTATUS', req, 'list', timeoutMs, MAX_LISTING_BYTES);
    return parseAnswer(text, parseFileStatuses, parsed, 'list');
  }

  /** One JSON call to the NameNode, its answer as text. */
  private async call(
    parsed: HdfsUrl,
    op: 'GETFILESTATUS' | 'LISTSTATUS',
    req: { taskId: string; signal?: AbortSignal; remoteCaller?: boolean; hdfs?: HdfsOptions },
    operation: string,
    timeoutMs: number,
    limit: number,
  ): Promise<string> {
    try {
      const res = await this.http.get({
        taskId: req.taskId,
        pieceNumber: 0,
        url: webhdfsUrl(parsed, op, {}, req.hdfs?.delegationToken),
        requestHeader: { accept: 'application/json' },
        timeoutMs,
        signal: req.signal,
        remoteCaller: req.remoteCaller,
      });
      return await readBoundedText(res.body, limit, `${operation} ${describeHdfsPath(parsed)}: the answer`);
    } catch (e) {
      throw hdfsError(e, parsed, operation);
    }
  }
}

/**
 * The piece's bytes as they come, then the version check; fails when the DataNode sends fewer or more bytes
 * than asked for (a file shorter than its stat said ends early, with 200).
 */
async function* exactBytes(
  body: AsyncIterable<Buffer>,
  expected: number | undefined,
  parsed: HdfsUrl,
  operation: string,
  afterLastByte: () => Promise<void>,
): AsyncGenerator<Buffer> {
  let received = 0;
  for await (const chunk of body) {
    received += chunk.length;
    if (expected !== undefined && received > expected) {
      throw new DfError(
        'BACKEND',
        `${operation} ${describeHdfsPath(parsed)}: the DataNode sent more than ${expected} bytes`,
      );
    }
    yield chunk;
  }
  if (expected !== undefined && received < expected) {
    // Shorter than its stat: the file was truncated or replaced, or the read broke off; the version check says
    // which (SOURCE_CHANGED wins), else a retry may help.
    await afterLastByte();
    throw new DfError(
      'BACKEND',
      `${operation} ${describeHdfsPath(parsed)}: the DataNode sent ${received} of ${expected} bytes`,
      { retryable: true },
    );
  }
  await afterLastByte();
}

function parseAnswer<T>(text: string, parse: (json: unknown) => T, parsed: HdfsUrl, operation: string): T {
  try {
    return parse(JSON.parse(text));
  } catch (e) {
    throw new DfError(
      'BACKEND',
      `${operation} ${describeHdfsPath(parsed)}: the NameNode's answer is not WebHDFS JSON (${(e as Error).message})`,
    );
  }
}

/**
 * The http backend's error for a WebHDFS call as one line naming the hdfs path: 404 is the path missing, 401 and
 * 403 the NameNode refusing (a bad or expired delegation token, or the file's permissions).
 */
export function hdfsError(e: unknown, parsed: HdfsUrl, operation: string): unknown {
  if (!(e instanceof DfError)) return e;
  const where = `${operation} ${describeHdfsPath(parsed)}`;
  if (e.code !== 'BACKEND') return e;
  const status = e.backend?.statusCode;
  if (status === 401 || status === 403) {
    return new DfError(
      'PERMISSION_DENIED',
      `${where}: permission denied by hdfs (HTTP ${status}): check --hdfs-delegation-token and the file's permissions`,
    );
  }
  const message =
    status === 404
      ? `${where}: NOT_FOUND: no such file or directory in hdfs (HTTP 404)`
      : `${where}: ${e.message}`;
  return new DfError('BACKEND', message, {
    backend: e.backend ? { ...e.backend, message } : undefined,
    retryable: e.retryable,
    cause: e,
  });
}
