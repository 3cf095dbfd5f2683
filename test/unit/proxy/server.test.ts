// ProxyServer against hostile and unusual clients: CONNECT targets, tunnels with basic auth, clients that leave,
// and shutdown with connections open. P2P downloads are faked (proxy-harness.ts); origins are local servers.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  FakeDownloader,
  connectTunnel,
  exchange,
  proxyConfig,
  startProxy,
  tunnelTls,
  type Proxy,
} from './proxy-harness.js';

const basic = (userPass: string) => `Basic ${Buffer.from(userPass).toString('base64')}`;

describe('basic auth and CONNECT', () => {
  const downloader = new FakeDownloader(Buffer.from('0123456789'));
  let p: Proxy;
  before(
    async () =>
      (p = await startProxy({
        downloader,
        config: proxyConfig({ basicAuth: { username: 'alice', password: 's3cret' } }),
      })),
  );
  after(() => p.close());

  test('CONNECT without credentials is 407', async () => {
    await assert.rejects(connectTunnel(p.port, 'example.com:443'), /407 Proxy Authentication Required/);
    const wrong = `Proxy-Authorization: ${basic('alice:nope')}\r\n`;
    await assert.rejects(connectTunnel(p.port, 'example.com:443', wrong), /407/);
  });

  test('requests inside a tunnel opened with the right credentials need none of their own', async () => {
    // curl --proxy-user, pip and Go send Proxy-Authorization on the CONNECT only.
    const sock = await connectTunnel(
      p.port,
      'example.com:443',
      `Proxy-Authorization: ${basic('alice:s3cret')}\r\n`,
    );
    const t = await tunnelTls(sock, p.ca, 'example.com');
    const first = await exchange(t, 'GET /p2p/x HTTP/1.1\r\nHost: example.com\r\n\r\n', 500);
    assert.match(first, /^HTTP\/1\.1 200 /, first);
    assert.match(first, /\r\n\r\n0123456789$/);
    const second = await exchange(t, 'GET /p2p/y HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n');
    assert.match(second, /^HTTP\/1\.1 200 /, second);
    t.destroy();
  });
});
