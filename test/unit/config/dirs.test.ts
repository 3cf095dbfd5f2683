import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  defaultCacheDir,
  defaultCanWrite,
  defaultDfdaemonConfigPath,
  defaultDynconfigPath,
  defaultLogDir,
  defaultPluginDir,
  defaultSocketPath,
  resolveDirs,
  SYSTEM_DIRS,
} from '../../../src/config/dirs.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'df-config-dirs-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('system layout matches upstream lib.rs on Linux', () => {
  assert.equal(defaultDfdaemonConfigPath(), '/etc/dragonfly/dfdaemon.yaml');
  assert.equal(defaultDynconfigPath(), '/etc/dragonfly/dynconfig.yaml');
  assert.equal(defaultSocketPath(), '/var/run/dragonfly/dfdaemon.sock');
  assert.equal(defaultLogDir(), '/var/log/dragonfly/dfdaemon');
  assert.equal(defaultLogDir(SYSTEM_DIRS, 'dfget'), '/var/log/dragonfly/dfget');
  assert.equal(defaultPluginDir(), '/usr/local/lib/dragonfly/plugins/dfdaemon');
  assert.equal(defaultCacheDir(), '/var/cache/dragonfly/dfdaemon');
  assert.equal(SYSTEM_DIRS.storageDir, '/var/lib/dragonfly');
});

test('writable system directories are kept, with no note', () => {
  const r = resolveDirs({ canWrite: () => true, homeDir: tmp, platform: 'linux' });
  assert.deepEqual(r.dirs, SYSTEM_DIRS);
  assert.deepEqual(r.fallbacks, []);
  assert.equal(r.note, undefined);
});

test('unwritable system directories fall back to ~/.dragonfly, reported once', () => {
  const home = fs.mkdtempSync(path.join(tmp, 'home-'));
  const writable = new Set(['/var/log/dragonfly']);
  const r = resolveDirs({ canWrite: (d) => writable.has(d), env: { HOME: home }, platform: 'linux' });
  const root = path.join(home, '.dragonfly');
  assert.equal(r.dirs.runDir, root);
  assert.equal(defaultSocketPath(r.dirs), path.join(root, 'dfdaemon.sock'));
  assert.equal(r.dirs.storageDir, path.join(root, 'storage'));
  assert.equal(r.dirs.cacheDir, path.join(root, 'cache'));
  assert.equal(r.dirs.logDir, '/var/log/dragonfly');
  // Read-only directories keep their system location.
  assert.equal(r.dirs.configDir, '/etc/dragonfly');
  assert.equal(r.dirs.pluginDir, '/usr/local/lib/dragonfly/plugins');
  assert.ok(r.note);
  assert.equal(r.note.split('\n').length, 1);
  assert.match(r.note, /\/var\/run\/dragonfly/);
  assert.match(r.note, /\/var\/lib\/dragonfly/);
  assert.ok(r.note.includes(root));
  assert.ok(r.fallbacks.some((f) => f.system === '/var/lib/dragonfly'));
});

test('macOS uses the ~/.dragonfly layout as upstream does', () => {
  const r = resolveDirs({ homeDir: '/Users/u', platform: 'darwin', canWrite: () => true });
  assert.equal(r.dirs.configDir, '/Users/u/.dragonfly/config');
  assert.equal(r.dirs.logDir, '/Users/u/.dragonfly/logs');
  assert.equal(r.note, undefined);
});

test('defaultCanWrite: writable, creatable below a writable ancestor, and not under a file', () => {
  assert.equal(defaultCanWrite(tmp), true);
  assert.equal(defaultCanWrite(path.join(tmp, 'a', 'b', 'c')), true);
  assert.equal(fs.existsSync(path.join(tmp, 'a')), false, 'creates nothing');
  const file = path.join(tmp, 'file');
  fs.writeFileSync(file, '');
  assert.equal(defaultCanWrite(path.join(file, 'sub')), false);
});
