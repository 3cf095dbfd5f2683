#!/usr/bin/env node
// dfctl: inspect and remove the tasks the local dfdaemon holds (dragonfly-client/src/bin/dfctl). Everything
// goes over the download socket: ListLocalTasks / StatLocalTask for the records, StatTask for the pieces and
// state, DeleteLocalTask to remove one; `persistent-cache-task` is dfctl-persistent-cache.ts; `task preheat` talks
// to the scheduler instead (dfctl-preheat.ts).

import { Command, Option } from 'commander';
import type { ServiceError } from '@grpc/grpc-js';
import { formatByteSize } from '../core/bytesize.js';
import type { Task } from '../gen/common.js';
import type { DfdaemonDownloadClient, StatLocalTaskResponse } from '../gen/dfdaemon.js';
import { addPreheatCommand } from './dfctl-preheat.js';
import { unary as unaryCall, withDaemon as withConnectedDaemon } from './daemon-client.js';
import { addPersistentCacheTaskCommands, addPersistentTaskCommands } from './dfctl-persistent-cache.js';
import { packageVersion } from './version.js';

interface CommonOptions {
  endpoint?: string;
  logLevel: string;
  console: boolean;
}

interface OutputOptions extends CommonOptions {
  output: 'table' | 'json';
}

/** One task as dfctl shows it; `-o json` prints these fields. */
export interface TaskView {
  id: string;
  state: string;
  contentLength?: number;
  pieceLength?: number;
  piecesDone?: number;
  pieceCount?: number;
  uploadingCount: number;
  uploadedCount: number;
  createdAt?: string;
  updatedAt?: string;
  finishedAt?: string;
  failedAt?: string;
  prefetchedAt?: string;
  responseHeader: Record<string, string>;
}

function unary<Req, Res>(
  fn: (req: Req, cb: (err: ServiceError | null, res?: Res) => void) => unknown,
  req: Req,
): Promise<Res> {
  return unaryCall<Res>((cb) => fn(req, cb));
}

const iso = (d: Date | undefined) => d?.toISOString();

/** The state from the record alone, for when StatTask does not answer (the task went away in between). */
function recordState(t: StatLocalTaskResponse): string {
  return t.finishedAt ? 'Succeeded' : t.failedAt ? 'Failed' : 'Pending';
}

/**
 * One task as dfctl shows it: the local record, with StatTask's pieces and live state. A record that says finished
 * wins over the live state: the Rust dfdaemon answers StatTask with the scheduler's view of the task ("Running"
 * while other peers still download it), not with what it stores.
 */
function taskView(t: StatLocalTaskResponse, task: Task | undefined): TaskView {
  return {
    id: t.taskId,
    state: t.finishedAt ? 'Succeeded' : task?.state || recordState(t),
    contentLength: t.contentLength,
    pieceLength: t.pieceLength,
    piecesDone: task?.pieces.length,
    pieceCount: task?.pieceCount,
    uploadingCount: t.uploadingCount,
    uploadedCount: t.uploadedCount,
    createdAt: iso(t.createdAt),
    updatedAt: iso(t.updatedAt),
    finishedAt: iso(t.finishedAt),
    failedAt: iso(t.failedAt),
    prefetchedAt: iso(t.prefetchedAt),
    responseHeader: t.responseHeader,
  };
}

/** "12s", "5m", "3h", "2d": the largest whole unit, as `docker ps` and `kubectl get` do. */
export function shortAge(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

const since = (at: string | undefined, now: number) => (at ? shortAge(now - Date.parse(at)) : '-');
const size = (n: number | undefined) => (n === undefined ? '-' : formatByteSize(n));
const pieces = (v: TaskView) =>
  v.pieceCount === undefined || v.piecesDone === undefined ? '-' : `${v.piecesDone}/${v.pieceCount}`;

/** Left-aligned columns separated by three spaces, header in capitals. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i])))
      .join('   ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

export function renderTaskTable(views: TaskView[], now = Date.now()): string {
  return table(
    ['ID', 'SIZE', 'PIECES', 'STATE', 'AGE', 'LAST USED'],
    views.map((v) => [
      v.id,
      size(v.contentLength),
      pieces(v),
      v.state,
      since(v.createdAt, now),
      v.updatedAt ? `${since(v.updatedAt, now)} ago` : '-',
    ]),
  );
}

function renderTaskStat(v: TaskView): string {
  const rows: [string, string][] = [
    ['ID', v.id],
    ['State', v.state],
    ['Size', v.contentLength === undefined ? '-' : `${size(v.contentLength)} (${v.contentLength} bytes)`],
    ['Piece length', size(v.pieceLength)],
    ['Pieces', pieces(v)],
    ['Uploading', String(v.uploadingCount)],
    ['Uploaded', String(v.uploadedCount)],
    ['Created', v.createdAt ?? '-'],
    ['Last used', v.updatedAt ?? '-'],
    ['Finished', v.finishedAt ?? '-'],
    ['Failed', v.failedAt ?? '-'],
    ['Prefetched', v.prefetchedAt ?? '-'],
  ];
  const width = Math.max(...rows.map(([k]) => k.length)) + 1;
  const lines = rows.map(([k, val]) => `${`${k}:`.padEnd(width)} ${val}`);
  const headers = Object.entries(v.responseHeader);
  if (headers.length > 0) lines.push('Response header:', ...headers.map(([k, val]) => `  ${k}: ${val}`));
  return lines.join('\n') + '\n';
}

/** StatTask for the pieces and the live state; undefined when it fails (the view falls back to the record). */
async function statTask(client: DfdaemonDownloadClient, taskId: string): Promise<Task | undefined> {
  return unary<{ taskId: string }, Task>((r, cb) => client.statTask(r, cb), { taskId }).catch(
    () => undefined,
  );
}

/** Runs `fn` with a connected client; any failure becomes one `Error:` line on stderr and exit code 1. */
function withDaemon(
  o: CommonOptions,
  fn: (client: DfdaemonDownloadClient, socket: string) => Promise<void>,
): Promise<void> {
  return withConnectedDaemon(o, 'dfctl', fn);
}

async function ls(o: OutputOptions): Promise<void> {
  await withDaemon(o, async (client) => {
    const { tasks } = await unary<object, { tasks: StatLocalTaskResponse[] }>(
      (r, cb) => client.listLocalTasks(r, cb),
      {},
    );
    const views: TaskView[] = [];
    // A few StatTask calls at a time: enough to be quick, few enough not to crowd the daemon.
    for (let i = 0; i < tasks.length; i += 8) {
      const batch = tasks.slice(i, i + 8);
      const stats = await Promise.all(batch.map((t) => statTask(client, t.taskId)));
      batch.forEach((t, j) => views.push(taskView(t, stats[j])));
    }
    views.sort((a, b) => Date.parse(b.updatedAt ?? '0') - Date.parse(a.updatedAt ?? '0'));
    process.stdout.write(
      o.output === 'json' ? JSON.stringify(views, null, 2) + '\n' : renderTaskTable(views),
    );
  });
}

async function stat(id: string, o: OutputOptions): Promise<void> {
  await withDaemon(o, async (client) => {
    const t = await unary<{ taskId: string }, StatLocalTaskResponse>((r, cb) => client.statLocalTask(r, cb), {
      taskId: id,
    });
    const v = taskView(t, await statTask(client, id));
    process.stdout.write(o.output === 'json' ? JSON.stringify(v, null, 2) + '\n' : renderTaskStat(v));
  });
}

async function rm(id: string, o: CommonOptions): Promise<void> {
  await withDaemon(o, async (client) => {
    await unary<{ taskId: string }, object>((r, cb) => client.deleteLocalTask(r, cb), { taskId: id });
    process.stdout.write(`Task ${id} removed\n`);
  });
}

/** -e, -l and --console on every leaf command, as upstream's subcommands each take them. */
function withCommonOptions(c: Command): Command {
  return c
    .option('-e, --endpoint <socket>', "dfdaemon's download socket (default: the system or ~/.dragonfly one)")
    .option('-l, --log-level <level>', 'log level [trace, debug, info, warn, error]', 'info')
    .option('--console', 'log to the console (stderr)', false);
}

const outputOption = () =>
  new Option('-o, --output <format>', 'output format').choices(['table', 'json']).default('table');

export function dfctlCommand(): Command {
  const version = `dfctl ${packageVersion()}`;
  const root = new Command('dfctl')
    .description('Manage the tasks of the local dfdaemon.')
    .version(version, '-V, --version');
  const task = root.command('task').description('Manage tasks in the local dfdaemon');
  withCommonOptions(task.command('ls').description('List the tasks stored by the local dfdaemon'))
    .addOption(outputOption())
    .action((o: OutputOptions) => ls(o));
  withCommonOptions(task.command('stat').description('Show one stored task').argument('<id>', 'task id'))
    .addOption(outputOption())
    .action((id: string, o: OutputOptions) => stat(id, o));
  withCommonOptions(
    task.command('rm').description("Remove a task's content and metadata").argument('<id>', 'task id'),
  ).action((id: string, o: CommonOptions) => rm(id, o));
  addPreheatCommand(task);
  const parts = { withCommonOptions, outputOption, withDaemon, table };
  addPersistentCacheTaskCommands<OutputOptions>(root, parts);
  addPersistentTaskCommands<OutputOptions>(root, parts);
  return root;
}

await dfctlCommand().parseAsync(process.argv);
