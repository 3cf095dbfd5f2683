// dfget-directory.ts: where a listed entry is written. Entries that would land outside the output directory are
// refused, and so is a symlink met in the output tree.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, symlinkSync, writeFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { prepareOutput, relativeEntryPath } from '../../../src/cli/dfget-directory.js';
import { tempDir } from '../../helpers/daemon.js';

const base = new URL('s3://b/data/');
const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

test('an entry under the directory URL maps to its decoded relative path', () => {
  assert.equal(relativeEntryPath(base, 's3://b/data/x/y%20z.bin'), 'x/y z.bin');
});

test('entries that would climb out or name another place are refused', () => {
  for (const [url, why] of [
    // WHATWG URL parsing already resolves an encoded `..` (and so it is no longer under the directory).
    ['s3://b/data/%2e%2e/etc', /is not under s3:\/\/b\/data\//],
    ['s3://b/data/a%2Fb', /outside the output directory/],
    ['s3://b/data/a%5Cb', /outside the output directory/],
    ['s3://b/data/x//y', /segment ""/],
    ['s3://b/data/../etc/passwd', /is not under s3:\/\/b\/data\//],
    ['s3://other/data/a', /is not under/],
    ['gs://b/data/a', /is not under/],
  ] as const) {
    assert.throws(() => relativeEntryPath(base, url), why, url);
  }
});

test('parents are made inside the root; a symlinked directory or file is never written through', async () => {
  const root = tempDir('dft-dir-out-');
  const elsewhere = tempDir('dft-dir-else-');
  dirs.push(root, elsewhere);
  assert.equal(await prepareOutput(root, 'a/b/c.bin'), join(root, 'a/b/c.bin'));
  symlinkSync(elsewhere, join(root, 'link'));
  await assert.rejects(
    prepareOutput(root, 'link/x.bin'),
    /link is a symlink: a directory download never writes/,
  );
  writeFileSync(join(elsewhere, 'target'), 'x');
  mkdirSync(join(root, 'd'));
  symlinkSync(join(elsewhere, 'target'), join(root, 'd/f.bin'));
  await assert.rejects(prepareOutput(root, 'd/f.bin'), /f\.bin is a symlink/);
  writeFileSync(join(root, 'plain'), 'x');
  await assert.rejects(prepareOutput(root, 'plain/x.bin'), /plain is not a directory/);
  assert.deepEqual(readdirSync(elsewhere), ['target']);
});
