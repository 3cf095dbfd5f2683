import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { applyChange, readTextIfExists, statusOf } from '../../../src/init/files.js';

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
