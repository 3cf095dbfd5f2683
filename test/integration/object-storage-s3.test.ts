// s3:// end to end against a real S3-compatible server (s3rver, an npm devDependency): the cases every object
// storage scheme passes (helpers/object-store-cases.ts), and the directory download's refusals.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { dfget, startDaemon, stopDaemon, tempDir } from '../helpers/daemon.js';
import { objectStoreCases } from '../helpers/object-store-cases.js';
import { S3rverStore } from '../helpers/s3rver.js';

objectStoreCases(new S3rverStore('models'));

test('a directory download refuses hostile patterns, too many files and a symlink in the output tree', async () => {
  const store = new S3rverStore('hostile');
  await store.start();
  const daemon = await startDaemon();
  const dir = tempDir('dft-s3-hostile-');
  const elsewhere = tempDir('dft-s3-elsewhere-');
  try {
    for (const k of ['ds/a.txt', 'ds/b.txt', 'ds/train/c.bin']) await store.put(k, Buffer.from(k));
    const url = 's3://hostile/ds/';
    for (const bad of ['../etc/passwd', '/abs', 'a/./b', 'x/[oops']) {
      const r = await dfget(daemon, url, dir, ['-I', bad, ...store.flags()]);
      assert.equal(r.code, 1, bad);
      assert.match(r.stderr, /^Error: invalid --include-files/, bad);
      assert.equal(r.stderr.trim().split('\n').length, 1);
    }
    const few = await dfget(daemon, url, dir, ['--max-files', '2', ...store.flags()]);
    assert.equal(few.code, 1);
    assert.match(few.stderr, /holds 3 files to download, more than --max-files 2/);

    mkdirSync(join(dir, 'out'));
    symlinkSync(elsewhere, join(dir, 'out/train'));
    const r = await dfget(daemon, url, join(dir, 'out'), store.flags());
    assert.equal(r.code, 1);
    assert.match(r.stderr, /train is a symlink: a directory download never writes through it/);
    assert.deepEqual(readdirSync(elsewhere), [], 'nothing written through the symlink');
  } finally {
    await stopDaemon(daemon);
    await store.stop();
    rmSync(dir, { recursive: true, force: true });
    rmSync(elsewhere, { recursive: true, force: true });
  }
});
