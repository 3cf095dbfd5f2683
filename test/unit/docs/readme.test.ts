// The README's statements that the code decides (issue 17: "keep every statement true"): the listener table is
// the configuration's defaults, and the "Cap the cache" example loads without a warning and means what it says.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDfdaemonConfig } from '../../../src/config/load.js';
import { defaultSocketPath, homeDirs, SYSTEM_DIRS } from '../../../src/config/dirs.js';
import { parseByteSize } from '../../../src/core/bytesize.js';
import { parseDuration } from '../../../src/core/humantime.js';

const README = readFileSync(
  join(fileURLToPath(new URL('../../../../', import.meta.url)), 'README.md'),
  'utf8',
);

function section(heading: string): string {
  const start = README.indexOf(`\n${heading}\n`);
  assert.ok(start >= 0, `README.md has no "${heading}"`);
  const rest = README.slice(start + heading.length + 2);
  const end = rest.search(/^#{1,6} /m);
  return end < 0 ? rest : rest.slice(0, end);
}

const defaults = () =>
  parseDfdaemonConfig('', 'dfdaemon.yaml', { dirs: SYSTEM_DIRS, detectHostIp: () => '10.0.0.5' }).config;

test('"Where it listens" is the defaults: port, bind address, key', () => {
  const c = defaults();
  const listeners: Record<string, { ip?: string; port: number }> = {
    'upload.server': c.upload.server,
    'proxy.server': c.proxy.server,
    'metrics.server': c.metrics.server,
    'health.server': c.health.server,
    'storage.server': { ip: c.storage.server.ip, port: c.storage.server.tcpPort },
    // dfdaemon binds the embedded scheduler to 0.0.0.0 when embeddedScheduler.ip is not set.
    embeddedScheduler: { ip: c.embeddedScheduler.ip ?? '0.0.0.0', port: c.embeddedScheduler.port },
  };
  const rows = section('## Where it listens')
    .split('\n')
    .filter((l) => l.startsWith('| '))
    .slice(2)
    .map((l) => l.split('|').map((cell) => cell.trim()));
  const seen: string[] = [];
  for (const [, port, bind, , key] of rows) {
    const name = key!.replace(/`/g, '');
    seen.push(name);
    if (name === 'download.server.socketPath') {
      assert.ok(port!.includes(`\`${c.download.server.socketPath}\``), port);
      assert.ok(port!.includes(`\`~/.dragonfly/dfdaemon.sock\``), port);
      assert.equal(defaultSocketPath(homeDirs('~')), '~/.dragonfly/dfdaemon.sock');
      assert.equal(bind, 'mode 0777');
      continue;
    }
    const l = listeners[name];
    assert.ok(l, `the README names ${name}`);
    assert.equal(Number(port), l.port, name);
    assert.equal(bind, l.ip, name);
  }
  assert.deepEqual(seen.sort(), ['download.server.socketPath', ...Object.keys(listeners)].sort());
});

test('"Cap the cache": the example loads without a warning and sets what the text says', () => {
  const yaml = /```yaml\n([\s\S]*?)```/.exec(section('### Cap the cache'))?.[1];
  assert.ok(yaml);
  const { config, warnings } = parseDfdaemonConfig(yaml, 'dfdaemon.yaml', { dirs: SYSTEM_DIRS });
  assert.deepEqual(warnings, []);
  assert.equal(config.gc.interval, parseDuration('60s'));
  assert.equal(config.gc.policy.diskThreshold, parseByteSize('10GiB'));
  assert.equal(config.gc.policy.taskTTL, parseDuration('7d'));
  // "from 80 % of it GC evicts down to 60 %", and the defaults the text gives.
  assert.equal(config.gc.policy.diskHighThresholdPercent, 80);
  assert.equal(config.gc.policy.diskLowThresholdPercent, 60);
  const d = defaults();
  assert.equal(d.gc.interval, parseDuration('900s'));
  assert.equal(d.gc.policy.taskTTL, parseDuration('30d'));
  assert.equal(d.gc.policy.diskThreshold, 0);
});
