// `dfctl persistent-cache-task ls | stat | rm` (dragonfly-client/src/bin/dfctl/persistent_cache_task.rs): the
// persistent cache tasks (dfcache imports, exports and replicas) this dfdaemon stores, over the download socket;
// and `dfctl persistent-task ls` (persistent_task.rs: upstream has only `ls`), dfstore's tasks in the same table
// (StatLocalPersistentTaskResponse has the fields of the cache kind's).
// `ls` has upstream's columns; `rm` deletes the task from every peer, as `dfcache rm` (a persistent cache task is
// one object of the cluster: a copy deleted here alone would still be counted by the scheduler).

import type { Command } from 'commander';
import { formatByteSize } from '../core/bytesize.js';
import { durationToMs } from '../core/duration.js';
import { formatDuration } from '../core/humantime.js';
import type {
  DfdaemonDownloadClient,
  ListLocalPersistentCacheTasksResponse,
  ListLocalPersistentTasksResponse,
  StatLocalPersistentCacheTaskResponse,
} from '../gen/dfdaemon.js';
import { removePersistentCacheTask, unary } from './daemon-client.js';

/** One task as `-o json` prints it. */
export interface PersistentCacheTaskView {
  id: string;
  persistent: boolean;
  ttl: string;
  pieceLength?: number;
  contentLength?: number;
  uploadingCount: number;
  uploadedCount: number;
  createdAt?: string;
  updatedAt?: string;
  finishedAt?: string;
  failedAt?: string;
}

export interface DfctlParts<O> {
  /** Adds -e, -l, --console. */
  withCommonOptions(c: Command): Command;
  /** Adds -o table|json. */
  outputOption(): import('commander').Option;
  /** Runs with a connected client; failures become one Error: line and exit code 1. */
  withDaemon(o: O, fn: (client: DfdaemonDownloadClient, socket: string) => Promise<void>): Promise<void>;
  table(header: string[], rows: string[][]): string;
}

const iso = (d: Date | undefined) => d?.toISOString();

export function persistentCacheTaskView(t: StatLocalPersistentCacheTaskResponse): PersistentCacheTaskView {
  return {
    id: t.taskId,
    persistent: t.persistent,
    ttl: formatDuration(durationToMs(t.ttl)),
    pieceLength: t.pieceLength,
    contentLength: t.contentLength,
    uploadingCount: t.uploadingCount,
    uploadedCount: t.uploadedCount,
    createdAt: iso(t.createdAt),
    updatedAt: iso(t.updatedAt),
    finishedAt: iso(t.finishedAt),
    failedAt: iso(t.failedAt),
  };
}

/** "2026-12-06 08:04:09" in local time, as upstream's table; "-" when absent. */
function localTime(at: string | undefined): string {
  if (!at) return '-';
  const d = new Date(at);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

const size = (n: number | undefined) => (n === undefined ? '-' : formatByteSize(n));

export function renderPersistentCacheTaskTable(
  views: PersistentCacheTaskView[],
  table: DfctlParts<unknown>['table'],
): string {
  return table(
    ['ID', 'PERSISTENT', 'TTL', 'PIECE LENGTH', 'CONTENT LENGTH', 'CREATED', 'FINISHED', 'FAILED', 'UPDATED'],
    views.map((v) => [
      v.id,
      String(v.persistent),
      v.ttl,
      size(v.pieceLength),
      size(v.contentLength),
      localTime(v.createdAt),
      localTime(v.finishedAt),
      localTime(v.failedAt),
      localTime(v.updatedAt),
    ]),
  );
}

function renderStat(v: PersistentCacheTaskView): string {
  const rows: [string, string][] = [
    ['ID', v.id],
    ['Persistent', String(v.persistent)],
    ['TTL', v.ttl],
    ['Size', v.contentLength === undefined ? '-' : `${size(v.contentLength)} (${v.contentLength} bytes)`],
    ['Piece length', size(v.pieceLength)],
    ['Uploading', String(v.uploadingCount)],
    ['Uploaded', String(v.uploadedCount)],
    ['Created', v.createdAt ?? '-'],
    ['Updated', v.updatedAt ?? '-'],
    ['Finished', v.finishedAt ?? '-'],
    ['Failed', v.failedAt ?? '-'],
  ];
  const width = Math.max(...rows.map(([k]) => k.length)) + 1;
  return rows.map(([k, val]) => `${`${k}:`.padEnd(width)} ${val}`).join('\n') + '\n';
}

/** Adds `persistent-cache-task ls|stat|rm` to dfctl. */
export function addPersistentCacheTaskCommands<O extends { output?: 'table' | 'json' }>(
  root: Command,
  parts: DfctlParts<O>,
): void {
  const cmd = root
    .command('persistent-cache-task')
    .description('Manage the persistent cache tasks (dfcache) in the local dfdaemon');
  addLs(cmd, parts, 'List the persistent cache tasks stored by the local dfdaemon', async (client) => {
    const { tasks } = await unary<ListLocalPersistentCacheTasksResponse>((cb) =>
      client.listLocalPersistentCacheTasks({}, cb),
    );
    return tasks;
  });
  parts
    .withCommonOptions(
      cmd.command('stat').description('Show one stored persistent cache task').argument('<id>', 'task id'),
    )
    .addOption(parts.outputOption())
    .action((id: string, o: O) =>
      parts.withDaemon(o, async (client) => {
        const t = await unary<StatLocalPersistentCacheTaskResponse>((cb) =>
          client.statLocalPersistentCacheTask({ taskId: id }, cb),
        );
        const v = persistentCacheTaskView(t);
        process.stdout.write(o.output === 'json' ? JSON.stringify(v, null, 2) + '\n' : renderStat(v));
      }),
    );
  parts
    .withCommonOptions(
      cmd
        .command('rm')
        .description('Delete a persistent cache task from every peer holding it')
        .argument('<id>', 'task id'),
    )
    .action((id: string, o: O) =>
      parts.withDaemon(o, async (_client, socket) => {
        await removePersistentCacheTask(socket, id);
        process.stdout.write(`Persistent cache task ${id} removed\n`);
      }),
    );
}

/** Adds `persistent-task ls` (dfstore's tasks) to dfctl. */
export function addPersistentTaskCommands<O extends { output?: 'table' | 'json' }>(
  root: Command,
  parts: DfctlParts<O>,
): void {
  const cmd = root
    .command('persistent-task')
    .description('Manage the persistent tasks (dfstore) in the local dfdaemon');
  addLs(cmd, parts, 'List the persistent tasks stored by the local dfdaemon', async (client) => {
    const { tasks } = await unary<ListLocalPersistentTasksResponse>((cb) =>
      client.listLocalPersistentTasks({}, cb),
    );
    return tasks;
  });
}

/** `ls` under `cmd`: the tasks `list` returns, as upstream's table or as JSON. */
function addLs<O extends { output?: 'table' | 'json' }>(
  cmd: Command,
  parts: DfctlParts<O>,
  description: string,
  list: (client: DfdaemonDownloadClient) => Promise<StatLocalPersistentCacheTaskResponse[]>,
): void {
  parts
    .withCommonOptions(cmd.command('ls').description(description))
    .addOption(parts.outputOption())
    .action((o: O) =>
      parts.withDaemon(o, async (client) => {
        const views = (await list(client)).map(persistentCacheTaskView);
        process.stdout.write(
          o.output === 'json'
            ? JSON.stringify(views, null, 2) + '\n'
            : renderPersistentCacheTaskTable(views, parts.table),
        );
      }),
    );
}
