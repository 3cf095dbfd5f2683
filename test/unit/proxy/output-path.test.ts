// X-Dragonfly-Output-Path: the file is written before the answer, so a failure to write it is the status.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DfError } from '../../../src/core/errors.js';
import { FakeDownloader, get, startProxy, type Proxy } from './proxy-harness.js';

describe('X-Dragonfly-Output-Path', () => {
  const ok = new FakeDownloader(Buffer.from('0123456789'));
  const exists = new FakeDownloader(Buffer.from('0123456789'), {
    outputError: new DfError('ALREADY_EXISTS', 'output path /x/out already exists'),
  });
  const denied = new FakeDownloader(Buffer.from('0123456789'), {
    outputError: new DfError('PERMISSION_DENIED', 'output path /x/out refused: permission denied: uid 7'),
  });
  const proxies: Proxy[] = [];
  before(async () => {
    for (const downloader of [ok, exists, denied]) proxies.push(await startProxy({ downloader }));
  });
  after(() => Promise.all(proxies.map((p) => p.close())));

  const fetchWith = (p: Proxy) =>
    get(p.port, 'http://origin.test/p2p/file', { 'x-dragonfly-output-path': '/x/out' });

  test('written: 200 with the body', async () => {
    const a = await fetchWith(proxies[0]!);
    assert.equal(a.status, 200);
    assert.equal(a.body.toString(), '0123456789');
    assert.deepEqual(ok.outputsWritten, ['/x/out']);
  });

  test('not written: the status names why, and no body is sent', async () => {
    const e = await fetchWith(proxies[1]!);
    assert.equal(e.status, 409);
    assert.match(e.body.toString(), /already exists/);
    const d = await fetchWith(proxies[2]!);
    assert.equal(d.status, 403);
    assert.match(d.body.toString(), /permission denied/);
  });
});
