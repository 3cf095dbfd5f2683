// A full disk must not wedge the daemon (issue 16, item 9). As reported: two downloads that each fit the
// free-space check filled the disk together and both failed; then `dfctl task rm` failed with "no space left on
// device" (SQLite needs new pages even to delete), GC skipped the stuck tasks saying they were in use, and a
// restart did not help. Now each download reserves what it has still to write, deletes free the content first and
// have a metadata reserve to spend, GC evicts any task nobody downloads, and its first pass runs at start.
//
// The daemon's whole directory is on a 64 MiB tmpfs (root only; skipped with the reason otherwise). Downloads write
// their outputs elsewhere, except one that is a hard link on the small disk (deleting its task frees nothing).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { statfs, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Origin, contentSha256 } from '../helpers/origin.js';
import { DIST, dfget, run, startDaemon, stopDaemon, tempDir, type DaemonHandle } from '../helpers/daemon.js';
import { sha256File } from '../helpers/files.js';
import { fillDisk, mountTmpfs, unmountTmpfs } from '../helpers/tmpfs.js';

const MiB = 1024 * 1024;
const DFCTL = join(DIST, 'src/cli/dfctl.js');
const CONFIG = 'gc:\n  interval: 1h\n  policy:\n    taskTTL: 0s\n';

interface TaskView {
  id: string;
  state: string;
  contentLength?: number;
}

const mounted = mountTmpfs(64, 'dft-fulldisk-');
const skip = typeof mounted === 'string' ? false : mounted.skip;

describe('a full disk does not wedge dfdaemon', { skip }, () => {
  const mnt = mounted as string;
  const dir = join(mnt, 'daemon');
  const filler = join(mnt, 'filler');
  const origin = new Origin();
  let daemon: DaemonHandle;
  let out: string;
  const x = { size: 36 * MiB + 1, seed: 71 };
  const y = { size: 36 * MiB + 2, seed: 72 };
  const z = { size: 3 * MiB, seed: 73 };
  const w = { size: 16 * MiB + 3, seed: 74 };
  let urlX: string;
  let urlY: string;
  let urlZ: string;
  let urlW: string;

  const dfctl = (...args: string[]) => run([DFCTL, ...args, '-e', daemon.socket]);

  async function listTasks(): Promise<TaskView[]> {
    const r = await dfctl('task', 'ls', '-o', 'json');
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as TaskView[];
  }

  async function taskOf(size: number): Promise<TaskView | undefined> {
    return (await listTasks()).find((t) => t.contentLength === size);
  }

  function contentFiles(): string[] {
    const tasks = join(daemon.storageDir, 'content', 'tasks');
    if (!existsSync(tasks)) return [];
    return readdirSync(tasks).flatMap((sub) => readdirSync(join(tasks, sub)).map((f) => join(tasks, sub, f)));
  }

  /** Resolves once a new content file appeared (the download was admitted and its file created). */
  async function contentFileCreated(before: Set<string>): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (!contentFiles().some((f) => !before.has(f))) {
      assert.ok(Date.now() < deadline, `content file created: ${daemon.logs.slice(-3).join('\n')}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  function assertOneLineError(r: { code: number | null; stderr: string }, re: RegExp): void {
    assert.equal(r.code, 1, r.stderr);
    const lines = r.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, re);
  }

  before(async () => {
    await origin.start();
    // Slow answers: each download takes long enough for the next step to happen while it runs.
    urlX = origin.add('/x', { ...x, delayMs: 300 });
    urlY = origin.add('/y', y);
    urlZ = origin.add('/z', z);
    urlW = origin.add('/w', { ...w, delayMs: 1000 });
    out = tempDir('dft-fulldisk-out-');
    mkdirSync(dir);
    daemon = await startDaemon({ dir, extraConfig: CONFIG });
  });

  after(async () => {
    if (daemon) await stopDaemon(daemon, { keepDir: true });
    await origin.stop();
    rmSync(out, { recursive: true, force: true });
    unmountTmpfs(mnt);
  });

  test('two downloads that each fit but not together: the second is refused up front, the first succeeds', async () => {
    const before = new Set(contentFiles());
    const pendingX = dfget(daemon, urlX, join(out, 'x'));
    await contentFileCreated(before);
    const ry = await dfget(daemon, urlY, join(out, 'y'));
    assertOneLineError(
      ry,
      /^Error: not enough disk space for task \w+: need \d+ bytes, \d+ free of which \d+ are reserved by downloads in progress/,
    );
    assert.equal(existsSync(join(out, 'y')), false);
    const rx = await pendingX;
    assert.equal(rx.code, 0, rx.stderr);
    assert.equal(await sha256File(join(out, 'x')), contentSha256(x.seed, x.size));

    // Once X is removed, Y fits.
    const tx = await taskOf(x.size);
    assert.ok(tx);
    assert.equal((await dfctl('task', 'rm', tx.id)).code, 0);
    const again = await dfget(daemon, urlY, join(out, 'y'));
    assert.equal(again.code, 0, again.stderr);
    assert.equal(await sha256File(join(out, 'y')), contentSha256(y.seed, y.size));
  });

  test('on a full disk, dfctl task rm works, even when deleting the content frees nothing (a hard link)', async () => {
    // Z's output is on the small disk: a hard link to Z's content, which the task's deletion does not free.
    const zOut = join(mnt, 'z-output');
    const rz = await dfget(daemon, urlZ, zOut);
    assert.equal(rz.code, 0, rz.stderr);
    await fillDisk(filler);
    const fs = await statfs(mnt);
    assert.ok(fs.bavail * fs.bsize < 64 * 1024, 'the disk is full');

    const tz = await taskOf(z.size);
    assert.ok(tz);
    const rm = await dfctl('task', 'rm', tz.id);
    assert.equal(rm.code, 0, rm.stderr);
    assert.equal(await taskOf(z.size), undefined, 'Z is gone');
    assert.equal(await sha256File(zOut), contentSha256(z.seed, z.size), "the user's output is untouched");
    await unlink(zOut);
    await unlink(filler);
  });

  test('a download cut by a full disk fails in one line; after a restart on the full disk, GC frees it at once', async () => {
    const before = new Set(contentFiles());
    const pendingW = dfget(daemon, urlW, join(out, 'w'));
    await contentFileCreated(before);
    await fillDisk(filler);
    const rw = await pendingW;
    assertOneLineError(rw, /^Error: .*no space left on device/);
    assert.equal(daemon.proc.exitCode, null, 'dfdaemon still runs');
    const stuck = await taskOf(w.size);
    assert.ok(stuck, 'W is stored, partly');
    assert.notEqual(stuck.state, 'Running');

    // A restart on the still-full disk: the daemon starts, and its first GC pass (usage ≥ 80 %) evicts every task
    // nobody uses, the stuck W among them.
    await stopDaemon(daemon, { keepDir: true });
    daemon = await startDaemon({ dir, extraConfig: CONFIG });
    const deadline = Date.now() + 10_000;
    while (!daemon.logs.some((l) => l.includes('"evicted task for disk space"') && l.includes(stuck.id))) {
      const gcLogs = daemon.logs.filter((l) => l.includes('"component":"gc"'));
      assert.ok(Date.now() < deadline, `W evicted at start:\n${gcLogs.join('\n')}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(await taskOf(w.size), undefined, 'W is gone');
    assert.ok(!daemon.logs.some((l) => l.includes('are in use')), 'no task is said to be in use');

    // Room again: the same download succeeds.
    await unlink(filler);
    const again = await dfget(daemon, urlW, join(out, 'w'));
    assert.equal(again.code, 0, again.stderr);
    assert.equal(await sha256File(join(out, 'w')), contentSha256(w.seed, w.size));
  });
});
