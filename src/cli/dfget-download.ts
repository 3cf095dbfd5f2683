// What dfget does once its arguments are parsed: check them, ask dfdaemon over the unix socket (DownloadTask),
// show progress and, in transfer mode, write the bytes. dfget.ts loads this module only to download, so that
// `dfget --version` and `--help` load no gRPC client. The download itself goes through the small HTTP/2 client
// (grpc/http2-client.ts) and the hand-written DownloadTask codec, not grpc-js and the generated code: loading
// those took longer than the whole download of a cached file (docs/benchmarks.md, "Start-up"). Only a directory
// download, which lists entries first, loads grpc-js (daemon-client.ts).

import { rm } from 'node:fs/promises';
import { DfError, GrpcCode } from '../core/errors.js';
import { parseDuration } from '../core/humantime.js';
import { PIECE_CHUNKS_METADATA } from '../core/piece-chunks.js';
import { DEFAULT_FILTERED_QUERY_PARAMS } from '../core/filtered-query-params.js';
import type { Download, HDFS, ObjectStorage, Priority } from '../gen/common.js';
import type { GrpcHttp2Client, ServerStreamCall } from '../grpc/http2-client.js';
import type { PendingConnection } from '../grpc/pending-connection.js';
import {
  checkOutputPath,
  CONNECT_TIMEOUT_MS,
  defaultSocketPath,
  describeError,
  isTransportFailure,
  parseHeaders,
  parsePieceLength,
} from './common.js';
import { openDaemonChannel } from './daemon-channel.js';
import {
  decodeDownloadTaskResponse,
  DOWNLOAD_TASK_PATH,
  encodeDownloadTaskRequest,
  SCHEDULING_POLICY,
  TASK_TYPE_STANDARD,
} from './download-task-codec.js';
import { createProgress, type Progress } from './progress.js';
import type { TransferWriter } from './transfer-writer.js';
import type { HubMessages } from './dfget-directory.js';
import { isObjectStorageScheme } from '../core/object-storage-scheme.js';
import { objectStorageFrom } from './object-storage-flags.js';
import type { StorageFlags } from './storage-options.js';

export interface DfgetOptions extends StorageFlags {
  output: string;
  transferFromDfdaemon: boolean;
  overwrite: boolean;
  forceHardLink: boolean;
  contentForCalculatingTaskId?: string;
  timeout: string;
  digest?: string;
  priority: string;
  pieceLength?: string;
  application: string;
  tag: string;
  header: string[];
  filteredQueryParam?: string[];
  disableBackToSource: boolean;
  schedulingPolicy: 'auto' | 'always';
  progress: boolean;
  endpoint?: string;
  logLevel: string;
  console: boolean;
  recursive: boolean;
  includeFiles: string[];
  maxFiles: string;
  maxConcurrentRequests: string;
  hfRevision: string;
  hfToken?: string;
  hfBaseUrl?: string;
  msRevision: string;
  msToken?: string;
  msBaseUrl?: string;
  csgRevision: string;
  csgToken?: string;
  csgBaseUrl?: string;
  hdfsDelegationToken?: string;
}

/** Checks the arguments before contacting dfdaemon, as upstream's validate_args. */
async function validate(
  url: string,
  o: DfgetOptions,
): Promise<{ output: string; pieceLength?: number; timeoutMs: number }> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new DfError('INVALID_ARGUMENT', `invalid URL "${url}"`);
  }
  if (
    parsed.pathname.endsWith('/') &&
    parsed.pathname !== '/' &&
    ['http:', 'https:'].includes(parsed.protocol)
  ) {
    throw new DfError(
      'INVALID_ARGUMENT',
      `directory download is unsupported for ${parsed.protocol.slice(0, -1)} (URL path ends with /)`,
    );
  }
  const output = await checkOutputPath(o.output, o.overwrite);
  const pieceLength = parsePieceLength(o.pieceLength);
  if (o.digest) (await import('../core/digest.js')).parseDigest(o.digest);
  const priority = Number(o.priority);
  if (!Number.isInteger(priority) || priority < 0 || priority > 6) {
    throw new DfError('INVALID_ARGUMENT', `invalid priority "${o.priority}": expected 0 to 6`);
  }
  return { output, pieceLength, timeoutMs: parseDuration(o.timeout) };
}

/**
 * dfget logs only with --console (to stderr, at --log-level): pino costs tens of milliseconds to load, which a
 * one-shot download of a cached file should not pay.
 */
async function consoleLogger(o: DfgetOptions) {
  if (!o.console) return undefined;
  const { createLogger } = await import('./logging.js');
  return createLogger({ name: 'dfget', level: o.logLevel, console: true });
}

/**
 * dfdaemon answers ABORTED (DfError SOURCE_CHANGED) when the origin's object changed during the download: it
 * dropped the task, so one more download fetches the new version from the start. dfget does that once, by itself;
 * a second change in a row is reported.
 */
const SOURCE_CHANGED_RETRIES = 1;

async function download(url: string, o: DfgetOptions, pending?: PendingConnection): Promise<void> {
  const { output, pieceLength, timeoutMs } = await validate(url, o);
  const log = await consoleLogger(o);
  const socket = o.endpoint ?? (await defaultSocketPath());
  log?.debug({ socket, url, output }, 'connecting to dfdaemon');
  const deadline = Date.now() + timeoutMs;
  const client = await openDaemonChannel(socket, Math.min(CONNECT_TIMEOUT_MS, timeoutMs), pending);
  const progress = await createProgress(url, o.progress);
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        await downloadOnce(client, url, o, { output, pieceLength, timeoutMs, deadline }, progress, log);
        return;
      } catch (e) {
        if ((e as { code?: unknown }).code !== GrpcCode.ABORTED || attempt >= SOURCE_CHANGED_RETRIES) throw e;
        log?.warn({ err: describeError(e) }, 'the source changed during the download; downloading again');
      }
    }
  } finally {
    progress.stop();
    client.close();
  }
}

async function downloadOnce(
  client: GrpcHttp2Client,
  url: string,
  o: DfgetOptions,
  args: { output: string; pieceLength?: number; timeoutMs: number; deadline: number },
  progress: Progress,
  log: Awaited<ReturnType<typeof consoleLogger>>,
): Promise<void> {
  const { output, pieceLength, timeoutMs, deadline } = args;
  const transfer: TransferWriter | undefined = o.transferFromDfdaemon
    ? new (await import('./transfer-writer.js')).TransferWriter(output)
    : undefined;
  // Set once the output may hold our bytes (a link made by dfdaemon, or our own file): only then is it ours to
  // remove on failure. Before that, an existing file the user allowed us to --overwrite is left alone.
  let touched = false;
  let stream: ServerStreamCall | undefined;
  try {
    const req: Download = {
      url,
      digest: o.digest,
      type: TASK_TYPE_STANDARD,
      tag: o.tag || undefined,
      application: o.application || undefined,
      priority: Number(o.priority) as Priority,
      filteredQueryParams: o.filteredQueryParam ?? [...DEFAULT_FILTERED_QUERY_PARAMS],
      requestHeader: parseHeaders(o.header),
      pieceLength,
      outputPath: transfer ? undefined : output,
      timeout: { seconds: Math.floor(timeoutMs / 1000), nanos: (timeoutMs % 1000) * 1e6 },
      disableBackToSource: o.disableBackToSource,
      needBackToSource: false,
      schedulingPolicy: SCHEDULING_POLICY[o.schedulingPolicy],
      certificateChain: [],
      prefetch: false,
      isPrefetch: false,
      needPieceContent: !!transfer,
      forceHardLink: o.forceHardLink,
      contentForCalculatingTaskId: o.contentForCalculatingTaskId,
      overwrite: o.overwrite,
      enableTaskIdBasedBlobDigest: false,
      metadataOnly: false,
      objectStorage: objectStorageOf(url, o),
      hdfs: hdfsOf(url, o),
      ...hubOf(url, o),
    };
    if (transfer) {
      await transfer.open();
      touched = true;
    }
    // In transfer mode we take pieces in parts, so that dfdaemon never holds a whole piece for us.
    const metadata = transfer ? { [PIECE_CHUNKS_METADATA]: 'true' } : undefined;
    stream = client.serverStream(DOWNLOAD_TASK_PATH, encodeDownloadTaskRequest(req), { metadata, deadline });
    for await (const message of stream) {
      const res = decodeDownloadTaskResponse(message);
      const s = res.started;
      if (s) {
        log?.info(
          { taskId: res.taskId, peerId: res.peerId, contentLength: s.contentLength, pieces: s.pieces.length },
          'download started',
        );
        touched = true;
        progress.start(s.contentLength);
        await transfer?.started(s.contentLength, s.pieces);
        continue;
      }
      const p = res.piece;
      if (p) {
        log?.debug({ piece: p.number, length: p.length, trafficType: p.trafficType }, 'piece finished');
        await transfer?.piece(p);
        progress.advance(p.length);
      }
    }
    await transfer?.close();
    // dfdaemon verifies --digest (and drops the task on a mismatch); in transfer mode we check it here too, as a
    // dfdaemon of upstream's does not.
    if (transfer && o.digest)
      await (await import('../storage/file-digest.js')).verifyFileDigest(output, o.digest);
    log?.info({ output }, 'download finished');
  } catch (e) {
    // An error of our own (a piece that fails its digest, a full output disk) leaves the call open on dfdaemon's
    // side; cancel it, or it keeps this process alive until the deadline (2 h by default) and dfdaemon sending.
    stream?.cancel();
    await transfer?.abort();
    if (touched) await rm(output, { force: true }).catch(() => undefined);
    // connectDaemon succeeded before this call: a broken connection now is dfdaemon going away mid-download, not a
    // daemon that is not running.
    if (isTransportFailure(e)) {
      throw new DfError(
        'UNAVAILABLE',
        `dfdaemon closed the connection ${touched ? 'during' : 'before the start of'} the download ` +
          `(${(e as { details: string }).details}): did it stop or crash? See its log`,
      );
    }
    throw e;
  }
}

/** The --storage-* flags as common.v2.ObjectStorage, for the object storage schemes only (as upstream). */
function objectStorageOf(url: string, o: DfgetOptions): ObjectStorage | undefined {
  const scheme = url.slice(0, Math.max(0, url.indexOf(':')));
  if (!isObjectStorageScheme(scheme)) return undefined;
  return objectStorageFrom(o);
}

/** --hdfs-delegation-token as common.v2.HDFS, for hdfs:// only (as upstream). */
function hdfsOf(url: string, o: DfgetOptions): HDFS | undefined {
  if (!url.startsWith('hdfs:')) return undefined;
  return { delegationToken: o.hdfsDelegationToken };
}

/** The --hf-*, --ms-* or --csg-* flags as the Download's hub message, for that hub's scheme only (as upstream). */
export function hubOf(url: string, o: DfgetOptions): HubMessages {
  const scheme = url.slice(0, Math.max(0, url.indexOf(':')));
  if (scheme === 'hf')
    return { huggingFace: { revision: o.hfRevision, token: o.hfToken, baseUrl: o.hfBaseUrl } };
  if (scheme === 'modelscope') {
    return { modelScope: { revision: o.msRevision, token: o.msToken, baseUrl: o.msBaseUrl } };
  }
  if (scheme === 'opencsg')
    return { openCsg: { revision: o.csgRevision, token: o.csgToken, baseUrl: o.csgBaseUrl } };
  return {};
}

function positiveInteger(flag: string, value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new DfError(
      'INVALID_ARGUMENT',
      `invalid ${flag} "${value}": expected a whole number of at least 1`,
    );
  }
  return n;
}

/** `-r` appends the `/` that makes the URL a directory (upstream convert_args). */
function directoryUrl(url: string, recursive: boolean): string {
  if (!recursive) return url;
  try {
    const u = new URL(url);
    if (!u.pathname.endsWith('/')) u.pathname += '/';
    return u.href;
  } catch {
    return url;
  }
}

function isDirectoryUrl(url: string): boolean {
  try {
    const u = new URL(url);
    return u.pathname.endsWith('/') && !['http:', 'https:'].includes(u.protocol);
  } catch {
    return false;
  }
}

/** A directory download: listed by dfdaemon, each file its own task (dfget-directory.ts). */
async function downloadDir(url: string, o: DfgetOptions): Promise<void> {
  const maxFiles = positiveInteger('--max-files', o.maxFiles);
  const maxConcurrentRequests = positiveInteger('--max-concurrent-requests', o.maxConcurrentRequests);
  const timeoutMs = parseDuration(o.timeout);
  const log = await consoleLogger(o);
  const socket = o.endpoint ?? (await defaultSocketPath());
  const { connectDaemon, downloadClient } = await import('./daemon-client.js');
  const { downloadDirectory } = await import('./dfget-directory.js');
  const client = downloadClient(socket);
  try {
    await connectDaemon(client, socket, Math.min(CONNECT_TIMEOUT_MS, timeoutMs));
    await downloadDirectory({
      url,
      output: o.output,
      includeFiles: o.includeFiles,
      maxFiles,
      maxConcurrentRequests,
      requestHeader: parseHeaders(o.header),
      objectStorage: objectStorageOf(url, o),
      hub: hubOf(url, o),
      hdfs: hdfsOf(url, o),
      timeoutMs,
      client,
      log,
      // One progress bar per file would interleave; the directory's files are logged instead (--console).
      downloadFile: (fileUrl, output) => download(fileUrl, { ...o, output, progress: false }),
    });
  } finally {
    client.close();
  }
}

/**
 * The download of `dfget URL -O PATH`: on failure one line on stderr and exit code 1. `pending` is the connection
 * to dfdaemon's socket dfget.ts opened while this module loaded; a single file's download speaks on it.
 */
export async function runDfget(url: string, o: DfgetOptions, pending?: PendingConnection): Promise<void> {
  try {
    const target = directoryUrl(url, o.recursive);
    if (isDirectoryUrl(target)) {
      pending?.destroy();
      await downloadDir(target, o);
    } else await download(target, o, pending);
  } catch (e) {
    process.stderr.write(`Error: ${describeError(e)}\n`);
    process.exitCode = 1;
    // Nothing should be left running after an error; should anything still hold the event loop, exit anyway
    // (the timer is unref'd: it fires only in that case, after stderr had time to drain).
    setTimeout(() => process.exit(1), 1000).unref();
  } finally {
    // Taken over by the download (and closed with it) or never used: an argument was wrong.
    pending?.destroy();
  }
}
