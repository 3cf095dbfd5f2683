// What dfcache and dfstore share: -e/-l/--console on every command, the import path's checks, and receiving an
// export's stream (transfer mode writes the pieces itself; a failed export leaves nothing at the output path).

import type { ClientReadableStream } from '@grpc/grpc-js';
import { open, rm as rmFile, stat as statFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Option, type Command } from 'commander';
import { DfError } from '../core/errors.js';
import type { Piece } from '../gen/common.js';
import { verifyFileDigest } from '../storage/file-digest.js';
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
