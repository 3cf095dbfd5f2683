// undici-core.ts loads undici's agent, request API and connector without undici's index (110 modules, ~8 MiB of
// the daemon's idle RSS more), and lazy-undici.ts loads even that only on first use. These keep both halves: request() still splits a URL as undici's own request()
// does, and nothing of the daemon loads undici's index again (a plain `from 'undici'` import would).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, request } from '../../../src/http-client/undici-core.js';

test('request() sends the path with its query, GET by default, through the given agent', async () => {
  const seen: string[] = [];
  const server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    res.end('ok');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const agent = new Agent();
  try {
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const a = await request(`${base}/a/b?x=1&y=%20`, { dispatcher: agent });
    assert.equal(await a.body.text(), 'ok');
    const b = await request(`${base}/c`, { dispatcher: agent, method: 'HEAD' });
    await b.body.dump();
    assert.deepEqual(seen, ['GET /a/b?x=1&y=%20', 'HEAD /c']);
    assert.throws(() => request('ftp://127.0.0.1/x', { dispatcher: agent }), /Invalid URL protocol/);
  } finally {
    await agent.close();
    server.close();
  }
});

test("the daemon's modules load no undici at start; the first use loads undici's agent, not its index", () => {
  const root = new URL('../../../src/', import.meta.url).href;
  const script = `
    import { createRequire } from 'node:module';
    const undiciFiles = () =>
      Object.keys(createRequire(import.meta.url).cache).filter((p) => p.includes('/undici/'));
    for (const m of ['daemon/dfdaemon.js', 'proxy/server.js', 'scheduler/embedded/scheduler-server.js'])
      await import(${JSON.stringify(root)} + m);
    const atStart = undiciFiles();
    await (await import(${JSON.stringify(root)} + 'http-client/lazy-undici.js')).loadUndici();
    console.log(JSON.stringify({ atStart, afterUse: undiciFiles() }));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr.toString());
  const { atStart, afterUse } = JSON.parse(r.stdout.toString()) as { atStart: string[]; afterUse: string[] };
  assert.deepEqual(atStart, [], 'undici is loaded only when a forward or a registry request asks for it');
  const loaded = afterUse.map((p) => p.replace(/.*\/undici\//, ''));
  assert.ok(loaded.includes('lib/dispatcher/agent.js'), `undici files loaded: ${loaded.join(' ')}`);
  assert.ok(!loaded.includes('index.js'), "undici's index was loaded");
});
