// dfctl against a real dfdaemon: list, stat and remove the tasks two dfget downloads left behind.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { Origin } from '../helpers/origin.js';
import {
  DIST,
  dfget,
  metricsText,
  metricValue,
  run,
  startDaemon,
  stopDaemon,
  tempDir,
  type DaemonHandle,
} from '../helpers/daemon.js';

const DFCTL = join(DIST, 'src/cli/dfctl.js');
const MiB = 1024 * 1024;

interface TaskView {
  id: string;
  state: string;
  contentLength?: number;
  pieceLength?: number;
  piecesDone?: number;
  pieceCount?: number;
  createdAt?: string;
  updatedAt?: string;
  finishedAt?: string;
}

describe('dfctl', () => {
  const origin = new Origin();
  let daemon: DaemonHandle;
  let out: string;
  const small = { size: 1 * MiB + 7, seed: 51 };
  const large = { size: 9 * MiB + 3, seed: 52 };
  let smallUrl: string;
  let largeUrl: string;

  const dfctl = (...args: string[]) => run([DFCTL, ...args]);
  const dfctlOn = (...args: string[]) => dfctl(...args, '-e', daemon.socket);

  async function listJson(): Promise<TaskView[]> {
    const r = await dfctlOn('task', 'ls', '-o', 'json');
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as TaskView[];
  }

  async function idOf(size: number): Promise<string> {
    const t = (await listJson()).find((v) => v.contentLength === size);
    assert.ok(t, `a task of ${size} bytes is listed`);
    return t.id;
  }

  before(async () => {
    await origin.start();
    daemon = await startDaemon();
    out = tempDir('dft-dfctl-');
    smallUrl = origin.add('/small', small);
    largeUrl = origin.add('/large', large);
    for (const [url, name] of [
      [smallUrl, 'small'],
      [largeUrl, 'large'],
    ]) {
      const r = await dfget(daemon, url, join(out, name));
      assert.equal(r.code, 0, r.stderr);
    }
  });

  after(async () => {
    await stopDaemon(daemon);
    await origin.stop();
    rmSync(out, { recursive: true, force: true });
  });

  test('task ls -o json lists both downloads, finished, with their pieces', async () => {
    const tasks = await listJson();
    assert.equal(tasks.length, 2);
    const bySize = new Map(tasks.map((t) => [t.contentLength, t]));
    const s = bySize.get(small.size)!;
    const l = bySize.get(large.size)!;
    assert.ok(s && l);
    assert.match(s.id, /^[0-9a-f]{64}$/);
    assert.equal(s.state, 'Succeeded');
    assert.equal(l.state, 'Succeeded');
    assert.equal(s.pieceLength, 4 * MiB);
    assert.deepEqual([s.piecesDone, s.pieceCount], [1, 1]);
    assert.deepEqual([l.piecesDone, l.pieceCount], [3, 3]);
    assert.ok(l.finishedAt && l.createdAt && l.updatedAt);
    assert.ok(Date.now() - Date.parse(l.createdAt) < 5 * 60_000);
  });

  test('task ls prints a table: header, one row per task with size, pieces, state, age', async () => {
    const r = await dfctlOn('task', 'ls');
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.equal(lines.length, 3, r.stdout);
    assert.match(lines[0], /^ID\s+SIZE\s+PIECES\s+STATE\s+AGE\s+LAST USED$/);
    const largeId = await idOf(large.size);
    const row = lines.find((l) => l.startsWith(largeId));
    assert.ok(row, r.stdout);
    assert.match(row, /\s9\.0 MiB\s+3\/3\s+Succeeded\s+\d+[smhd]\s+\d+[smhd] ago$/);
    assert.ok(
      lines.some((l) => /\s1\.0 MiB\s+1\/1\s+Succeeded\s/.test(l)),
      r.stdout,
    );
  });

  test('task stat shows one task (text and JSON); an unknown id is one error line', async () => {
    const id = await idOf(large.size);
    const text = await dfctlOn('task', 'stat', id);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, new RegExp(`^ID:\\s+${id}$`, 'm'));
    assert.match(text.stdout, /^State:\s+Succeeded$/m);
    assert.match(text.stdout, new RegExp(`^Size:\\s+9\\.0 MiB \\(${large.size} bytes\\)$`, 'm'));
    assert.match(text.stdout, /^Pieces:\s+3\/3$/m);

    const json = await dfctlOn('task', 'stat', id, '-o', 'json');
    assert.equal(json.code, 0, json.stderr);
    const v = JSON.parse(json.stdout) as TaskView;
    assert.equal(v.id, id);
    assert.equal(v.contentLength, large.size);

    const unknown = await dfctlOn('task', 'stat', 'f'.repeat(64));
    assert.equal(unknown.code, 1);
    assert.equal(unknown.stdout, '');
    assert.equal(unknown.stderr, `Error: local task not found: ${'f'.repeat(64)}\n`);
  });

  test('task rm removes the task: gone from ls, and the next dfget goes back to the origin', async () => {
    const id = await idOf(small.size);
    const before = origin.pieceRequests('/small').length;
    const r = await dfctlOn('task', 'rm', id);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `Task ${id} removed\n`);
    const tasks = await listJson();
    assert.deepEqual(
      tasks.map((t) => t.contentLength),
      [large.size],
    );

    const again = await dfget(daemon, smallUrl, join(out, 'small-again'));
    assert.equal(again.code, 0, again.stderr);
    assert.equal(origin.pieceRequests('/small').length, before + 1, 'fetched from the origin again');
    assert.equal(await idOf(small.size), id);
  });

  test('task rm of an unknown id exits 1 with one clear line', async () => {
    const id = 'a'.repeat(64);
    const r = await dfctlOn('task', 'rm', id);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr, `Error: local task not found: ${id}\n`);
  });

  test('the local-task RPCs are counted in the metrics', async () => {
    const text = await metricsText(daemon);
    assert.ok(metricValue(text, 'dragonfly_client_list_local_tasks_total') >= 1, 'list_local_tasks_total');
    assert.ok(metricValue(text, 'dragonfly_client_stat_local_task_total') >= 2, 'stat_local_task_total');
    assert.ok(metricValue(text, 'dragonfly_client_stat_local_task_failure_total') >= 1);
    assert.ok(metricValue(text, 'dragonfly_client_delete_local_task_total') >= 2);
    assert.ok(metricValue(text, 'dragonfly_client_delete_local_task_failure_total') >= 1);
  });

  test('without a daemon: the "Connect Dfdaemon Failed" hint, exit 1', async () => {
    const socket = join(out, 'nobody.sock');
    for (const args of [
      ['task', 'ls'],
      ['task', 'rm', 'x'.repeat(64)],
      ['task', 'stat', 'x'],
    ]) {
      const r = await dfctl(...args, '-e', socket);
      assert.equal(r.code, 1, args.join(' '));
      assert.equal(r.stdout, '');
      const lines = r.stderr.trimEnd().split('\n');
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0], /^Error: Connect Dfdaemon Failed! .*nobody\.sock.*Is dfdaemon running\?/);
    }
  });

  test('-V prints the version', async () => {
    const r = await dfctl('-V');
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^dfctl \d+\.\d+\.\d+/);
  });
});
