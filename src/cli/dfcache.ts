#!/usr/bin/env node
// dfcache: write files into the P2P cluster and read them back by task id (dragonfly-client/src/bin/dfcache):
// `import` stores a local file as a persistent cache task (the scheduler then places its replicas on other peers),
// `export` fetches one to a path, `stat` describes one, `rm` (ours) deletes one everywhere. Everything goes over the
// local dfdaemon's socket; flags, defaults and environment variables are upstream's.

import { Command, Option } from 'commander';
import { Metadata } from '@grpc/grpc-js';
import { formatByteSize } from '../core/bytesize.js';
import { durationToMs, msToDuration } from '../core/duration.js';
import { formatDuration } from '../core/humantime.js';
import type { PersistentCacheTask } from '../gen/common.js';
import type { DfdaemonDownloadClient, DownloadPersistentCacheTaskResponse } from '../gen/dfdaemon.js';
import { parsePieceLength } from './common.js';
import { removePersistentCacheTask, unary, withDaemon as withConnectedDaemon } from './daemon-client.js';
import {
  addExportOptions,
  addImportOptions,
  checkExport,
  checkImport,
  exportRequestFields,
  receiveExport,
  refuse,
  withCommon,
  withSpinner,
  type CommonOptions,
  type ExportFlags,
  type ImportFlags,
} from './persistent-cli.js';
import { packageVersion } from './version.js';

interface ImportOptions extends CommonOptions, ImportFlags {
  contentForCalculatingTaskId?: string;
  pieceLength?: string;
  application?: string;
  tag?: string;
}

interface ExportOptions extends CommonOptions, ExportFlags {
  application: string;
  tag: string;
}

function withDaemon(
  o: CommonOptions,
  fn: (client: DfdaemonDownloadClient, socket: string) => Promise<void>,
): Promise<void> {
  return withConnectedDaemon(o, 'dfcache', fn);
}

/** Checks the arguments before dfdaemon is asked, as upstream's validate_args (which also checks the path). */
async function validateImport(path: string, o: ImportOptions) {
  const checked = await checkImport(path, o);
  return { ...checked, pieceLength: parsePieceLength(o.pieceLength) };
}

async function importFile(path: string, o: ImportOptions): Promise<void> {
  let v: Awaited<ReturnType<typeof validateImport>>;
  try {
    v = await validateImport(path, o);
  } catch (e) {
    return refuse(e);
  }
  if (o.contentForCalculatingTaskId === undefined) {
    process.stderr.write(
      'Warning: SHA256 hash computation from file content is slow for large files. Use ' +
        '--content-for-calculating-task-id to improve performance.\n',
    );
  }
  await withDaemon(o, async (client) => {
    const task = await withSpinner(o.progress, () =>
      unary<PersistentCacheTask>((cb) =>
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
      ),
    );
    process.stdout.write(`${task.id}\n`);
  });
}

async function exportFile(id: string, o: ExportOptions): Promise<void> {
  let checked: Awaited<ReturnType<typeof checkExport>>;
  try {
    checked = await checkExport(o);
  } catch (e) {
    return refuse(e);
  }
  const { output, timeoutMs } = checked;
  await withDaemon(o, async (client) => {
    const transfer = o.transferFromDfdaemon;
    const stream = client.downloadPersistentCacheTask(
      {
        taskId: id,
        tag: o.tag || undefined,
        application: o.application || undefined,
        ...exportRequestFields(o, output, timeoutMs),
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
  addImportOptions(
    withCommon(
      root.command('import').description('Import a local file into the P2P cluster; prints its task id'),
      'DFCACHE_IMPORT',
    ),
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
    .action((path: string, o: ImportOptions) => importFile(path, o));
  addExportOptions(
    withCommon(
      root.command('export').description('Export a persistent cache task to a file'),
      'DFCACHE_EXPORT',
    ),
    'DFCACHE_EXPORT',
  )
    .argument('<id>', 'the persistent cache task id')
    .addOption(
      new Option('--application <name>', 'caller application').default('').env('DFCACHE_EXPORT_APPLICATION'),
    )
    .addOption(new Option('--tag <tag>', 'tag').default('').env('DFCACHE_EXPORT_TAG'))
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
