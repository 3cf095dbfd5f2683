// Connection caps of dfdaemon's listeners (src/daemon/connection-limits.ts): the open-file limit read from
// /proc/self/limits, and each configured cap lowered to its share of it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connectionCaps, openFileLimit } from '../../../src/daemon/connection-limits.js';
import { defaultConfig } from '../../../src/config/dfdaemon.js';

const LIMITS = `Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max open files            1024                 1048576              files
Max locked memory         8388608              8388608              bytes
`;

test('openFileLimit reads the soft limit; unlimited or unreadable is no limit', () => {
  assert.equal(openFileLimit(LIMITS), 1024);
  assert.equal(openFileLimit(LIMITS.replace(/1024 {17}/, 'unlimited        ')), undefined);
  assert.equal(openFileLimit('nothing here'), undefined);
  if (process.platform === 'linux') assert.ok((openFileLimit() ?? 0) > 0, 'this process has a limit');
});

test('the defaults apply as they are under a large open-file limit, and no limit at all', () => {
  const config = defaultConfig();
  for (const limit of [1_048_576, undefined]) {
    const { caps, lowered } = connectionCaps(config, limit);
    assert.deepEqual(caps, {
      vortex: 2048,
      upload: 1024,
      proxy: 2048,
      download: 1024,
      scheduler: 4096,
      health: 64,
      metrics: 64,
      stats: 64,
    });
    assert.deepEqual(lowered, []);
  }
});

test('under 1024 open files each cap is lowered to its share, and the lowering names the key', () => {
  const config = defaultConfig();
  const { caps, lowered } = connectionCaps(config, 1024);
  assert.deepEqual(caps, {
    vortex: 170,
    upload: 102,
    proxy: 85,
    download: 32,
    scheduler: 32,
    health: 32,
    metrics: 32,
    stats: 32,
  });
  const total = Object.values(caps).reduce((a, b) => a + b, 0);
  assert.ok(1024 - total - caps.vortex - caps.proxy > 250, 'listeners and what they hold leave 250 files');
  assert.deepEqual(
    lowered.map((l) => l.key),
    [
      'storage.server.maxConnections',
      'upload.server.maxConnections',
      'proxy.server.maxConnections',
      'download.server.maxConnections',
      'embeddedScheduler.maxConnections',
      'health.server.maxConnections',
      'metrics.server.maxConnections',
      'stats.server.maxConnections',
    ],
  );
  // A configured cap below its share is kept.
  config.storage.server.maxConnections = 50;
  assert.equal(connectionCaps(config, 1024).caps.vortex, 50);
  // A tiny limit still leaves each listener one connection.
  assert.equal(connectionCaps(config, 10).caps.health, 1);
});
