#!/usr/bin/env node
// dfcache: write files into the P2P cluster and read them back by task id (dragonfly-client/src/bin/dfcache):
// `import` stores a local file as a persistent cache task (the scheduler then places its replicas on other peers),
// `export` fetches one to a path, `stat` describes one, `rm` (ours) deletes one everywhere. Everything goes over the
// local dfdaemon's socket; flags, defaults and environment variables are upstream's.

import { Command, Option } from 'commander';
import { Metadata } from '@grpc/grpc-js';
import { formatByteSize } from '../core/bytesize.js';
import { parseDigest } from '../core/digest.js';
import { durationToMs, msToDuration } from '../core/duration.js';
import { DfError } from '../core/errors.js';
import { formatDuration, parseDuration } from '../core/humantime.js';
import {
  checkPersistentCacheTtl,
  checkPersistentReplicaCount,
  DEFAULT_PERSISTENT_REPLICA_COUNT,
} from '../core/persistent-cache.js';
import type { PersistentCacheTask } from '../gen/common.js';
import type { DfdaemonDownloadClient, DownloadPersistentCacheTaskResponse } from '../gen/dfdaemon.js';
import {
  checkOutputPath,
  describeError,
  parsePieceLength,
  removePersistentCacheTask,
  unary,
  withDaemon as withConnectedDaemon,
} from './common.js';
import { checkImportPath, receiveExport, withCommon, type CommonOptions } from './persistent-cli.js';
import { packageVersion } from './version.js';

interface ImportOptions extends CommonOptions {
  contentForCalculatingTaskId?: string;
  persistentReplicaCount: string;
  pieceLength?: string;
  application?: string;
  tag?: string;
  ttl: string;
  timeout: string;
  progress: boolean;
}

interface ExportOptions extends CommonOptions {
  output: string;
  transferFromDfdaemon: boolean;
  overwrite: boolean;
  forceHardLink: boolean;
  application: string;
  tag: string;
  timeout: string;
  digest?: string;
  progress: boolean;
}

function withDaemon(
  o: CommonOptions,
  fn: (client: DfdaemonDownloadClient, socket: string) => Promise<void>,
): Promise<void> {
  return withConnectedDaemon(o, 'dfcache', fn);
}

/** Checks the arguments before dfdaemon is asked, as upstream's validate_args (which also checks the path). */
async function validateImport(path: string, o: ImportOptions) {
  const ttlMs = parseDuration(o.ttl);
  checkPersistentCacheTtl(ttlMs);
  const replicas = Number(o.persistentReplicaCount);
  if (!/^\d+$/.test(o.persistentReplicaCount.trim())) {
    throw new DfError(
      'INVALID_ARGUMENT',
      `persistent replica count must be a whole number, but got "${o.persistentReplicaCount}"`,
    );
  }
  checkPersistentReplicaCount(replicas);
  const pieceLength = parsePieceLength(o.pieceLength);
  const abs = await checkImportPath(path);
  return { abs, ttlMs, replicas, pieceLength, timeoutMs: parseDuration(o.timeout) };
}

async function importFile(path: string, o: ImportOptions): Promise<void> {
  let v: Awaited<ReturnType<typeof validateImport>>;
  try {
    v = await validateImport(path, o);
  } catch (e) {
    process.stderr.write(`Error: ${describeError(e)}\n`);
    process.exitCode = 1;
    return;
  }
  if (o.contentForCalculatingTaskId === undefined) {
    process.stderr.write(
      'Warning: SHA256 hash computation from file content is slow for large files. Use ' +
        '--content-for-calculating-task-id to improve performance.\n',
    );
  }
  await withDaemon(o, async (client) => {
    const spinner =
      o.progress && process.stderr.isTTY ? setInterval(() => process.stderr.write('.'), 1000) : undefined;
    try {
      const task = await unary<PersistentCacheTask>((cb) =>
        client.uploadPersistentCacheTask(
          {
            contentForCalculatingTaskId: o.contentForCalculatingTaskId,
            path: v.abs,
            persistentReplicaCount: v.replicas,
            tag: o.tag,
            application: o.application,
            pieceLength: v.pieceLength,
            ttl: msToDuration(v.ttlMs),
            timeout: msToDuration(v.timeoutMs),
          },
          new Metadata(),
          { deadline: Date.now() + v.timeoutMs },
          cb,
        ),
      );
      if (spinner) process.stderr.write('\n');
      process.stdout.write(`${task.id}\n`);
    } finally {
      if (spinner) clearInterval(spinner);
    }
  });
}

async function exportFile(id: string, o: ExportOptions): Promise<void> {
  const timeoutMs = parseDuration(o.timeout);
  let output: string;
  try {
    if (o.digest) parseDigest(o.digest);
    if (o.overwrite && o.forceHardLink) {
      throw new DfError('INVALID_ARGUMENT', '--overwrite cannot be used with --force-hard-link');
    }
    output = await checkOutputPath(o.output, o.overwrite);
  } catch (e) {
    process.stderr.write(`Error: ${describeError(e)}\n`);
    process.exitCode = 1;
    return;
  }
  await withDaemon(o, async (client) => {
    const transfer = o.transferFromDfdaemon;
    const stream = client.downloadPersistentCacheTask(
      {
        taskId: id,
        persistent: false,
        tag: o.tag || undefined,
        application: o.application || undefined,
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
      label: id,
      started: (res: DownloadPersistentCacheTaskResponse) =>
        res.downloadPersistentCacheTaskStartedResponse?.contentLength,
    });
  });
}

async function statTask(id: string, o: CommonOptions): Promise<void> {
  await withDaemon(o, async (client) => {
    const t = await unary<PersistentCacheTask>((cb) => client.statPersistentCacheTask({ taskId: id }, cb));
    const rows: [string, string][] = [
      ['ID', t.id],
      ['State', t.state],
      ['Size', `${formatByteSize(t.contentLength)} (${t.contentLength} bytes)`],
      ['Piece length', formatByteSize(t.pieceLength)],
      ['Pieces', String(t.pieceCount)],
      ['Persistent replicas', `${t.currentPersistentReplicaCount}/${t.persistentReplicaCount}`],
      ['Replicas', String(t.currentReplicaCount)],
      ['Tag', t.tag ?? '-'],
      ['Application', t.application ?? '-'],
      ['TTL', t.ttl ? formatDuration(durationToMs(t.ttl)) : '-'],
      ['Created', t.createdAt?.toISOString() ?? '-'],
      ['Updated', t.updatedAt?.toISOString() ?? '-'],
    ];
    const width = Math.max(...rows.map(([k]) => k.length)) + 1;
    process.stdout.write(rows.map(([k, v]) => `${`${k}:`.padEnd(width)} ${v}`).join('\n') + '\n');
  });
}

async function removeTask(id: string, o: CommonOptions): Promise<void> {
  await withDaemon(o, async (_client, socket) => {
    await removePersistentCacheTask(socket, id);
    process.stdout.write(`Persistent cache task ${id} removed\n`);
  });
}

export function dfcacheCommand(): Command {
  const root = new Command('dfcache')
    .description('Import files into the P2P cluster as persistent cache tasks, and export them by task id.')
    .version(`dfcache ${packageVersion()}`, '-V, --version');
  withCommon(
    root.command('import').description('Import a local file into the P2P cluster; prints its task id'),
    'DFCACHE_IMPORT',
  )
    .argument('<path>', 'the file to import')
    .addOption(
      new Option(
        '--content-for-calculating-task-id <str>',
        'compute the task id from this string instead of the file content',
      ).env('DFCACHE_IMPORT_CONTENT_FOR_CALCULATING_TASK_ID'),
    )
    .addOption(
      new Option('--persistent-replica-count <n>', 'peers that keep a copy, the importer included')
        .default(String(DEFAULT_PERSISTENT_REPLICA_COUNT))
        .env('DFCACHE_IMPORT_PERSISTENT_REPLICA_COUNT'),
    )
    .addOption(
      new Option('--piece-length <size>', 'piece length, at least 4MiB (default: from the file size)').env(
        'DFCACHE_IMPORT_PIECE_LENGTH',
      ),
    )
    .addOption(
      new Option('--application <name>', 'application, part of the task id').env(
        'DFCACHE_IMPORT_APPLICATION',
      ),
    )
    .addOption(new Option('--tag <tag>', 'tag, part of the task id').env('DFCACHE_IMPORT_TAG'))
    .addOption(
      new Option('--ttl <duration>', 'how long the cluster keeps the task, 5m to 7d')
        .default('1h')
        .env('DFCACHE_IMPORT_TTL'),
    )
    .addOption(
      new Option('--timeout <duration>', 'give up after this long')
        .default('30m')
        .env('DFCACHE_IMPORT_TIMEOUT'),
    )
    .addOption(new Option('--no-progress', 'hide the progress display').env('DFCACHE_IMPORT_NO_PROGRESS'))
    .action((path: string, o: ImportOptions) => importFile(path, o));
  withCommon(root.command('export').description('Export a persistent cache task to a file'), 'DFCACHE_EXPORT')
    .argument('<id>', 'the persistent cache task id')
    .requiredOption('-O, --output <path>', 'where to write the file')
    .addOption(
      new Option('--transfer-from-dfdaemon', 'receive the bytes over the socket instead of a hard link/copy')
        .default(false)
        .env('DFCACHE_EXPORT_TRANSFER_FROM_DFDAEMON'),
    )
    .addOption(
      new Option('--overwrite', 'replace the output file if it exists')
        .default(false)
        .env('DFCACHE_EXPORT_OVERWRITE'),
    )
    .addOption(
      new Option('--force-hard-link', 'fail unless the output can be hard-linked to the stored content')
        .default(false)
        .env('DFCACHE_EXPORT_FORCE_HARD_LINK'),
    )
    .addOption(
      new Option('--application <name>', 'caller application').default('').env('DFCACHE_EXPORT_APPLICATION'),
    )
    .addOption(new Option('--tag <tag>', 'tag').default('').env('DFCACHE_EXPORT_TAG'))
    .addOption(
      new Option('--timeout <duration>', 'give up after this long')
        .default('2h')
        .env('DFCACHE_EXPORT_TIMEOUT'),
    )
    .addOption(
      new Option('--digest <alg:hex>', 'verify the file: crc32, sha256 or sha512').env(
        'DFCACHE_EXPORT_DIGEST',
      ),
    )
    .addOption(new Option('--no-progress', 'hide the progress bar').env('DFCACHE_EXPORT_NO_PROGRESS'))
    .action((id: string, o: ExportOptions) => exportFile(id, o));
  withCommon(
    root.command('stat').description('Show a persistent cache task as the scheduler knows it'),
    'DFCACHE_STAT',
  )
    .argument('<id>', 'the persistent cache task id')
    .action((id: string, o: CommonOptions) => statTask(id, o));
  withCommon(
    root.command('rm').description('Delete a persistent cache task from every peer holding it'),
    'DFCACHE_RM',
  )
    .argument('<id>', 'the persistent cache task id')
    .action((id: string, o: CommonOptions) => removeTask(id, o));
  return root;
}

await dfcacheCommand().parseAsync(process.argv);
