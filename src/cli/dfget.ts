#!/usr/bin/env node
// dfget: download a URL through the local dfdaemon (dragonfly-client/src/bin/dfget/main.rs). dfdaemon does
// the work; dfget asks over the unix socket, shows progress and, in transfer mode, writes the bytes itself.

import { rm, open, type FileHandle } from 'node:fs/promises';
import { Command, Option } from 'commander';
import { Metadata, status as GrpcStatus, type ClientReadableStream, type ServiceError } from '@grpc/grpc-js';
import { parseByteSize } from '../core/bytesize.js';
import { Crc32, pieceDigest, parseDigest } from '../core/digest.js';
import { DfError } from '../core/errors.js';
import { parseDuration } from '../core/humantime.js';
import { MIN_PIECE_LENGTH } from '../core/piece.js';
import { DEFAULT_FILTERED_QUERY_PARAMS } from '../core/task-id.js';
import { Priority, TaskType, type Download } from '../gen/common.js';
import type { DownloadTaskResponse } from '../gen/dfdaemon.js';
import { verifyFileDigest } from '../storage/file-digest.js';
import { PIECE_CHUNKS_METADATA } from '../daemon/grpc/piece-content.js';
import {
  checkOutputPath,
  CONNECT_TIMEOUT_MS,
  connectDaemon,
  defaultSocketPath,
  describeError,
  downloadClient,
  isTransportFailure,
  packageVersion,
} from './common.js';
import { createProgress, type Progress } from './progress.js';

interface DfgetOptions {
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
  progress: boolean;
  endpoint?: string;
  logLevel: string;
  console: boolean;
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export function parseHeaders(lines: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of lines) {
    const at = line.indexOf(':');
    if (at <= 0) throw new DfError('INVALID_ARGUMENT', `invalid header "${line}": expected "Key: Value"`);
    out[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return out;
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
  let pieceLength: number | undefined;
  if (o.pieceLength !== undefined) {
    pieceLength = parseByteSize(o.pieceLength);
    if (pieceLength < MIN_PIECE_LENGTH) {
      throw new DfError(
        'INVALID_ARGUMENT',
        `piece length ${pieceLength} bytes is less than the minimum piece length ${MIN_PIECE_LENGTH} bytes`,
      );
    }
  }
  if (o.digest) parseDigest(o.digest);
  const priority = Number(o.priority);
  if (!Number.isInteger(priority) || priority < 0 || priority > 6) {
    throw new DfError('INVALID_ARGUMENT', `invalid priority "${o.priority}": expected 0 to 6`);
  }
  return { output, pieceLength, timeoutMs: parseDuration(o.timeout) };
}

/**
 * Transfer mode: the pieces arrive in the responses; we write them at their offsets, verified by CRC. dfdaemon
 * sends a piece in parts when we ask for that (PIECE_CHUNKS_METADATA): messages of the same piece number, each with
 * its part's offset and length, in order; the piece's digest is checked once its last part is written.
 */
class TransferWriter {
  private fh?: FileHandle;
  private readonly specs = new Map<number, { offset: number; length: number }>();
  private readonly partial = new Map<number, { crc: Crc32; next: number }>();
  private received = new Set<number>();

  constructor(private readonly path: string) {}

  async open(): Promise<void> {
    this.fh = await open(this.path, 'w', 0o644);
  }

  async started(
    contentLength: number,
    pieces: ReadonlyArray<{ number: number; offset: number; length: number }>,
  ): Promise<void> {
    for (const p of pieces) this.specs.set(p.number, { offset: p.offset, length: p.length });
    await this.fh!.truncate(contentLength);
  }

  async piece(p: {
    number: number;
    offset: number;
    length: number;
    digest: string;
    content?: Buffer;
  }): Promise<void> {
    const { number, offset, digest, content } = p;
    if (!content) throw new DfError('INTERNAL', `piece ${number} arrived without content`);
    const spec = this.specs.get(number);
    if (!spec) throw new DfError('INTERNAL', `piece ${number} arrived but was not announced`);
    const end = spec.offset + spec.length;
    if (offset === spec.offset && content.length === spec.length) {
      if (digest && pieceDigest(content) !== digest) throw mismatch(number, digest);
      await this.write(content, offset);
      this.received.add(number);
      return;
    }
    // A part of the piece: the next one in order, inside the piece.
    const part = this.partial.get(number) ?? { crc: new Crc32(), next: spec.offset };
    if (offset !== part.next || offset + content.length > end || content.length === 0) {
      throw new DfError(
        'INTERNAL',
        `piece ${number}: unexpected part of ${content.length} bytes at offset ${offset} (expected offset ${part.next})`,
      );
    }
    part.crc.update(content);
    part.next += content.length;
    if (part.next < end) this.partial.set(number, part);
    else {
      this.partial.delete(number);
      if (digest && part.crc.digest() !== digest) throw mismatch(number, digest);
    }
    await this.write(content, offset);
    if (part.next === end) this.received.add(number);
  }

  private async write(content: Buffer, offset: number): Promise<void> {
    let done = 0;
    while (done < content.length) {
      done += (await this.fh!.write(content, done, content.length - done, offset + done)).bytesWritten;
    }
  }

  async close(): Promise<void> {
    await this.fh?.close();
    this.fh = undefined;
    if (this.received.size !== this.specs.size) {
      throw new DfError(
        'INTERNAL',
        `download ended with ${this.specs.size - this.received.size} pieces missing`,
      );
    }
  }

  async abort(): Promise<void> {
    await this.fh?.close().catch(() => undefined);
  }
}

function mismatch(number: number, digest: string): DfError {
  return new DfError('DIGEST_MISMATCH', `piece ${number} content does not match its digest ${digest}`);
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

async function download(url: string, o: DfgetOptions): Promise<void> {
  const { output, pieceLength, timeoutMs } = await validate(url, o);
  const log = await consoleLogger(o);
  const socket = o.endpoint ?? (await defaultSocketPath());
  log?.debug({ socket, url, output }, 'connecting to dfdaemon');
  const client = downloadClient(socket);
  const progress = await createProgress(url, o.progress);
  const deadline = Date.now() + timeoutMs;
  try {
    await connectDaemon(client, socket, Math.min(CONNECT_TIMEOUT_MS, timeoutMs));
    for (let attempt = 0; ; attempt++) {
      try {
        await downloadOnce(client, url, o, { output, pieceLength, timeoutMs, deadline }, progress, log);
        return;
      } catch (e) {
        if ((e as Partial<ServiceError>).code !== GrpcStatus.ABORTED || attempt >= SOURCE_CHANGED_RETRIES)
          throw e;
        log?.warn({ err: describeError(e) }, 'the source changed during the download; downloading again');
      }
    }
  } finally {
    progress.stop();
    client.close();
  }
}

async function downloadOnce(
  client: ReturnType<typeof downloadClient>,
  url: string,
  o: DfgetOptions,
  args: { output: string; pieceLength?: number; timeoutMs: number; deadline: number },
  progress: Progress,
  log: Awaited<ReturnType<typeof consoleLogger>>,
): Promise<void> {
  const { output, pieceLength, timeoutMs, deadline } = args;
  const transfer = o.transferFromDfdaemon ? new TransferWriter(output) : undefined;
  // Set once the output may hold our bytes (a link made by dfdaemon, or our own file): only then is it ours to
  // remove on failure. Before that, an existing file the user allowed us to --overwrite is left alone.
  let touched = false;
  let stream: ClientReadableStream<DownloadTaskResponse> | undefined;
  try {
    const req: Download = {
      url,
      digest: o.digest,
      type: TaskType.STANDARD,
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
      certificateChain: [],
      prefetch: false,
      isPrefetch: false,
      needPieceContent: !!transfer,
      forceHardLink: o.forceHardLink,
      contentForCalculatingTaskId: o.contentForCalculatingTaskId,
      overwrite: o.overwrite,
      enableTaskIdBasedBlobDigest: false,
      metadataOnly: false,
    };
    if (transfer) {
      await transfer.open();
      touched = true;
    }
    // In transfer mode we take pieces in parts, so that dfdaemon never holds a whole piece for us.
    const metadata = new Metadata();
    if (transfer) metadata.set(PIECE_CHUNKS_METADATA, 'true');
    stream = client.downloadTask({ download: req }, metadata, { deadline });
    for await (const res of stream as AsyncIterable<DownloadTaskResponse>) {
      const s = res.downloadTaskStartedResponse;
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
      const p = res.downloadPieceFinishedResponse?.piece;
      if (p) {
        log?.debug({ piece: p.number, length: p.length, trafficType: p.trafficType }, 'piece finished');
        await transfer?.piece(p);
        progress.advance(p.length);
      }
    }
    await transfer?.close();
    // dfdaemon verifies --digest (and drops the task on a mismatch); in transfer mode we check it here too, as a
    // dfdaemon of upstream's does not.
    if (transfer && o.digest) await verifyFileDigest(output, o.digest);
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
          `(${(e as ServiceError).details}): did it stop or crash? See its log`,
      );
    }
    throw e;
  }
}

export function dfgetCommand(): Command {
  return new Command('dfget')
    .description('Download a file through dfdaemon (P2P, with back-to-source).')
    .argument('<url>', 'URL of the file to download')
    .requiredOption('-O, --output <path>', 'where to write the file')
    .addOption(
      new Option('--transfer-from-dfdaemon', 'receive the bytes over the socket instead of a hard link/copy')
        .env('DFGET_TRANSFER_FROM_DFDAEMON')
        .default(false),
    )
    .option('--overwrite', 'replace the output file if it exists', false)
    .option('--force-hard-link', 'fail unless the output can be hard-linked to the stored content', false)
    .option(
      '--content-for-calculating-task-id <str>',
      'compute the task id from this string instead of the URL',
    )
    .option('--timeout <duration>', 'give up after this long (humantime, e.g. 30m)', '2h')
    .option('--digest <alg:hex>', 'verify the file: crc32:<decimal>, sha256:<hex> or sha512:<hex>')
    .option('-p, --priority <n>', 'task priority, 0 to 6', '6')
    .option('--piece-length <size>', 'piece length, at least 4MiB (e.g. 16MiB)')
    .option('--application <name>', 'caller application, part of the task id', '')
    .option('--tag <tag>', 'task tag, part of the task id', '')
    .option('-H, --header <header>', "request header 'Key: Value' for the source (repeatable)", collect, [])
    .option(
      '--filtered-query-param <param>',
      'query parameter left out of the task id (repeatable; default: the built-in signing parameters)',
      collect,
    )
    .option('--disable-back-to-source', 'never fetch from the source', false)
    .option('--no-progress', 'hide the progress bar')
    .option('-e, --endpoint <socket>', 'dfdaemon download socket')
    .option('-l, --log-level <level>', 'log level', 'info')
    .option('--console', 'log to the console', false)
    .version(`dfget ${packageVersion()}`, '-V, --version')
    .action(async (url: string, o: DfgetOptions) => {
      try {
        await download(url, o);
      } catch (e) {
        process.stderr.write(`Error: ${describeError(e)}\n`);
        process.exitCode = 1;
        // Nothing should be left running after an error; should anything still hold the event loop, exit anyway
        // (the timer is unref'd: it fires only in that case, after stderr had time to drain).
        setTimeout(() => process.exit(1), 1000).unref();
      }
    });
}

await dfgetCommand().parseAsync(process.argv);
