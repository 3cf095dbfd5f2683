// Issue 16, items 3 and 4: a root dfdaemon and a second, unprivileged user (nobody, run with setpriv) on one host.
// The user's dfget and its proxy requests may make dfdaemon write only where that user could itself; outputs
// cannot be used to change the cache; a symlink cannot lead an output into storage.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { Origin, contentSha256 } from '../helpers/origin.js';
import { DFGET, startDaemon, stopDaemon, tempDir, type DaemonHandle } from '../helpers/daemon.js';
import { runCommand } from '../helpers/exec.js';
import { sha256File } from '../helpers/files.js';

const MiB = 1024 * 1024;
const NOBODY = 65534;
const NOGROUP = 65534;

/** Runs a command as nobody (setpriv: real and effective ids, no supplementary groups). */
function asNobody(cmd: string, args: string[], timeoutMs = 60_000) {
  return runCommand(
    'setpriv',
    [`--reuid=${NOBODY}`, `--regid=${NOGROUP}`, '--clear-groups', '--', cmd, ...args],
    { timeoutMs },
  );
}

/** Why this machine cannot run the test (not root, no setpriv, or nobody cannot run node on the build), if so. */
function cannotRun(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (a root dfdaemon and a second user)';
  const r = spawnSync(
    'setpriv',
    [`--reuid=${NOBODY}`, `--regid=${NOGROUP}`, '--clear-groups', '--', process.execPath, DFGET, '--version'],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) return `nobody cannot run dfget here: ${r.error?.message ?? r.stderr}`;
  const perl = spawnSync('perl', ['-e', '1']);
  if (perl.status !== 0) return 'perl is not installed (dfdaemon reads SO_PEERCRED with it)';
  return undefined;
}

const skip = cannotRun();

describe('local users: a root dfdaemon and an unprivileged user', { skip }, () => {
  const origin = new Origin();
  let daemon: DaemonHandle;
  /** root's, 0700: nobody can neither enter nor write it. */
  let rootOnly: string;
  /** root's, 0755: nobody can enter but not write it. */
  let rootShared: string;
  /** 1777 like /tmp. */
  let sticky: string;
  /** nobody's own directory. */
  let mine: string;
  let base: string;

  before(async () => {
    await origin.start();
    daemon = await startDaemon();
    // The socket's directory must be reachable, as /var/run/dragonfly is (the socket itself is 0777).
    chmodSync(daemon.dir, 0o755);
    base = tempDir('dft-users-');
    chmodSync(base, 0o755);
    rootOnly = join(base, 'root-only');
    rootShared = join(base, 'root-shared');
    sticky = join(base, 'sticky');
    mine = join(base, 'mine');
    for (const d of [rootOnly, rootShared, sticky, mine]) mkdirSync(d);
    chmodSync(rootOnly, 0o700);
    chmodSync(rootShared, 0o755);
    chmodSync(sticky, 0o1777);
    chownSync(mine, NOBODY, NOGROUP);
  });

  after(async () => {
    await stopDaemon(daemon);
    await origin.stop();
    rmSync(base, { recursive: true, force: true });
  });

  const dfgetAs = (user: 'nobody' | 'root', url: string, output: string, extra: string[] = []) => {
    const args = [DFGET, url, '-O', output, '-e', daemon.socket, '--no-progress', ...extra];
    return user === 'nobody'
      ? asNobody(process.execPath, args)
      : runCommand(process.execPath, args, { timeoutMs: 60_000 });
  };

  test("nobody's dfget cannot create a file in root's 0700 directory", async () => {
    const url = origin.add('/u1', { size: MiB, seed: 31 });
    const target = join(rootOnly, 'x');
    const r = await dfgetAs('nobody', url, target);
    assert.equal(r.code, 1, r.stderr);
    // dfget itself cannot even look into the directory; dfdaemon would have written there as root.
    assert.match(r.stderr, /Error: .*(permission denied|not a directory)/i);
    assert.equal(existsSync(target), false);
  });

  test("nobody's dfget cannot create a file in root's 0755 directory: refused naming the permission", async () => {
    const url = origin.add('/u2', { size: MiB, seed: 32 });
    const target = join(rootShared, 'x');
    const r = await dfgetAs('nobody', url, target);
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      r.stderr,
      /permission denied: uid 65534 \(gid 65534.*\) may not create files \(w\) in directory .*root-shared \(owner 0, group 0, mode 0755\)/,
    );
    assert.equal(existsSync(target), false);
  });

  test("nobody's dfget --overwrite of root's 0600 file is refused, and the file is unchanged", async () => {
    const url = origin.add('/u3', { size: MiB, seed: 33 });
    for (const dir of [rootShared, sticky]) {
      const target = join(dir, 'roots-secret');
      writeFileSync(target, 'root only\n', { mode: 0o600 });
      const r = await dfgetAs('nobody', url, target, ['--overwrite']);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /permission denied: uid 65534 .*may not (create files \(w\)|replace it)/);
      assert.equal(readFileSync(target, 'utf8'), 'root only\n');
      assert.equal(statSync(target).uid, 0);
      assert.equal(statSync(target).mode & 0o777, 0o600);
    }
  });

  test("nobody's dfget into its own directory works; the output cannot be used to change the cache", async () => {
    const url = origin.add('/u4', { size: 9 * MiB, seed: 34 });
    const target = join(mine, 'model.bin');
    const r = await dfgetAs('nobody', url, target);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await sha256File(target), contentSha256(34, 9 * MiB));
    // A read-only hard link of the sealed content: nobody can neither write it nor make it writable.
    const st = statSync(target);
    assert.equal(st.mode & 0o777, 0o444);
    const edit = await asNobody('sh', ['-c', `printf x >> '${target}'`]);
    assert.notEqual(edit.code, 0);
    const chmod = await asNobody('chmod', ['u+w', target]);
    assert.notEqual(chmod.code, 0);
    // And it may replace its own output, being allowed to remove it anyway.
    const again = await dfgetAs('nobody', url, target, ['--overwrite']);
    assert.equal(again.code, 0, again.stderr);
    // Transfer mode writes the file as nobody: it is nobody's.
    const own = join(mine, 'own.bin');
    const t = await dfgetAs('nobody', url, own, ['--transfer-from-dfdaemon']);
    assert.equal(t.code, 0, t.stderr);
    assert.equal(statSync(own).uid, NOBODY);
  });

  test('X-Dragonfly-Output-Path from nobody is held to the same rule; a failed write is never a 200', async () => {
    const url = origin.add('/u5', { size: MiB, seed: 35 });
    const curlAs = async (user: 'nobody' | 'root', output: string) => {
      const args = [
        '-s',
        '-o',
        '-',
        '-w',
        '\n%{http_code}',
        '-x',
        `http://127.0.0.1:${daemon.proxyPort}`,
        '-H',
        'X-Dragonfly-Use-P2P: true',
        '-H',
        `X-Dragonfly-Output-Path: ${output}`,
        url,
      ];
      const r = user === 'nobody' ? await asNobody('curl', args) : await runCommand('curl', args);
      const at = r.stdout.lastIndexOf('\n');
      return { status: Number(r.stdout.slice(at + 1)), body: r.stdout.slice(0, at) };
    };
    const denied = await curlAs('nobody', join(rootShared, 'from-proxy'));
    assert.equal(denied.status, 403, denied.body);
    assert.match(denied.body, /permission denied: uid 65534 .*may not create files/);
    assert.equal(existsSync(join(rootShared, 'from-proxy')), false);

    const okMine = await curlAs('nobody', join(mine, 'from-proxy'));
    assert.equal(okMine.status, 200);
    assert.equal(await sha256File(join(mine, 'from-proxy')), contentSha256(35, MiB));

    // The output exists: the proxy never overwrites, and says so instead of answering 200 with the body.
    const exists = await curlAs('root', join(mine, 'from-proxy'));
    assert.equal(exists.status, 409, exists.body);
    assert.match(exists.body, /already exists/);
  });
});

describe(
  'the cache is immutable to users (root dfget)',
  { skip: process.getuid?.() === 0 ? undefined : 'root' },
  () => {
    const origin = new Origin();
    let daemon: DaemonHandle;
    let out: string;

    before(async () => {
      await origin.start();
      daemon = await startDaemon();
      out = tempDir('dft-immutable-');
    });

    after(async () => {
      await stopDaemon(daemon);
      await origin.stop();
      rmSync(out, { recursive: true, force: true });
    });

    test('an output edited in place (root can write the read-only link) is never served as the task', async () => {
      const size = 5 * MiB;
      const url = origin.add('/edited', { size, seed: 41 });
      const first = join(out, 'first');
      assert.equal(
        (await runCommand(process.execPath, [DFGET, url, '-O', first, '-e', daemon.socket])).code,
        0,
      );
      // In place: same inode (O_TRUNC on the existing file), as an editor writing through a hard link does.
      const fd = openSync(first, 'r+');
      writeSync(fd, 'edited by a user\n', 0);
      closeSync(fd);
      const before = origin.requests.length;
      const second = join(out, 'second');
      const r = await runCommand(process.execPath, [DFGET, url, '-O', second, '-e', daemon.socket]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(await sha256File(second), contentSha256(41, size));
      assert.ok(origin.requests.length > before, 'the changed task was fetched again');
      assert.ok(daemon.logs.some((l) => l.includes('stored task changed after it finished')));
    });

    test('a symlink into storage does not lead an output onto another task', async () => {
      const size = 20 * MiB;
      const victimUrl = origin.add('/victim', { size, seed: 42 });
      const v = join(out, 'victim');
      assert.equal(
        (await runCommand(process.execPath, [DFGET, victimUrl, '-O', v, '-e', daemon.socket])).code,
        0,
      );
      const tasks = join(daemon.storageDir, 'content', 'tasks');
      const victimFile = readdirSync(tasks)
        .flatMap((d) => readdirSync(join(tasks, d)).map((f) => join(d, f)))
        .find((f) => statSync(join(tasks, f)).size === size)!;
      const link = join(out, 'innocent-looking');
      symlinkSync(tasks, link);
      const attackerUrl = origin.add('/attacker', { size: 26, seed: 43 });
      const r = await runCommand(process.execPath, [
        DFGET,
        attackerUrl,
        '-O',
        join(link, victimFile),
        '--overwrite',
        '-e',
        daemon.socket,
      ]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /inside dfdaemon's storage directory/);
      const again = join(out, 'victim-again');
      const r2 = await runCommand(process.execPath, [DFGET, victimUrl, '-O', again, '-e', daemon.socket]);
      assert.equal(r2.code, 0, r2.stderr);
      assert.equal(statSync(again).size, size);
      assert.equal(await sha256File(again), contentSha256(42, size));
    });
  },
);
