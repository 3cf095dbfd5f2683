// The source policy for requests made on a remote caller's behalf (issue 16 item 5): no loopback, link-local or
// private address unless security.allowedPrivateSources names it, checked on the address actually connected to
// (host names resolved once, redirects checked too).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { SourceAddressPolicy, type Lookup } from '../../../src/backend/address-policy.js';
import { HttpBackend } from '../../../src/backend/http.js';
import { AddressList } from '../../../src/core/addresses.js';
import { Origin, readAll, serveRanges } from './origin.js';

const DNS: Record<string, string[]> = {
  'evil.example': ['127.0.0.1'],
  'mixed.example': ['10.0.0.9', '93.184.216.34'],
  'public.example': ['93.184.216.34'],
  'registry.internal': ['127.0.0.1'],
};
const lookup: Lookup = async (host) => {
  const ips = DNS[host];
  if (!ips) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
  return ips.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
};
const policy = (allow: string[] = []) =>
  new SourceAddressPolicy({
    allow: new AddressList(allow, 'security.allowedPrivateSources', { hostNames: true }),
    lookup,
  });

const origin = new Origin();
const DATA = Buffer.from('private bytes on loopback\n');
before(async () => {
  await origin.listen();
  origin.route('/secret', serveRanges(DATA));
});
after(() => origin.close());

test('resolve: public addresses pass; loopback, private and metadata addresses are refused naming the key', async () => {
  const p = policy();
  assert.equal(await p.resolve('93.184.216.34'), '93.184.216.34');
  assert.equal(await p.resolve('public.example'), '93.184.216.34');
  assert.equal(await p.resolve('mixed.example'), '93.184.216.34', 'the public address of the name is used');
  for (const host of ['127.0.0.1', '169.254.169.254', '10.1.1.1', '[::1]', 'evil.example']) {
    await assert.rejects(p.resolve(host, 80), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'PERMISSION_DENIED', host);
      assert.match(
        e.message,
        /a remote caller may not make dfdaemon connect there; list it in security\.allowedPrivateSources/,
      );
      return true;
    });
  }
  await assert.rejects(p.resolve('nowhere.example'), { code: 'ENOTFOUND' });
});

test('resolve: the allow-list admits IPs, CIDRs and host names', async () => {
  const p = policy(['127.0.0.1', '10.0.0.0/8', 'registry.internal']);
  assert.equal(await p.resolve('127.0.0.1'), '127.0.0.1');
  assert.equal(await p.resolve('10.200.0.1'), '10.200.0.1');
  assert.equal(await p.resolve('registry.internal'), '127.0.0.1');
  await assert.rejects(p.resolve('169.254.169.254'), { code: 'PERMISSION_DENIED' });
  assert.equal(await policy(['0.0.0.0/0', '::/0']).resolve('[::1]'), '::1', 'everything, as upstream');
});

test('the http backend refuses a remote caller’s request to loopback, and serves a local one', async () => {
  const backend = new HttpBackend('http', {
    maxRetries: 0,
    requestHeader: {},
    enableCacheTemporaryRedirect: false,
    cacheTemporaryRedirectTTLMs: 0,
    sourcePolicy: policy(),
  });
  try {
    const url = `${origin.url}/secret`;
    const stat = { taskId: 't', url, requestHeader: {}, timeoutMs: 5000 };
    await assert.rejects(backend.stat({ ...stat, remoteCaller: true }), { code: 'PERMISSION_DENIED' });
    await assert.rejects(
      backend.get({ ...stat, pieceNumber: 0, range: { start: 0, length: 5 }, remoteCaller: true }),
      { code: 'PERMISSION_DENIED' },
    );
    assert.equal((await backend.stat(stat)).contentLength, DATA.length);
    const local = await backend.get({ ...stat, pieceNumber: 0, range: { start: 0, length: DATA.length } });
    assert.deepEqual(await readAll(local.body), DATA);
  } finally {
    await backend.close();
  }
});

test('a redirect from an allowed host to a refused address is refused', async () => {
  origin.route('/hop', (_req, res) => {
    res.writeHead(302, { location: `${origin.url}/secret` }).end();
  });
  const backend = new HttpBackend('http', {
    maxRetries: 0,
    requestHeader: {},
    enableCacheTemporaryRedirect: false,
    cacheTemporaryRedirectTTLMs: 0,
    sourcePolicy: policy(['registry.internal']),
  });
  try {
    const port = new URL(origin.url).port;
    const hits = origin.count('/hop');
    await assert.rejects(
      backend.stat({
        taskId: 't',
        url: `http://registry.internal:${port}/hop`,
        requestHeader: {},
        timeoutMs: 5000,
        remoteCaller: true,
      }),
      (e: Error & { code?: string }) => {
        assert.equal(e.code, 'PERMISSION_DENIED');
        assert.match(e.message, /127\.0\.0\.1:\d+ is a loopback address/);
        return true;
      },
    );
    assert.equal(origin.count('/hop'), hits + 1, 'the allowed host was asked (by name, at its address)');
  } finally {
    await backend.close();
  }
});
