// plugins.ts: backend plugins from a directory. The scheme is the file name; a plugin that cannot be used is one
// error naming its file; at run time a plugin's errors and short bodies are held to the backends' contract.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadBackendPlugins } from '../../../src/backend/plugins.js';
import { canListEntries } from '../../../src/backend/backend.js';
import { tempDir } from '../../helpers/daemon.js';

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function pluginDir(files: Record<string, string>): string {
  const dir = tempDir('dft-plugins-');
  dirs.push(dir);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

/** A plugin whose get() yields `bytes` bytes whatever the range. */
const MEMORY = (bytes: number) => `
import { Readable } from 'node:stream';
export default ({ scheme }) => ({
  scheme,
  async stat() { return { statusCode: 200, contentLength: ${bytes}, responseHeader: {} }; },
  async get() { return { statusCode: 200, responseHeader: {}, body: Readable.from([Buffer.alloc(${bytes}, 1)]) }; },
  async listEntries() { return [{ url: scheme + '://x/a', contentLength: 1, isDir: false }]; },
});`;

test('a missing directory has no plugins; files that are not modules are skipped', async () => {
  assert.deepEqual(await loadBackendPlugins('/nonexistent/dft/plugins/backend'), []);
  assert.deepEqual(await loadBackendPlugins(pluginDir({ 'README.txt': 'not a plugin' })), []);
});

test('the file name is the scheme; the backend serves stat, get and listing', async () => {
  const dir = pluginDir({ 'mem.mjs': MEMORY(10), 'other+x.js': MEMORY(3) });
  const plugins = await loadBackendPlugins(dir);
  assert.deepEqual(
    plugins.map((p) => [p.scheme, p.file]),
    [
      ['mem', join(dir, 'mem.mjs')],
      ['other+x', join(dir, 'other+x.js')],
    ],
  );
  const mem = plugins[0]!.backend;
  const base = { taskId: 't', url: 'mem://x/a', requestHeader: {}, timeoutMs: 1000 };
  assert.equal((await mem.stat(base)).contentLength, 10);
  const res = await mem.get({ ...base, pieceNumber: 0, range: { start: 0, length: 10 } });
  let n = 0;
  for await (const chunk of res.body) n += chunk.length;
  assert.equal(n, 10);
  assert.ok(canListEntries(mem));
  assert.equal((await mem.listEntries(base)).length, 1);
});

test('a body shorter than the piece fails instead of looking finished', async () => {
  const [p] = await loadBackendPlugins(pluginDir({ 'short.mjs': MEMORY(5) }));
  const res = await p!.backend.get({
    taskId: 't',
    pieceNumber: 0,
    url: 'short://x/a',
    requestHeader: {},
    timeoutMs: 1000,
    range: { start: 0, length: 8 },
  });
  await assert.rejects(async () => {
    for await (const chunk of res.body) void chunk;
  }, /5 of 8 bytes|ended after 5|short/);
});

test('a body that yields something other than bytes fails naming the plugin, not with a TypeError', async () => {
  const plugin = `export default ({ scheme }) => ({
  scheme,
  async stat() { return { statusCode: 200, contentLength: 2, responseHeader: {} }; },
  async get() { return { responseHeader: {}, body: (async function* () { yield 'ab'; })() }; },
});`;
  const [p] = await loadBackendPlugins(pluginDir({ 'text.mjs': plugin }));
  const res = await p!.backend.get({
    taskId: 't',
    pieceNumber: 0,
    url: 'text://x/a',
    requestHeader: {},
    timeoutMs: 1000,
    range: { start: 0, length: 2 },
  });
  await assert.rejects(
    async () => {
      for await (const chunk of res.body) void chunk;
    },
    (e: unknown) =>
      /text plugin text:\/\/x\/a gave a string where bytes were expected/.test((e as Error).message),
  );
});

test('a plugin error becomes a one-line BACKEND error naming the plugin', async () => {
  const [p] = await loadBackendPlugins(
    pluginDir({
      'fails.mjs': `export default { async stat() { throw new Error('store unreachable\\nstack'); }, async get() {} };`,
    }),
  );
  await assert.rejects(
    p!.backend.stat({ taskId: 't', url: 'fails://x', requestHeader: {}, timeoutMs: 1000 }),
    (e: Error & { code?: string }) =>
      e.code === 'BACKEND' && e.message === 'fails plugin stat: store unreachable',
  );
});

test('a plugin that cannot be used stops the load with one line naming the file', async () => {
  const cases: Array<[string, string, RegExp]> = [
    ['syntax.mjs', 'export default {', /syntax\.mjs: cannot be loaded: /],
    ['noget.mjs', 'export default { stat() {} };', /noget\.mjs: the backend has no get\(\) function/],
    ['nothing.mjs', 'export const x = 1;', /nothing\.mjs: the default export must be a backend object/],
    [
      'throws.mjs',
      'export default () => { throw new Error("set FOO"); };',
      /throws\.mjs: its default export threw: set FOO/,
    ],
    ['Bad_Name.mjs', MEMORY(1), /"Bad_Name" is not a URL scheme/],
    [
      'badlist.mjs',
      'export default { stat() {}, get() {}, listEntries: 3 };',
      /badlist\.mjs: the backend's listEntries is not a function/,
    ],
  ];
  for (const [name, text, why] of cases) {
    const dir = pluginDir({ [name]: text });
    await assert.rejects(loadBackendPlugins(dir), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'INVALID_CONFIG', name);
      assert.match(
        e.message,
        new RegExp(`^backend plugin ${join(dir, name).replace(/[.+]/g, '\\$&')}: `),
        name,
      );
      assert.match(e.message, why, name);
      assert.equal(e.message.includes('\n'), false, `${name}: one line`);
      return true;
    });
  }
});

test('an unreadable plugin directory is an error naming it', async () => {
  const dir = pluginDir({});
  const notDir = join(dir, 'file');
  writeFileSync(notDir, '');
  await assert.rejects(loadBackendPlugins(notDir), /^DfError: backend plugin directory .*file: /);
});
