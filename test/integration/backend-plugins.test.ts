// The worked example plugin (examples/plugins/backend/file.mjs) in a real dfdaemon: loaded from server.pluginDir,
// serving file:// downloads piece by piece and a directory download, refusing paths outside its root; and a
// broken plugin stops dfdaemon at start-up with one line naming the file.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  DFDAEMON,
  dfget,
  run,
  startDaemon,
  stopDaemon,
  tempDir,
  testConfig,
  type DaemonHandle,
} from '../helpers/daemon.js';
import { REPO_ROOT } from '../helpers/module-imports.js';

const MiB = 1024 * 1024;
const EXAMPLE = join(REPO_ROOT, 'examples/plugins/backend/file.mjs');

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

describe('backend plugins: the file:// example', () => {
  const root = tempDir('dft-plugin-root-');
  const plugins = tempDir('dft-plugin-dir-');
  const out = tempDir('dft-plugin-out-');
  let daemon: DaemonHandle;
  const data = randomBytes(9 * MiB);

  before(async () => {
    mkdirSync(join(plugins, 'backend'));
    copyFileSync(EXAMPLE, join(plugins, 'backend/file.mjs'));
    writeFileSync(join(root, 'weights.bin'), data);
    mkdirSync(join(root, 'tree/sub'), { recursive: true });
    writeFileSync(join(root, 'tree/a.txt'), 'a');
    writeFileSync(join(root, 'tree/sub/b.txt'), 'bb');
    daemon = await startDaemon({
      extraConfig: `server:\n  pluginDir: ${plugins}\n`,
      env: { DRAGONFLY_FILE_PLUGIN_ROOT: root },
    });
  });

  after(async () => {
    await stopDaemon(daemon);
    for (const d of [root, plugins, out]) rmSync(d, { recursive: true, force: true });
  });

  test('dfdaemon logs the plugin it loaded', () => {
    assert.ok(
      daemon.logs.some((l) => l.includes('backend plugin loaded') && l.includes('"scheme":"file"')),
      daemon.logs.join('\n'),
    );
  });

  test('a 3-piece file downloads byte-exact through the plugin', async () => {
    const r = await dfget(daemon, pathToFileURL(join(root, 'weights.bin')).href, join(out, 'w'));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(sha256(readFileSync(join(out, 'w'))), sha256(data));
  });

  test('a directory downloads through the plugin listing', async () => {
    const dir = join(out, 'tree');
    mkdirSync(dir);
    const r = await dfget(daemon, pathToFileURL(join(root, 'tree')).href, dir, ['--recursive']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(readdirSync(dir, { recursive: true }).sort(), ['a.txt', 'sub', 'sub/b.txt']);
    assert.equal(readFileSync(join(dir, 'sub/b.txt'), 'utf8'), 'bb');
  });

  test('a path outside the plugin root is refused in one line', async () => {
    const r = await dfget(daemon, 'file:///etc/hostname', join(out, 'nope'));
    assert.equal(r.code, 1);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /file plugin: file:\/\/\/etc\/hostname is outside /);
  });
});

test('a broken plugin stops dfdaemon at start-up with one line naming the file', async () => {
  const dir = tempDir('dft-plugin-broken-');
  try {
    mkdirSync(join(dir, 'plugins/backend'), { recursive: true });
    const bad = join(dir, 'plugins/backend/ftp.mjs');
    writeFileSync(bad, 'export default { stat() {} };\n');
    const config = join(dir, 'dfdaemon.yaml');
    writeFileSync(config, testConfig(dir, `server:\n  pluginDir: ${join(dir, 'plugins')}\n`));
    const r = await run([DFDAEMON, '-c', config, '--log-dir', join(dir, 'logs')], { env: { HOME: dir } });
    assert.equal(r.code, 1);
    const lines = r.stderr
      .trim()
      .split('\n')
      .filter((l) => !l.includes('warning'));
    assert.deepEqual(lines, [`dfdaemon: backend plugin ${bad}: the backend has no get() function`]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
