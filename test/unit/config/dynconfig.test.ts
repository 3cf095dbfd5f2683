import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  DEFAULT_LOCAL_SCHEDULER_ADDR,
  defaultLocalDynconfig,
  generateDefaultLocalDynconfig,
  isSocketAddr,
  loadLocalDynconfig,
  parseLocalDynconfig,
} from '../../../src/config/dynconfig.js';
import { DfError } from '../../../src/core/errors.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'df-config-dynconfig-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const parse = (text: string) => parseLocalDynconfig(text, 'dynconfig.yaml');

test('defaults: the scheduler headless service, no block lists', () => {
  assert.equal(DEFAULT_LOCAL_SCHEDULER_ADDR, 'dragonfly-scheduler:8002');
  assert.deepEqual(parse('').config, defaultLocalDynconfig());
  assert.deepEqual(parse('scheduler: {}').config.scheduler, { addr: 'dragonfly-scheduler:8002' });
});

test('the upstream example file loads (local.rs deserialize_local_config_correctly)', () => {
  const { config, warnings } = parse(`
scheduler:
  addr: 'scheduler-headless.default.svc:8002'
clientConfig:
  blockList:
    task:
      download:
        applications: ['blocked-app']
        urls: []
        tags: []
        priorities: []
    persistentTask:
      upload:
        applications: []
        urls: ['^https://blocked\\.example\\.com/']
        tags: []
      download:
        applications: []
        urls: []
        tags: []
        priorities: [1, 2]
    persistentCacheTask:
      upload: {}
      download: {}
seedClientConfig:
  blockList:
    task:
      download:
        applications: []
        urls: []
        tags: []
        priorities: []
`);
  assert.deepEqual(warnings, []);
  assert.equal(config.scheduler.addr, 'scheduler-headless.default.svc:8002');
  const bl = config.clientConfig?.blockList;
  assert.deepEqual(bl?.task?.download?.applications, ['blocked-app']);
  assert.deepEqual(bl?.persistentTask?.upload?.urls, ['^https://blocked\\.example\\.com/']);
  assert.deepEqual(bl?.persistentTask?.download?.priorities, [1, 2]);
  assert.deepEqual(bl?.persistentCacheTask?.download, { urls: [] });
  assert.ok(config.seedClientConfig?.blockList?.task);
});

test('static scheduler addresses', () => {
  const { config } = parse('scheduler:\n  addrs: ["192.168.1.10:8002", "[::1]:8002"]\n');
  assert.deepEqual(config.scheduler.addrs, ['192.168.1.10:8002', '[::1]:8002']);
  assert.equal(isSocketAddr('scheduler:8002'), false);
  assert.equal(isSocketAddr('1.2.3.4:70000'), false);
  assert.equal(isSocketAddr('::1:8002'), false);
});

test('snake_case block-list keys (upstream field names) are accepted', () => {
  const { config, warnings } = parse(
    'clientConfig:\n  block_list:\n    persistent_cache_task:\n      download:\n        tags: [t]\n',
  );
  assert.deepEqual(warnings, []);
  assert.deepEqual(config.clientConfig?.blockList?.persistentCacheTask?.download?.tags, ['t']);
});

test('unknown keys are warnings naming the dotted key', () => {
  const { warnings } = parse(
    'scheduler:\n  adr: x:1\nclientConfig:\n  blockList:\n    task:\n      download:\n        url: []\n',
  );
  assert.equal(warnings.length, 2);
  assert.match(warnings[0]!, /unknown key scheduler\.adr/);
  assert.match(warnings[1]!, /unknown key clientConfig\.blockList\.task\.download\.url/);
});

test('invalid values name the key and the expected form', () => {
  const cases: Array<[string, string]> = [
    ['scheduler:\n  addrs: ["scheduler:8002"]\n', 'scheduler.addrs[0]: expected an "ip:port" address'],
    [
      'clientConfig:\n  blockList:\n    task:\n      download:\n        urls: ["(bad"]\n',
      'clientConfig.blockList.task.download.urls: expected a list of regular expressions',
    ],
    [
      'clientConfig:\n  blockList:\n    task:\n      download:\n        priorities: [high]\n',
      'priorities: expected a list of integers',
    ],
    ['scheduler:\n  addr: ""\n', 'scheduler.addr'],
    ['scheduler: [1\n', 'dynconfig.yaml:'],
  ];
  for (const [text, part] of cases) {
    assert.throws(
      () => parse(text),
      (e: unknown) => e instanceof DfError && e.code === 'INVALID_CONFIG' && e.message.includes(part),
      part,
    );
  }
});

test('generate the default file once, then load it', () => {
  const file = path.join(tmp, 'dynconfig.yaml');
  assert.throws(
    () => loadLocalDynconfig(file),
    (e: unknown) => e instanceof DfError && e.message.includes(file),
  );
  assert.equal(generateDefaultLocalDynconfig(file), true);
  assert.equal(generateDefaultLocalDynconfig(file), false);
  assert.deepEqual(loadLocalDynconfig(file).config, defaultLocalDynconfig());
});
