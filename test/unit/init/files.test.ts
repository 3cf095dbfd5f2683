import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  applyChange,
  directoryProblem,
  readTextIfExists,
  statusOf,
  writeProblems,
} from '../../../src/init/files.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dfinit-files-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('unchanged: nothing written, no backup', () => {
  const f = path.join(tmp, 'same.toml');
  fs.writeFileSync(f, 'a = 1\n');
  const r = applyChange({ path: f, before: 'a = 1\n', after: 'a = 1\n' });
  assert.equal(r.status, 'unchanged');
  assert.equal(fs.existsSync(f + '.dfinit.bak'), false);
});

test('created: directories made, no backup', () => {
  const f = path.join(tmp, 'new/dir/hosts.toml');
  assert.equal(readTextIfExists(f), undefined);
  const r = applyChange({ path: f, before: undefined, after: 'x\n' });
  assert.deepEqual(r, { path: f, status: 'created', backup: undefined });
  assert.equal(fs.readFileSync(f, 'utf8'), 'x\n');
});

test('updated: the first backup is the original and is never overwritten; mode kept', () => {
  const f = path.join(tmp, 'config.toml');
  fs.writeFileSync(f, 'original\n', { mode: 0o600 });
  fs.chmodSync(f, 0o600);
  const r1 = applyChange({ path: f, before: 'original\n', after: 'first\n' });
  assert.equal(r1.status, 'updated');
  assert.equal(r1.backup, f + '.dfinit.bak');
  assert.equal(fs.readFileSync(f + '.dfinit.bak', 'utf8'), 'original\n');
  assert.equal(fs.readFileSync(f, 'utf8'), 'first\n');
  assert.equal(fs.statSync(f).mode & 0o777, 0o600);

  const r2 = applyChange(
    { path: f, before: 'first\n', after: 'second\n' },
    new Date('2030-01-02T03:04:05.678Z'),
  );
  assert.equal(r2.backup, f + '.dfinit.20300102T030405Z.bak');
  assert.equal(fs.readFileSync(f + '.dfinit.bak', 'utf8'), 'original\n');
  assert.equal(fs.readFileSync(r2.backup!, 'utf8'), 'first\n');
  const r3 = applyChange(
    { path: f, before: 'second\n', after: 'third\n' },
    new Date('2030-01-02T03:04:05.999Z'),
  );
  assert.equal(r3.backup, f + '.dfinit.20300102T030405Z-1.bak');
  assert.deepEqual(
    fs
      .readdirSync(tmp)
      .filter((n) => n.startsWith('config.toml'))
      .sort(),
    [
      'config.toml',
      'config.toml.dfinit.20300102T030405Z-1.bak',
      'config.toml.dfinit.20300102T030405Z.bak',
      'config.toml.dfinit.bak',
    ],
  );
});

test('a symlinked config is written through the link', () => {
  const real = path.join(tmp, 'real.json');
  const link = path.join(tmp, 'daemon.json');
  fs.writeFileSync(real, '{}');
  fs.symlinkSync(real, link);
  applyChange({ path: link, before: '{}', after: '{"a":1}\n' });
  assert.ok(fs.lstatSync(link).isSymbolicLink());
  assert.equal(fs.readFileSync(real, 'utf8'), '{"a":1}\n');
  assert.equal(fs.readFileSync(link + '.dfinit.bak', 'utf8'), '{}');
});

test('status of a change', () => {
  assert.equal(statusOf({ path: 'p', before: undefined, after: '' }), 'created');
  assert.equal(statusOf({ path: 'p', before: 'a', after: 'b' }), 'updated');
});

test('read errors other than a missing file name the file', () => {
  assert.throws(() => readTextIfExists(tmp), new RegExp(`${tmp}: cannot read: is a directory`));
});

// Issue 17: every target is checked before any is written (the permission cases run as a user without root in
// test/integration/dfinit-permissions.test.ts; root may write anywhere).
test('writeProblems: missing directories that can be created are fine; a file in the way is named', () => {
  const base = path.join(tmp, 'check');
  fs.mkdirSync(base);
  fs.writeFileSync(path.join(base, 'plain-file'), '');
  assert.deepEqual(
    writeProblems([{ path: path.join(base, 'a/b/c/hosts.toml'), before: undefined, after: 'x' }]),
    [],
  );
  const blocked = path.join(base, 'plain-file/docker.io/hosts.toml');
  assert.deepEqual(writeProblems([{ path: blocked, before: undefined, after: 'x' }]), [
    `${blocked}: ${path.join(base, 'plain-file')} is not a directory`,
  ]);
  // Unchanged files are not written, so not checked.
  assert.deepEqual(writeProblems([{ path: blocked, before: 'x', after: 'x' }]), []);
  assert.equal(directoryProblem(path.join(base, 'x/y')), undefined);
  assert.equal(fs.existsSync(path.join(base, 'a')), false, 'the check creates nothing');
});
