#!/usr/bin/env node
// dfstore: persistent tasks backed by object storage (dragonfly-client/src/bin/dfstore). `import PATH --url URL`
// writes the file as the object (dfdaemon puts it in concurrent parts) and keeps it in the P2P cluster (the
// scheduler places replicas on other peers); `export URL -O OUT` fetches it from the peers holding it, taking what
// no peer has from the object store. The task is named by the object: its URL, --storage-region and
// --storage-endpoint (both required, as upstream's dfdaemon requires them). Everything goes over the local
// dfdaemon's socket; flags, defaults and environment variables are upstream's.

import { Command, Option } from 'commander';
import { Metadata } from '@grpc/grpc-js';
import { parseDigest } from '../core/digest.js';
import { msToDuration } from '../core/duration.js';
import { DfError } from '../core/errors.js';
import { parseDuration } from '../core/humantime.js';
import {
  checkPersistentCacheTtl,
  checkPersistentReplicaCount,
  DEFAULT_PERSISTENT_REPLICA_COUNT,
} from '../core/persistent-cache.js';
import { persistentTaskIdOf } from '../core/persistent-task.js';
import type { ObjectStorage, PersistentTask } from '../gen/common.js';
import type { DfdaemonDownloadClient, DownloadPersistentTaskResponse } from '../gen/dfdaemon.js';
import { checkOutputPath, describeError, unary, withDaemon as withConnectedDaemon } from './common.js';
import { objectStorageFrom } from './object-storage-flags.js';
import { checkImportPath, receiveExport, withCommon, type CommonOptions } from './persistent-cli.js';
import { addStorageOptions, type StorageFlags } from './storage-options.js';
import { packageVersion } from './version.js';

interface ImportOptions extends CommonOptions, StorageFlags {
  url: string;
  persistentReplicaCount: string;
  ttl: string;
  timeout: string;
  progress: boolean;
}

interface ExportOptions extends CommonOptions, StorageFlags {
  output: string;
  transferFromDfdaemon: boolean;
  overwrite: boolean;
  forceHardLink: boolean;
  timeout: string;
  digest?: string;
  progress: boolean;
}

function withDaemon(
  o: CommonOptions,
  fn: (client: DfdaemonDownloadClient, socket: string) => Promise<void>,
): Promise<void> {
  return withConnectedDaemon(o, 'dfstore', fn);
}

/**
 * The object's URL as upstream sends it (Rust's Url::to_string, which Node's URL matches for these schemes), and
 * its storage settings; the task id is checked here so that a missing region or endpoint is told before dfdaemon
 * is asked.
 */
function objectOf(url: string, o: StorageFlags): { url: string; objectStorage: ObjectStorage } {
  let normalized: string;
  try {
    normalized = new URL(url).toString();
  } catch {
    throw new DfError('INVALID_ARGUMENT', `url ${JSON.stringify(url.slice(0, 200))} is not a URL`);
  }
  const objectStorage = objectStorageFrom(o);
  persistentTaskIdOf(normalized, objectStorage);
  return { url: normalized, objectStorage };
}

/** Prints the one-line error and sets the exit code; a check failed before dfdaemon was asked. */
function refuse(e: unknown): void {
  process.stderr.write(`Error: ${describeError(e)}\n`);
  process.exitCode = 1;
}

async function importFile(path: string, o: ImportOptions): Promise<void> {
  let v;
  try {
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
    v = { ttlMs, replicas, abs: await checkImportPath(path), timeoutMs: parseDuration(o.timeout) };
    v = { ...v, ...objectOf(o.url, o) };
  } catch (e) {
    return refuse(e);
  }
  const { url, objectStorage, abs, replicas, ttlMs, timeoutMs } = v;
  await withDaemon(o, async (client) => {
    const spinner =
      o.progress && process.stderr.isTTY ? setInterval(() => process.stderr.write('.'), 1000) : undefined;
    try {
      const task = await unary<PersistentTask>((cb) =>
        client.uploadPersistentTask(
          {
            url,
            objectStorage,
            path: abs,
            persistentReplicaCount: replicas,
            ttl: msToDuration(ttlMs),
            timeout: msToDuration(timeoutMs),
          },
          new Metadata(),
          { deadline: Date.now() + timeoutMs },
          cb,
        ),
      );
      if (spinner) process.stderr.write('\n');
      if (o.progress) process.stderr.write(`Done: ${url}\n`);
      process.stdout.write(`${task.id}\n`);
    } finally {
      if (spinner) clearInterval(spinner);
    }
  });
}

async function exportFile(rawUrl: string, o: ExportOptions): Promise<void> {
  const timeoutMs = parseDuration(o.timeout);
  let output: string;
  let object: ReturnType<typeof objectOf>;
  try {
    object = objectOf(rawUrl, o);
    if (o.digest) parseDigest(o.digest);
    if (o.overwrite && o.forceHardLink) {
      throw new DfError('INVALID_ARGUMENT', '--overwrite cannot be used with --force-hard-link');
    }
    output = await checkOutputPath(o.output, o.overwrite);
  } catch (e) {
    return refuse(e);
  }
  await withDaemon(o, async (client) => {
    const transfer = o.transferFromDfdaemon;
    const stream = client.downloadPersistentTask(
      {
        url: object.url,
        objectStorage: object.objectStorage,
        persistent: false,
        outputPath: transfer ? undefined : output,
        timeout: msToDuration(timeoutMs),
        needPieceContent: transfer,
        forceHardLink: o.forceHardLink,
        digest: transfer ? undefined : o.digest,
        overwrite: o.overwrite,
      },
      new Metadata(),
      { deadline: Date.now() + timeoutMs },
    );
    await receiveExport(stream, {
      output,
      overwrite: o.overwrite,
      transfer,
      digest: o.digest,
      progress: o.progress,
      label: object.url,
      started: (res: DownloadPersistentTaskResponse) =>
        res.downloadPersistentTaskStartedResponse?.contentLength,
    });
  });
}

export function dfstoreCommand(): Command {
  const root = new Command('dfstore')
    .description(
      'Import files into the P2P cluster as persistent tasks backed by object storage, and export them by URL.',
    )
    .version(`dfstore ${packageVersion()}`, '-V, --version');
  const importCommand = withCommon(
    root
      .command('import')
      .description(
        'Import a local file: write it to object storage and keep replicas on peers; prints its task id',
      ),
    'DFSTORE_IMPORT',
  )
    .argument('<path>', 'the file to import')
    .requiredOption(
      '--url <url>',
      'the object to write, scheme://<bucket>/<path> (s3, gs, abs, oss, obs, cos)',
    )
    .addOption(
      new Option('--persistent-replica-count <n>', 'peers that keep a copy, the importer included')
        .default(String(DEFAULT_PERSISTENT_REPLICA_COUNT))
        .env('DFSTORE_IMPORT_PERSISTENT_REPLICA_COUNT'),
    )
    .addOption(
      new Option('--ttl <duration>', 'how long the peers keep the task, 5m to 7d')
        .default('1h')
        .env('DFSTORE_IMPORT_TTL'),
    )
    .addOption(
      new Option('--timeout <duration>', 'give up after this long')
        .default('30m')
        .env('DFSTORE_IMPORT_TIMEOUT'),
    )
    .addOption(new Option('--no-progress', 'hide the progress display').env('DFSTORE_IMPORT_NO_PROGRESS'));
  addStorageOptions(importCommand, 'DFSTORE_IMPORT').action((path: string, o: ImportOptions) =>
    importFile(path, o),
  );
  const exportCommand = withCommon(
    root
      .command('export')
      .description('Export an object to a file, from peers first, else from object storage'),
    'DFSTORE_EXPORT',
  )
    .argument('<url>', 'the object, scheme://<bucket>/<path>')
    .requiredOption('-O, --output <path>', 'where to write the file')
    .addOption(
      new Option('--transfer-from-dfdaemon', 'receive the bytes over the socket instead of a hard link/copy')
        .default(false)
        .env('DFSTORE_EXPORT_TRANSFER_FROM_DFDAEMON'),
    )
    .addOption(
      new Option('--overwrite', 'replace the output file if it exists')
        .default(false)
        .env('DFSTORE_EXPORT_OVERWRITE'),
    )
    .addOption(
      new Option('--force-hard-link', 'fail unless the output can be hard-linked to the stored content')
        .default(false)
        .env('DFSTORE_EXPORT_FORCE_HARD_LINK'),
    )
    .addOption(
      new Option('--timeout <duration>', 'give up after this long')
        .default('2h')
        .env('DFSTORE_EXPORT_TIMEOUT'),
    )
    .addOption(
      new Option('--digest <alg:hex>', 'verify the file: crc32, sha256 or sha512').env(
        'DFSTORE_EXPORT_DIGEST',
      ),
    )
    .addOption(new Option('--no-progress', 'hide the progress bar').env('DFSTORE_EXPORT_NO_PROGRESS'));
  addStorageOptions(exportCommand, 'DFSTORE_EXPORT').action((url: string, o: ExportOptions) =>
    exportFile(url, o),
  );
  return root;
}

await dfstoreCommand().parseAsync(process.argv);
