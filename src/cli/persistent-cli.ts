// What dfcache and dfstore share: -e/-l/--console on every command, the import's and the export's common flags and
// their checks, and receiving an export's stream (transfer mode writes the pieces itself; a failed export leaves
// nothing at the output path).

import type { ClientReadableStream } from '@grpc/grpc-js';
import { open, rm as rmFile, stat as statFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Option, type Command } from 'commander';
import { parseDigest } from '../core/digest.js';
import { msToDuration } from '../core/duration.js';
import { DfError } from '../core/errors.js';
import { parseDuration } from '../core/humantime.js';
import {
  checkPersistentCacheTtl,
  checkPersistentReplicaCount,
  DEFAULT_PERSISTENT_REPLICA_COUNT,
} from '../core/persistent-cache.js';
import type { Piece } from '../gen/common.js';
import { verifyFileDigest } from '../storage/file-digest.js';
import { checkOutputPath, describeError } from './common.js';
import { createProgress } from './progress.js';

export interface CommonOptions {
  endpoint?: string;
  logLevel: string;
  console: boolean;
}

/** -e, -l and --console on every command, each with its own environment variable as upstream. */
export function withCommon(c: Command, env: string): Command {
  return c
    .addOption(
      new Option('-e, --endpoint <socket>', "dfdaemon's download socket").env(`${env}_DFDAEMON_ENDPOINT`),
    )
    .addOption(
      new Option('-l, --log-level <level>', 'log level [trace, debug, info, warn, error]')
        .default('info')
        .env(`${env}_LOG_LEVEL`),
    )
    .addOption(new Option('--console', 'log to the console').default(false).env(`${env}_CONSOLE`));
}

/** The flags of `import` both commands have. */
export interface ImportFlags {
  persistentReplicaCount: string;
  ttl: string;
  timeout: string;
  progress: boolean;
}

/** --persistent-replica-count, --ttl, --timeout and --no-progress, with upstream's defaults and variables. */
export function addImportOptions(c: Command, env: string): Command {
  return c
    .addOption(
      new Option('--persistent-replica-count <n>', 'peers that keep a copy, the importer included')
        .default(String(DEFAULT_PERSISTENT_REPLICA_COUNT))
        .env(`${env}_PERSISTENT_REPLICA_COUNT`),
    )
    .addOption(
      new Option('--ttl <duration>', 'how long the cluster keeps the task, 5m to 7d')
        .default('1h')
        .env(`${env}_TTL`),
    )
    .addOption(
      new Option('--timeout <duration>', 'give up after this long').default('30m').env(`${env}_TIMEOUT`),
    )
    .addOption(new Option('--no-progress', 'hide the progress display').env(`${env}_NO_PROGRESS`));
}

/** The import's limits checked as upstream's validate_args (and its path: checkImportPath). */
export async function checkImport(
  path: string,
  o: ImportFlags,
): Promise<{ abs: string; ttlMs: number; replicas: number; timeoutMs: number }> {
  const ttlMs = parseDuration(o.ttl);
  checkPersistentCacheTtl(ttlMs);
  if (!/^\d+$/.test(o.persistentReplicaCount.trim())) {
    throw new DfError(
      'INVALID_ARGUMENT',
      `persistent replica count must be a whole number, but got "${o.persistentReplicaCount}"`,
    );
  }
  const replicas = Number(o.persistentReplicaCount);
  checkPersistentReplicaCount(replicas);
  return { abs: await checkImportPath(path), ttlMs, replicas, timeoutMs: parseDuration(o.timeout) };
}

/** Runs the import call with a dot a second on a terminal (the Rust clients' spinner), unless --no-progress. */
export async function withSpinner<T>(progress: boolean, f: () => Promise<T>): Promise<T> {
  const spinner =
    progress && process.stderr.isTTY ? setInterval(() => process.stderr.write('.'), 1000) : undefined;
  try {
    const r = await f();
    if (spinner) process.stderr.write('\n');
    return r;
  } finally {
    if (spinner) clearInterval(spinner);
  }
}

/** The flags of `export` both commands have. */
export interface ExportFlags {
  output: string;
  transferFromDfdaemon: boolean;
  overwrite: boolean;
  forceHardLink: boolean;
  timeout: string;
  digest?: string;
  progress: boolean;
}

/** -O, --transfer-from-dfdaemon, --overwrite, --force-hard-link, --timeout, --digest and --no-progress. */
export function addExportOptions(c: Command, env: string): Command {
  return c
    .requiredOption('-O, --output <path>', 'where to write the file')
    .addOption(
      new Option('--transfer-from-dfdaemon', 'receive the bytes over the socket instead of a hard link/copy')
        .default(false)
        .env(`${env}_TRANSFER_FROM_DFDAEMON`),
    )
    .addOption(
      new Option('--overwrite', 'replace the output file if it exists')
        .default(false)
        .env(`${env}_OVERWRITE`),
    )
    .addOption(
      new Option('--force-hard-link', 'fail unless the output can be hard-linked to the stored content')
        .default(false)
        .env(`${env}_FORCE_HARD_LINK`),
    )
    .addOption(
      new Option('--timeout <duration>', 'give up after this long').default('2h').env(`${env}_TIMEOUT`),
    )
    .addOption(
      new Option('--digest <alg:hex>', 'verify the file: crc32, sha256 or sha512').env(`${env}_DIGEST`),
    )
    .addOption(new Option('--no-progress', 'hide the progress bar').env(`${env}_NO_PROGRESS`));
}

/** The export's flags checked before dfdaemon is asked; the output path as checkOutputPath answers it. */
export async function checkExport(o: ExportFlags): Promise<{ output: string; timeoutMs: number }> {
  const timeoutMs = parseDuration(o.timeout);
  if (o.digest) parseDigest(o.digest);
  if (o.overwrite && o.forceHardLink) {
    throw new DfError('INVALID_ARGUMENT', '--overwrite cannot be used with --force-hard-link');
  }
  return { output: await checkOutputPath(o.output, o.overwrite), timeoutMs };
}

/** The fields of a Download{PersistentCache,Persistent}TaskRequest that come from the export's flags. */
export function exportRequestFields(o: ExportFlags, output: string, timeoutMs: number) {
  const transfer = o.transferFromDfdaemon;
  return {
    persistent: false,
    outputPath: transfer ? undefined : output,
    timeout: msToDuration(timeoutMs),
    needPieceContent: transfer,
    forceHardLink: o.forceHardLink,
    digest: transfer ? undefined : o.digest,
    overwrite: o.overwrite,
  };
}

/** Prints the one-line error of a check that failed before dfdaemon was asked, and sets the exit code. */
export function refuse(e: unknown): void {
  process.stderr.write(`Error: ${describeError(e)}\n`);
  process.exitCode = 1;
}

/** The file to import as an absolute path, checked as upstream's validate_args: it exists and is a file. */
export async function checkImportPath(path: string): Promise<string> {
  const abs = resolve(path);
  const st = await statFile(abs).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT' || e.code === 'ENOTDIR')
      throw new DfError('INVALID_ARGUMENT', `path ${path} does not exist`);
    throw new DfError('INVALID_ARGUMENT', `path ${path}: ${e.message}`);
  });
  if (st.isDirectory()) throw new DfError('INVALID_ARGUMENT', `path ${path} is a directory`);
  if (!st.isFile()) throw new DfError('INVALID_ARGUMENT', `path ${path} is not a regular file`);
  return abs;
}

/** One message of a Download{PersistentCache,Persistent}TaskResponse stream. */
export interface ExportResponse {
  downloadPieceFinishedResponse?: { piece?: Piece };
}

export interface ReceiveOptions<R extends ExportResponse> {
  /** The checked output path. */
  output: string;
  overwrite: boolean;
  /** --transfer-from-dfdaemon: the pieces' bytes come over the socket and are written here. */
  transfer: boolean;
  digest?: string;
  progress: boolean;
  /** What the progress display names. */
  label: string;
  /** The content length of the kind's Started message, if `res` is one. */
  started: (res: R) => number | undefined;
}

/** Reads an export's stream to its end, writing the pieces in transfer mode; cancels it on failure. */
export async function receiveExport<R extends ExportResponse>(
  stream: ClientReadableStream<R>,
  o: ReceiveOptions<R>,
): Promise<void> {
  const progress = await createProgress(o.label, o.progress);
  const file = o.transfer ? await open(o.output, o.overwrite ? 'w' : 'wx', 0o644) : undefined;
  let received = 0;
  let expected = -1;
  // Once dfdaemon started the export, the output path may be a hard link to its copy: an export that fails
  // afterwards removes it, as dfget does, so no half-written or unverified file is left at the user's path.
  let touched = !!file;
  try {
    for await (const res of stream as AsyncIterable<R>) {
      const contentLength = o.started(res);
      if (contentLength !== undefined) {
        touched = true;
        expected = contentLength;
        progress.start(expected);
        await file?.truncate(expected);
        continue;
      }
      const p = res.downloadPieceFinishedResponse?.piece;
      if (!p) continue;
      if (file) {
        if (!p.content || p.content.length !== p.length) {
          throw new DfError('INTERNAL', `piece ${p.number} came without its ${p.length} bytes`);
        }
        await file.write(p.content, 0, p.length, p.offset);
      }
      received += p.length;
      progress.advance(p.length);
    }
    progress.stop();
    if (file) {
      await file.close();
      if (received !== expected) {
        throw new DfError('INTERNAL', `export ended after ${received} of ${expected} bytes`);
      }
      if (o.digest) await verifyFileDigest(o.output, o.digest);
    }
  } catch (e) {
    progress.stop();
    stream.cancel();
    await file?.close().catch(() => undefined);
    if (touched) await rmFile(o.output, { force: true });
    throw e;
  }
}
