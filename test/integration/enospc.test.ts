// A full disk (issue 6, item 7): the daemon's whole directory (config, socket, metadata, content) lives on a
// 48 MiB tmpfs the test mounts (root only; skipped with the reason otherwise). A download that does not fit
// fails with one clear error line, the task already there stays intact and cached, and once space is freed
// the same download succeeds. Two ways to run out: refused up front (the free-space check before any byte is
// written), and the disk filling while pieces are being written (ENOSPC from the write itself).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { statfs, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Origin, contentSha256 } from '../helpers/origin.js';
import { DIST, dfget, run, startDaemon, stopDaemon, tempDir, type DaemonHandle } from '../helpers/daemon.js';
import { sha256File } from '../helpers/files.js';
import { fillDisk, mountTmpfs, unmountTmpfs } from '../helpers/tmpfs.js';

const MiB = 1024 * 1024;
const DFCTL = join(DIST, 'src/cli/dfctl.js');

/** Paths of the task content files under the daemon's storage dir. */
function contentFiles(storageDir: string): string[] {
  const tasks = join(storageDir, 'content', 'tasks');
  if (!existsSync(tasks)) return [];
  return readdirSync(tasks).flatMap((sub) => readdirSync(join(tasks, sub)).map((f) => join(tasks, sub, f)));
}

interface TaskView {
  id: string;
  state: string;
  contentLength?: number;
}

const mounted = mountTmpfs(48);
const skip = typeof mounted === 'string' ? false : mounted.skip;

describe('a full disk (ENOSPC)', { skip }, () => {
  const mnt = mounted as string;
  const origin = new Origin();
  let daemon: DaemonHandle;
  let out: string;
  const a = { size: 20 * MiB + 11, seed: 61 };
  const b = { size: 40 * MiB + 5, seed: 62 };
  const c = { size: 6 * MiB + 3, seed: 63 };
  let urlA: string;
  let urlB: string;
  let urlC: string;

  const dfctl = (...args: string[]) => run([DFCTL, ...args, '-e', daemon.socket]);

  async function listTasks(): Promise<TaskView[]> {
    const r = await dfctl('task', 'ls', '-o', 'json');
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as TaskView[];
  }

  async function assertAIntact(): Promise<void> {
    const before = origin.requests.filter((r) => r.path === '/a').length;
    const dst = join(out, `a-${Date.now()}`);
    const r = await dfget(daemon, urlA, dst);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await sha256File(dst), contentSha256(a.seed, a.size), 'A byte-exact');
    assert.equal(origin.requests.filter((r) => r.path === '/a').length, before, 'A is a cache hit');
    const t = (await listTasks()).find((v) => v.contentLength === a.size);
    assert.ok(t, 'A is still listed');
    assert.equal(t.state, 'Succeeded');
  }

  /** One line on stderr, exit 1, naming the lack of space. */
  function assertNoSpaceError(r: { code: number | null; stderr: string; stdout: string }): void {
    assert.equal(r.code, 1, r.stderr);
    const lines = r.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, /^Error: .*(no space left on device|not enough disk space)/i);
  }

  before(async () => {
    await origin.start();
    urlA = origin.add('/a', a);
    urlB = origin.add('/b', b);
    // Slow answers so the test can fill the disk between the task's creation and its piece writes.
    urlC = origin.add('/c', { ...c, delayMs: 1500 });
    // Outputs go to the ordinary temp dir: only the daemon's own files are on the small disk.
    out = tempDir('dft-enospc-out-');
    daemon = await startDaemon({
      dir: mnt,
      // GC only runs when the test asks (no TTL, a long interval).
      extraConfig: 'gc:\n  interval: 1h\n  policy:\n    taskTTL: 0s\n',
    });
  });

  after(async () => {
    if (daemon) await stopDaemon(daemon, { keepDir: true });
    await origin.stop();
    rmSync(out, { recursive: true, force: true });
    unmountTmpfs(mnt);
  });

  test('A (20 MiB) downloads byte-exact onto the 48 MiB disk', async () => {
    const r = await dfget(daemon, urlA, join(out, 'a'));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await sha256File(join(out, 'a')), contentSha256(a.seed, a.size));
  });

  test('B (40 MiB) does not fit: exit 1 with one line naming the lack of space; A intact', async () => {
    const r = await dfget(daemon, urlB, join(out, 'b'));
    assertNoSpaceError(r);
    assert.equal(existsSync(join(out, 'b')), false, 'no partial output');
    await assertAIntact();
  });

  test('after dfctl task rm A, the same dfget of B succeeds byte-exact', async () => {
    const t = (await listTasks()).find((v) => v.contentLength === a.size);
    assert.ok(t);
    const rm = await dfctl('task', 'rm', t.id);
    assert.equal(rm.code, 0, rm.stderr);
    const r = await dfget(daemon, urlB, join(out, 'b'));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await sha256File(join(out, 'b')), contentSha256(b.seed, b.size));
  });

  test('the disk fills while C (6 MiB, fits in the ~8 MiB left) is being written: C fails clearly, B intact; freed, C succeeds', async () => {
    const beforeFiles = new Set(contentFiles(daemon.storageDir));
    const filler = join(mnt, 'filler');
    const pending = dfget(daemon, urlC, join(out, 'c'));
    // Wait for C's content file (created sparse after the free-space check), then take every free byte.
    const deadline = Date.now() + 10_000;
    while (!contentFiles(daemon.storageDir).some((f) => !beforeFiles.has(f))) {
      assert.ok(Date.now() < deadline, `C content file created: ${daemon.logs.slice(-3).join('\n')}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    await fillDisk(filler);
    const fs = await statfs(mnt);
    assert.ok(fs.bavail * fs.bsize < 1 * MiB, 'the disk is full');
    const r = await pending;
    assertNoSpaceError(r);
    assert.equal(existsSync(join(out, 'c')), false, 'no partial output');
    // The metadata write that records the failure fails too (SQLITE_FULL): the daemon must live on.
    assert.equal(daemon.proc.exitCode, null, 'dfdaemon still runs');

    // B, finished before the disk filled, is still served from the cache.
    const beforeB = origin.requests.filter((q) => q.path === '/b').length;
    const rb = await dfget(daemon, urlB, join(out, 'b2'));
    assert.equal(rb.code, 0, rb.stderr);
    assert.equal(await sha256File(join(out, 'b2')), contentSha256(b.seed, b.size));
    assert.equal(origin.requests.filter((q) => q.path === '/b').length, beforeB, 'B is a cache hit');

    await unlink(filler);
    const again = await dfget(daemon, urlC, join(out, 'c'));
    assert.equal(again.code, 0, again.stderr);
    assert.equal(await sha256File(join(out, 'c')), contentSha256(c.seed, c.size));
  });
});
