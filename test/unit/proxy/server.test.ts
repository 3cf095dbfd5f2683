// ProxyServer against hostile and unusual clients: CONNECT targets, tunnels with basic auth, clients that leave,
// and shutdown with connections open. P2P downloads are faked (proxy-harness.ts); origins are local servers.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { DfError } from '../../../src/core/errors.js';
import {
  FakeDownloader,
  connectTunnel,
  connectTo,
  exchange,
  get,
  proxyConfig,
  startOrigin,
  startProxy,
  tunnelTls,
  type Origin,
  type Proxy,
} from './proxy-harness.js';

const basic = (userPass: string) => `Basic ${Buffer.from(userPass).toString('base64')}`;

describe('CONNECT interception', () => {
  const downloader = new FakeDownloader(Buffer.from('0123456789'));
  let p: Proxy;
  before(async () => (p = await startProxy({ downloader })));
  after(() => p.close());

  /** The URL a GET /p2p/x inside a tunnel to `target` is downloaded from. */
  async function urlInside(target: string): Promise<string | undefined> {
    const before = downloader.opened.length;
    const t = await tunnelTls(await connectTunnel(p.port, target), p.ca);
    const answer = await exchange(t, 'GET /p2p/x HTTP/1.1\r\nHost: whatever\r\nConnection: close\r\n\r\n');
    t.destroy();
    assert.match(answer, /^HTTP\/1\.1 200 /, answer);
    return downloader.opened.slice(before).at(-1)?.url;
  }

  test('the tunnel host and port make the URL of the requests inside', async () => {
    assert.equal(await urlInside('example.com:443'), 'https://example.com/p2p/x');
    assert.equal(await urlInside('example.com:8443'), 'https://example.com:8443/p2p/x');
    assert.equal(await urlInside('[::1]:8443'), 'https://[::1]:8443/p2p/x');
    assert.equal(await urlInside('127.0.0.1:443'), 'https://127.0.0.1/p2p/x');
  });

  test('a CONNECT target without a port means 443', async () => {
    assert.equal(await urlInside('example.com'), 'https://example.com/p2p/x');
  });

  test('a trailing slash or userinfo in the CONNECT target does not leak into the URL', async () => {
    assert.equal(await urlInside('example.com:443/'), 'https://example.com/p2p/x');
    assert.equal(await urlInside('example.com:8443/'), 'https://example.com:8443/p2p/x');
    assert.equal(await urlInside('user@example.com:443'), 'https://example.com/p2p/x');
  });

  test('inside a tunnel only origin-form requests are served; `*` is a 400, not a request to another host', async () => {
    const t = await tunnelTls(await connectTunnel(p.port, 'example.com:443'), p.ca);
    const answer = await exchange(t, 'GET * HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n');
    t.destroy();
    assert.match(answer, /^HTTP\/1\.1 400 /, answer);
  });

  test('CONNECT targets with a path, a query, a bad port or no host are refused with 400', async () => {
    for (const target of [
      'example.com:443/a',
      'example.com:443?x=1',
      'example.com:99999',
      ':443',
      'example.com:x',
    ]) {
      await assert.rejects(connectTunnel(p.port, target), /400 Bad Request/, target);
    }
  });
});

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

describe('shutdown and timeouts', () => {
  test('close() ends open CONNECT tunnels, handshaken or not, and idle connections', async () => {
    const p = await startProxy();
    const pending = await connectTunnel(p.port, 'example.com:443');
    const established = await tunnelTls(await connectTunnel(p.port, 'example.com:443'), p.ca, 'example.com');
    const kept = await exchange(established, 'GET /p2p/x HTTP/1.1\r\nHost: example.com\r\n\r\n', 300);
    assert.match(kept, /^HTTP\/1\.1 200 /);
    const idle = await connectTo(p.port);
    const closed = await Promise.race([
      p.close().then(() => 'closed'),
      new Promise((r) => setTimeout(() => r('close() still pending after 3 s'), 3000)),
    ]);
    assert.equal(closed, 'closed');
    for (const s of [pending, established, idle]) {
      await new Promise<void>((r) => (s.destroyed || s.readableEnded ? r() : s.once('close', () => r())));
      s.destroy();
    }
  });

  test('close() during a CONNECT whose certificate is still being made does not wait for that client', async () => {
    let signing: () => void = () => {};
    const signingStarted = new Promise<void>((r) => (signing = r));
    const p = await startProxy({
      certificates: (leaves) => ({
        secureContextFor: async (host) => {
          signing();
          await new Promise((r) => setTimeout(r, 300));
          return leaves.secureContextFor(host);
        },
      }),
    });
    const sock = net.connect(p.port, '127.0.0.1');
    sock.on('error', () => {});
    sock.write('CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n');
    await signingStarted;
    const closed = await Promise.race([
      p.close().then(() => 'closed'),
      new Promise((r) => setTimeout(() => r('close() still pending after 3 s'), 3000)),
    ]);
    assert.equal(closed, 'closed');
    sock.destroy();
  });

  test('a refused CONNECT is closed even when the client keeps its side open', async () => {
    const p = await startProxy({ config: proxyConfig({ basicAuth: { username: 'a', password: 'b' } }) });
    const sock = net.connect({ port: p.port, host: '127.0.0.1', allowHalfOpen: true });
    sock.on('error', () => {});
    const answer = await exchange(
      sock,
      'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n',
      300,
    );
    assert.match(answer, /^HTTP\/1\.1 407 /);
    const closed = await Promise.race([
      p.close().then(() => 'closed'),
      new Promise((r) => setTimeout(() => r('close() still pending after 3 s'), 3000)),
    ]);
    assert.equal(closed, 'closed');
    sock.destroy();
  });

  test('a CONNECT inside an intercepted tunnel is refused', async () => {
    const p = await startProxy();
    try {
      const t = await tunnelTls(await connectTunnel(p.port, 'example.com:443'), p.ca);
      const answer = await exchange(
        t,
        'CONNECT other.example:443 HTTP/1.1\r\nHost: other.example:443\r\n\r\n',
      );
      assert.doesNotMatch(answer, /^HTTP\/1\.1 200/);
      t.destroy();
    } finally {
      await p.close();
    }
  });

  test('connections that never send a complete request head are timed out', async () => {
    // requestTimeout 0 (long uploads) must not also turn Node's headersTimeout off.
    const p = await startProxy();
    try {
      const server = (p.server as unknown as { server: { headersTimeout: number } }).server;
      assert.ok(server.headersTimeout > 0 && server.headersTimeout <= 120_000, `${server.headersTimeout}`);
    } finally {
      await p.close();
    }
  });
});

describe('clients that go away', () => {
  test('a forwarded request is cancelled at the origin when the client leaves before the answer', async () => {
    let originSide: Promise<void> | undefined;
    const origin = await startOrigin((_req, res) => {
      // Never answers; reports when the proxy gives up the request.
      originSide = new Promise((r) => res.once('close', () => r()));
    });
    const p = await startProxy();
    try {
      const sock = net.connect(p.port, '127.0.0.1');
      sock.on('error', () => {});
      sock.write(`GET http://127.0.0.1:${origin.port}/slow HTTP/1.1\r\nHost: x\r\n\r\n`);
      while (!originSide) await new Promise((r) => setTimeout(r, 10));
      sock.destroy();
      const gone = await Promise.race([
        originSide.then(() => 'cancelled'),
        new Promise((r) => setTimeout(() => r('the origin request is still open after 2 s'), 2000)),
      ]);
      assert.equal(gone, 'cancelled');
    } finally {
      await p.close();
      await origin.close();
    }
  });

  test('a P2P client leaving mid-body releases the session and fails nothing', async () => {
    const downloader = new FakeDownloader(Buffer.alloc(4000, 1), { pieceLength: 4, delayMs: 2 });
    const p = await startProxy({ downloader });
    try {
      const sock = net.connect(p.port, '127.0.0.1');
      sock.on('error', () => {});
      sock.write('GET http://h/p2p/x HTTP/1.1\r\nHost: h\r\n\r\n');
      await new Promise((r) => sock.once('data', r));
      sock.destroy();
      const deadline = Date.now() + 2000;
      while (downloader.released === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      assert.equal(downloader.released, 1);
      assert.deepEqual(downloader.failed, []);
    } finally {
      await p.close();
    }
  });
});

describe('CONNECT tunnels that never finish TLS', () => {
  // Found by test/integration/proxy.fuzz.test.ts: after the 200, a client that half-closed, or never sent a
  // ClientHello, kept its tunnel open forever (none of the HTTP server's timeouts applies before the handshake).
  const closedWithin = (sock: net.Socket, ms: number) =>
    Promise.race([
      once(sock, 'close').then(() => 'closed'),
      new Promise((r) => setTimeout(() => r(`still open after ${ms} ms`), ms)),
    ]);

  test('regression (fuzz): "CONNECT example.com:443" sent with a half-close is let go at once', async () => {
    const p = await startProxy();
    try {
      const sock = await connectTo(p.port);
      sock.resume();
      sock.end('CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n');
      assert.equal(await closedWithin(sock, 2000), 'closed');
    } finally {
      await p.close();
    }
  });

  test('a tunnel without a ClientHello is closed after the handshake timeout; a TLS one outlives it', async () => {
    const p = await startProxy({ tlsHandshakeTimeoutMs: 300 });
    try {
      const idle = await connectTunnel(p.port, 'example.com:443');
      const secured = await tunnelTls(await connectTunnel(p.port, 'example.com:443'), p.ca);
      assert.equal(await closedWithin(idle, 2000), 'closed');
      await new Promise((r) => setTimeout(r, 500));
      const answer = await exchange(
        secured,
        'GET /p2p/x HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n',
      );
      assert.match(answer, /^HTTP\/1\.1 200 /, answer);
      secured.destroy();
    } finally {
      await p.close();
    }
  });
});

describe('forwarding loops', () => {
  const downloader = new FakeDownloader(Buffer.from('0123456789'));
  let p: Proxy;
  let origin: Origin;
  before(async () => {
    p = await startProxy({ downloader });
    origin = await startOrigin((_req, res) => res.end('ok'));
  });
  after(async () => {
    await p.close();
    await origin.close();
  });

  test('forwarded requests carry this proxy in Via, after the client’s own entries', async () => {
    const a = await get(p.port, `http://127.0.0.1:${origin.port}/v`, { via: '1.0 upstream-cache' });
    assert.equal(a.status, 200);
    assert.match(
      origin.requests.at(-1)!.headers.via ?? '',
      /^1\.0 upstream-cache, 1\.1 dfdaemon-[0-9a-f]{8}$/,
    );
  });

  test('X-Dragonfly-Registry naming the proxy itself is answered 508 instead of looping', async () => {
    const a = await Promise.race([
      get(p.port, '/v2/x/manifests/latest', { 'x-dragonfly-registry': `http://127.0.0.1:${p.port}` }),
      new Promise<never>((_r, reject) => setTimeout(() => reject(new Error('no answer within 3 s')), 3000)),
    ]);
    assert.equal(a.status, 508);
    assert.equal(a.headers['x-dragonfly-error-type'], 'proxy');
  });

  test('the P2P download’s source requests carry the Via too, and are refused if they come back', async () => {
    const a = await get(p.port, 'http://h.example/p2p/x');
    assert.equal(a.status, 200);
    const via = downloader.opened.at(-1)!.requestHeader['via'] ?? '';
    assert.match(via, /^1\.1 dfdaemon-[0-9a-f]{8}$/);
    const back = await get(p.port, 'http://h.example/p2p/x', { via: `1.1 other, ${via}` });
    assert.equal(back.status, 508);
  });
});

describe('request targets', () => {
  const downloader = new FakeDownloader(Buffer.from('0123456789'));
  let p: Proxy;
  let origin: Origin;
  before(async () => {
    p = await startProxy({ downloader });
    origin = await startOrigin((req, res) => res.end(`path ${req.url}`));
  });
  after(async () => {
    await p.close();
    await origin.close();
  });

  test('an absolute URL with userinfo is a 400, neither forwarded nor downloaded', async () => {
    const before = { opened: downloader.opened.length, requests: origin.requests.length };
    for (const target of [
      `http://user:secret@127.0.0.1:${origin.port}/plain`,
      `http://user@127.0.0.1:${origin.port}/plain`,
      'http://user:secret@h.example/p2p/x',
    ]) {
      const a = await get(p.port, target);
      assert.equal(a.status, 400, target);
      assert.equal(a.headers['x-dragonfly-error-type'], 'proxy');
    }
    assert.equal(downloader.opened.length, before.opened);
    assert.equal(origin.requests.length, before.requests);
  });

  test('a path-only request starting with // stays on the registry it is for', async () => {
    const a = await get(p.port, '//evil.example/v2/x', {
      'x-dragonfly-registry': `http://127.0.0.1:${origin.port}`,
    });
    assert.equal(a.status, 200);
    assert.equal(a.body.toString(), 'path //evil.example/v2/x');
  });

  test('a request target that is neither a URL nor a path is a 400', async () => {
    const a = await get(p.port, '*');
    assert.equal(a.status, 400);
  });
});

describe('errors after the answer started', () => {
  test('a P2P download failing mid-body cuts the connection: a short body, never a reused connection', async () => {
    const content = Buffer.alloc(4000, 7);
    const downloader = new FakeDownloader(content, {
      pieceLength: 100,
      failAt: { piece: 5, error: new DfError('BACKEND', 'piece 5 failed') },
    });
    const p = await startProxy({ downloader });
    try {
      const sock = await connectTo(p.port);
      // A second request pipelined behind the first must not be answered on this connection.
      const out = await exchange(
        sock,
        'GET http://h/p2p/x HTTP/1.1\r\nHost: h\r\n\r\nOPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n',
        2000,
      );
      assert.ok(sock.destroyed || sock.readableEnded, 'the connection is closed');
      const [head, body = ''] = out.split('\r\n\r\n');
      assert.match(head!, /^HTTP\/1\.1 200 /);
      assert.match(head!, /content-length: 4000/i);
      assert.equal(body.length, 500, 'the five pieces before the failure');
      assert.equal(out.match(/HTTP\/1\.1/g)?.length, 1);
      assert.equal(downloader.failed.length, 1);
      assert.equal(downloader.released, 1);
    } finally {
      await p.close();
    }
  });

  test('an origin breaking off mid-body cuts the forwarded answer the same way', async () => {
    const origin = await startOrigin((_req, res) => {
      res.writeHead(200, { 'content-length': '1000' });
      res.write(Buffer.alloc(300, 1));
      setTimeout(() => res.destroy(), 50);
    });
    const p = await startProxy();
    try {
      const sock = await connectTo(p.port);
      const req = `GET http://127.0.0.1:${origin.port}/x HTTP/1.1\r\nHost: x\r\n\r\n`;
      const out = await exchange(sock, req + req, 2000);
      assert.ok(sock.destroyed || sock.readableEnded, 'the connection is closed');
      const [head, body = ''] = out.split('\r\n\r\n');
      assert.match(head!, /^HTTP\/1\.1 200 /);
      assert.equal(body.length, 300);
      assert.equal(out.match(/HTTP\/1\.1/g)?.length, 1);
    } finally {
      await p.close();
      await origin.close();
    }
  });
});

describe('malformed requests', () => {
  let p: Proxy;
  before(async () => (p = await startProxy()));
  after(() => p.close());

  async function send(text: string): Promise<string> {
    const sock = await connectTo(p.port);
    const out = await exchange(sock, text, 2000);
    sock.destroy();
    return out;
  }

  test('a header value with a bare CR or LF is answered 400, never passed on', async () => {
    assert.match(
      await send('GET http://h/x HTTP/1.1\r\nHost: h\r\nX-A: a\rInjected: 1\r\n\r\n'),
      /^HTTP\/1\.1 400 /,
    );
    assert.match(
      await send('GET http://h/x HTTP/1.1\r\nHost: h\r\nX-A: a\nInjected: 1\r\n\r\n'),
      /^HTTP\/1\.1 400 /,
    );
  });

  test('request heads over the size limit are answered 431', async () => {
    assert.match(
      await send(`GET http://h/x HTTP/1.1\r\nHost: h\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`),
      /^HTTP\/1\.1 431 /,
    );
  });
});

describe('stored content shorter than its task', () => {
  test('the answer is cut instead of ending short of its Content-Length on a kept-alive connection', async () => {
    const downloader = new FakeDownloader(Buffer.alloc(1000, 3), { pieceLength: 100, shortReadBy: 1 });
    const p = await startProxy({ downloader });
    try {
      const sock = await connectTo(p.port);
      const out = await exchange(
        sock,
        'GET http://h/p2p/x HTTP/1.1\r\nHost: h\r\n\r\nOPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n',
        2000,
      );
      assert.ok(sock.destroyed || sock.readableEnded, 'the connection is closed');
      assert.equal(out.match(/HTTP\/1\.1/g)?.length, 1, 'nothing is read as the rest of the body');
      assert.equal(out.split('\r\n\r\n')[1]!.length, 990);
      assert.equal(downloader.failed.length, 1);
    } finally {
      await p.close();
    }
  });
});

describe('If-Range', () => {
  const content = Buffer.from('0123456789abcdefghij');
  const downloader = new FakeDownloader(content, {
    responseHeader: { etag: '"v1"', 'last-modified': 'Wed, 21 Oct 2026 07:28:00 GMT' },
  });
  let p: Proxy;
  before(async () => (p = await startProxy({ downloader })));
  after(() => p.close());

  test('a Range whose If-Range matches the stored task is served as 206', async () => {
    for (const ifRange of ['"v1"', 'Wed, 21 Oct 2026 07:28:00 GMT']) {
      const a = await get(p.port, 'http://h/p2p/x', { range: 'bytes=10-', 'if-range': ifRange });
      assert.equal(a.status, 206, ifRange);
      assert.equal(a.body.toString(), 'abcdefghij');
    }
  });

  test('when it does not match, the whole content comes with 200, never a range of another version', async () => {
    for (const ifRange of ['"v0"', 'W/"v1"', 'Tue, 20 Oct 2026 07:28:00 GMT']) {
      const a = await get(p.port, 'http://h/p2p/x', { range: 'bytes=10-', 'if-range': ifRange });
      assert.equal(a.status, 200, ifRange);
      assert.equal(a.headers['content-range'], undefined);
      assert.ok(a.body.equals(content));
    }
  });
});
