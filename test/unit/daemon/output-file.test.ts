import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { mayAccess, mayReplace, W_OK, X_OK, type Caller } from '../../../src/core/caller.js';
import { DfError } from '../../../src/core/errors.js';
import { OutputFile } from '../../../src/daemon/output-file.js';

const isCode = (code: string, re?: RegExp) => (e: unknown) =>
  e instanceof DfError && e.code === code && (!re || re.test(e.message));

const internal: Caller = { kind: 'internal' };
const user = (uid: number, gid = uid, groups: number[] = []): Caller => ({
  kind: 'local',
  cred: { uid, gid, groups },
  via: 'test',
});

let dir: string;
let storage: string;
let content: string;

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'output-file-'));
  fs.chmodSync(dir, 0o755);
  storage = path.join(dir, 'storage');
  fs.mkdirSync(storage);
  content = path.join(storage, 'content');
  fs.writeFileSync(content, 'data');
});

after(() => fs.rmSync(dir, { recursive: true, force: true }));

const leftovers = (d: string): string[] => fs.readdirSync(d).filter((f) => f.includes('.dfget-'));

function out(p: string, caller: Caller = internal, overwrite = false): Promise<OutputFile> {
  return OutputFile.open({ path: p, caller, overwrite, storageDir: storage });
}

test('mayAccess follows owner / group / other bits; root passes; sticky directories protect other owners', () => {
  const f = { mode: 0o40750, uid: 10, gid: 20 };
  assert.equal(mayAccess(f, { uid: 10, gid: 99, groups: [] }, W_OK | X_OK), true);
  assert.equal(mayAccess(f, { uid: 11, gid: 20, groups: [] }, X_OK), true);
  assert.equal(mayAccess(f, { uid: 11, gid: 21, groups: [20] }, W_OK), false);
  assert.equal(mayAccess(f, { uid: 12, gid: 30, groups: [] }, X_OK), false);
  assert.equal(mayAccess(f, { uid: 0, gid: 0, groups: [] }, W_OK), true);
  const tmp = { mode: 0o41777, uid: 0, gid: 0 };
  assert.equal(mayReplace(tmp, { mode: 0o100600, uid: 0, gid: 0 }, { uid: 5, gid: 5, groups: [] }), false);
  assert.equal(mayReplace(tmp, { mode: 0o100600, uid: 5, gid: 5 }, { uid: 5, gid: 5, groups: [] }), true);
});

test('link: links; an existing link to the same file is fine; another file there is ALREADY_EXISTS', async () => {
  const to = path.join(dir, 'linked');
  const o = await out(to);
  await o.link(content);
  assert.equal(fs.statSync(to).ino, fs.statSync(content).ino);
  assert.equal(await o.isFile(content), true);
  await o.link(content); // already this content: ok
  await o.close();

  const other = path.join(dir, 'other');
  fs.writeFileSync(other, 'data');
  await assert.rejects(out(other), isCode('ALREADY_EXISTS', /--overwrite/));
  assert.equal(fs.readFileSync(other, 'utf8'), 'data', 'the existing file is left alone');
});

test('copy replaces an existing file atomically (a reader of the old file keeps the old bytes), mode 0644', async () => {
  const outDir = fs.mkdtempSync(path.join(dir, 'copy-'));
  const to = path.join(outDir, 'out');
  fs.writeFileSync(to, 'old content');
  const oldFd = fs.openSync(to, 'r');
  fs.chmodSync(content, 0o444);
  try {
    const o = await out(to, internal, true);
    await o.copy(content);
    await o.close();
    assert.equal(fs.readFileSync(to, 'utf8'), 'data');
    assert.equal(fs.statSync(to).mode & 0o777, 0o644, 'a copy is writable by its owner');
    const buf = Buffer.alloc(32);
    const n = fs.readSync(oldFd, buf, 0, 32, 0);
    assert.equal(buf.subarray(0, n).toString(), 'old content');
  } finally {
    fs.closeSync(oldFd);
    fs.chmodSync(content, 0o644);
  }
  assert.deepEqual(leftovers(outDir), []);
});

test('copy failures leave neither a partial file nor a temporary one', async () => {
  const outDir = fs.mkdtempSync(path.join(dir, 'copyfail-'));
  await assert.rejects(out(path.join(outDir, 'no', 'out')), isCode('INVALID_ARGUMENT', /does not exist/));
  const asDir = path.join(outDir, 'isdir');
  fs.mkdirSync(asDir);
  await assert.rejects(out(asDir, internal, true), isCode('INVALID_ARGUMENT', /is a directory/));
  const o = await out(path.join(outDir, 'out2'));
  await assert.rejects(o.copy(path.join(storage, 'nosuchtask')), isCode('IO'));
  await o.close();
  assert.equal(fs.existsSync(path.join(outDir, 'out2')), false);
  assert.deepEqual(leftovers(outDir), []);
});

test('copy into a read-only filesystem fails and leaves nothing there', async (t) => {
  const ro = fs.mkdtempSync(path.join(dir, 'ro-'));
  let mounted = false;
  if (process.getuid?.() === 0) {
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', ro], { stdio: 'pipe' });
      mounted = true;
    } catch (e) {
      t.skip(`root ignores directory permissions and a read-only tmpfs cannot be mounted: ${String(e)}`);
      return;
    }
  } else {
    fs.chmodSync(ro, 0o555);
  }
  try {
    const o = await out(path.join(ro, 'out'));
    await assert.rejects(o.copy(content), (e: unknown) => e instanceof DfError);
    await o.close();
    assert.deepEqual(fs.readdirSync(ro), []);
  } finally {
    if (mounted) execFileSync('umount', [ro]);
    else fs.chmodSync(ro, 0o755);
  }
});

test('an output whose directory is a symlink into storage is refused (checked after resolving symlinks)', async () => {
  const link = path.join(dir, 'looks-harmless');
  fs.symlinkSync(storage, link);
  await assert.rejects(
    out(path.join(link, 'content'), internal, true),
    isCode('PERMISSION_DENIED', /inside dfdaemon's storage directory .*once symlinks are resolved/),
  );
  assert.equal(fs.readFileSync(content, 'utf8'), 'data');
});

test('an existing symlink at the output name is replaced with overwrite, never followed', async () => {
  const victim = path.join(dir, 'victim');
  fs.writeFileSync(victim, 'victim bytes');
  const to = path.join(dir, 'via-symlink');
  fs.symlinkSync(victim, to);
  const o = await out(to, internal, true);
  await o.link(content);
  await o.close();
  assert.equal(fs.readFileSync(victim, 'utf8'), 'victim bytes');
  assert.equal(fs.lstatSync(to).isSymbolicLink(), false);
  assert.equal(fs.statSync(to).ino, fs.statSync(content).ino);
});

test('a caller is checked against the real modes: search on every directory above, write on its directory', async (t) => {
  if (process.getuid?.() !== 0) return t.skip('needs root to make files of other owners');
  const base = fs.mkdtempSync(path.join(dir, 'perm-'));
  fs.chmodSync(base, 0o755);
  const closed = path.join(base, 'closed');
  fs.mkdirSync(path.join(closed, 'open'), { recursive: true });
  fs.chmodSync(closed, 0o700);
  fs.chmodSync(path.join(closed, 'open'), 0o777);
  await assert.rejects(
    out(path.join(closed, 'open', 'x'), user(4242)),
    isCode(
      'PERMISSION_DENIED',
      /uid 4242 .*may not search \(x\) directory .*closed \(owner 0, group 0, mode 0700\)/,
    ),
  );
  // Through a symlink the caller owns: the real path is what counts.
  const mine = path.join(base, 'mine');
  fs.mkdirSync(mine);
  fs.chownSync(mine, 4242, 4242);
  fs.symlinkSync(path.join(closed, 'open'), path.join(mine, 'shortcut'));
  await assert.rejects(out(path.join(mine, 'shortcut', 'x'), user(4242)), isCode('PERMISSION_DENIED'));
  // Its own directory: fine; a group-writable one of its group: fine; of another group: refused.
  (await out(path.join(mine, 'x'), user(4242))).close();
  const grp = path.join(base, 'grp');
  fs.mkdirSync(grp);
  fs.chownSync(grp, 0, 777);
  fs.chmodSync(grp, 0o775);
  (await out(path.join(grp, 'x'), user(4242, 4242, [777]))).close();
  await assert.rejects(
    out(path.join(grp, 'x'), user(4242)),
    isCode('PERMISSION_DENIED', /create files \(w\)/),
  );
  // Overwrite of root's file in a sticky directory: refused; in its own directory: it could rm it, so fine.
  const sticky = path.join(base, 'sticky');
  fs.mkdirSync(sticky);
  fs.chmodSync(sticky, 0o1777);
  fs.writeFileSync(path.join(sticky, 'roots'), 'x', { mode: 0o600 });
  await assert.rejects(
    out(path.join(sticky, 'roots'), user(4242), true),
    isCode('PERMISSION_DENIED', /may not replace it .*sticky directory/),
  );
  fs.writeFileSync(path.join(mine, 'roots'), 'x', { mode: 0o600 });
  (await out(path.join(mine, 'roots'), user(4242), true)).close();
});

test('unidentified and remote callers get no output path, with the reason', async () => {
  await assert.rejects(
    out(path.join(dir, 'u'), { kind: 'unidentified', why: 'perl not found', via: 'the download socket' }),
    isCode(
      'PERMISSION_DENIED',
      /cannot tell which user is calling over the download socket \(perl not found\)/,
    ),
  );
  await assert.rejects(
    out(path.join(dir, 'r'), { kind: 'remote', via: 'the upload port' }),
    isCode('PERMISSION_DENIED', /over the upload port/),
  );
});
