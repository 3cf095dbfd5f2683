import { after, afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { Http1Agent, Http1Error, type Http1Body } from '../../../src/http-client/http1-agent.js';
import { selfSignedCertificate } from '../backend/origin.js';

const DATA = randomBytes(6 * 1024 * 1024);

const servers: Array<Server | HttpServer> = [];
const agents: Http1Agent[] = [];

after(async () => {
  await Promise.all(agents.map((a) => a.close()));
  for (const s of servers) {
    (s as HttpServer).closeAllConnections?.();
    s.close();
  }
});

function agent(o: Partial<ConstructorParameters<typeof Http1Agent>[0]> = {}): Http1Agent {
  const a = new Http1Agent({ keepAliveTimeoutMs: 60_000, ...o });
  agents.push(a);
  return a;
}

async function listen<S extends Server | HttpServer>(server: S): Promise<{ server: S; base: string }> {
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  servers.push(server);
  return { server, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/** A Node http origin serving DATA with ranges, counting the connections it accepted. */
async function rangeOrigin(): Promise<{ base: string; connections: () => number }> {
  let connections = 0;
  const server = createHttpServer((req, res) => {
    const m = /bytes=(\d+)-(\d+)/.exec(req.headers.range ?? '');
    const start = m ? Number(m[1]) : 0;
    const end = m ? Number(m[2]) : DATA.length - 1;
    res.writeHead(m ? 206 : 200, {
      'content-length': end - start + 1,
      ...(m ? { 'content-range': `bytes ${start}-${end}/${DATA.length}` } : {}),
    });
    res.end(req.method === 'HEAD' ? undefined : DATA.subarray(start, end + 1));
  });
  server.on('connection', () => connections++);
  const { base } = await listen(server);
  return { base, connections: () => connections };
}

/**
 * A raw origin: `answer` gets each request head (every request on every connection, in order) and the socket,
 * and writes whatever it likes.
 */
async function rawOrigin(answer: (head: string, socket: Socket, n: number) => void): Promise<string> {
  let n = 0;
  const server = createServer((socket) => {
    let buffered = '';
    socket.on('data', (d) => {
      buffered += d.toString('latin1');
      let end;
      while ((end = buffered.indexOf('\r\n\r\n')) !== -1) {
        const head = buffered.slice(0, end);
        buffered = buffered.slice(end + 4);
        answer(head, socket, n++);
      }
    });
    socket.on('error', () => undefined);
  });
  return (await listen(server)).base;
}

async function readAll(body: Http1Body, delayMs = 0): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) {
    chunks.push(Buffer.from(chunk)); // a chunk is valid until the next is asked for
    if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
  }
  return Buffer.concat(chunks);
}

const GET = { method: 'GET' as const, headers: {} };
const range = (start: number, length: number) => ({
  method: 'GET' as const,
  headers: { range: `bytes=${start}-${start + length - 1}` },
});
const code = (c: string) => (e: unknown) => (e as { code?: string }).code === c;

describe('Http1Agent', () => {
  afterEach(() => undefined);

  it('reads ranged answers whole and keeps one connection for requests one after another', async () => {
    const origin = await rangeOrigin();
    const a = agent();
    for (const [start, length] of [
      [0, 4 * 1024 * 1024],
      [4 * 1024 * 1024, 2 * 1024 * 1024],
      [17, 1],
    ] as const) {
      const res = await a.request(`${origin.base}/f`, range(start, length));
      assert.equal(res.statusCode, 206);
      assert.equal(res.statusText, 'Partial Content');
      assert.equal(res.headers['content-range'], `bytes ${start}-${start + length - 1}/${DATA.length}`);
      assert.ok((await readAll(res.body)).equals(DATA.subarray(start, start + length)));
    }
    assert.equal(origin.connections(), 1);
    assert.equal(a.connectionCount, 1);
  });

  it('gives every byte right to a reader slower than the network (the read buffer is not overwritten)', async () => {
    const origin = await rangeOrigin();
    const res = await agent().request(`${origin.base}/f`, GET);
    const hash = createHash('sha256');
    let chunks = 0;
    for await (const chunk of res.body) {
      hash.update(chunk);
      if (chunks++ % 4 === 0) await new Promise((r) => setTimeout(r, 1));
    }
    assert.equal(hash.digest('hex'), createHash('sha256').update(DATA).digest('hex'));
  });

  it('opens a connection per request in flight and reuses them afterwards', async () => {
    const origin = await rangeOrigin();
    const a = agent();
    const piece = 1024 * 1024;
    const got = await Promise.all(
      [0, 1, 2, 3].map(async (k) =>
        readAll((await a.request(`${origin.base}/f`, range(k * piece, piece))).body),
      ),
    );
    got.forEach((b, k) => assert.ok(b.equals(DATA.subarray(k * piece, (k + 1) * piece))));
    assert.equal(origin.connections(), 4);
    await readAll((await a.request(`${origin.base}/f`, range(0, 10))).body);
    assert.equal(origin.connections(), 4);
  });

  it('reads HEAD, 204 and empty answers without a body, and the connection serves again', async () => {
    let connections = 0;
    const server = createHttpServer((req, res) => {
      if (req.url === '/204') res.writeHead(204).end();
      else if (req.url === '/empty') res.writeHead(200, { 'content-length': 0 }).end();
      else res.writeHead(200, { 'content-length': 5 }).end(req.method === 'HEAD' ? undefined : 'hello');
    });
    server.on('connection', () => connections++);
    const { base } = await listen(server);
    const a = agent();
    const head = await a.request(`${base}/x`, { method: 'HEAD', headers: {} });
    assert.equal(head.headers['content-length'], '5');
    assert.equal((await readAll(head.body)).length, 0);
    assert.equal((await readAll((await a.request(`${base}/204`, GET)).body)).length, 0);
    assert.equal((await readAll((await a.request(`${base}/empty`, GET)).body)).length, 0);
    assert.equal((await readAll((await a.request(`${base}/x`, GET)).body)).toString(), 'hello');
    assert.equal(connections, 1);
  });

  it('decodes chunked answers and keeps the connection', async () => {
    let connections = 0;
    const server = createHttpServer((_req, res) => {
      res.writeHead(200); // no length: Node sends it chunked
      let at = 0;
      const step = () => {
        if (at >= 300_000) return res.end();
        res.write(DATA.subarray(at, at + 30_000));
        at += 30_000;
        setImmediate(step);
      };
      step();
    });
    server.on('connection', () => connections++);
    const { base } = await listen(server);
    const a = agent();
    for (let i = 0; i < 2; i++) {
      const res = await a.request(`${base}/c`, GET);
      assert.equal(res.headers['transfer-encoding'], 'chunked');
      assert.ok((await readAll(res.body, 1)).equals(DATA.subarray(0, 300_000)));
    }
    assert.equal(connections, 1);
  });

  it('skips interim answers (103 Early Hints) and reads the final one', async () => {
    const base = await rawOrigin((_head, socket) => {
      socket.write('HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\n');
      setTimeout(() => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'), 10);
    });
    const res = await agent().request(`${base}/`, GET);
    assert.equal(res.statusCode, 200);
    assert.equal((await readAll(res.body)).toString(), 'ok');
  });

  it('sends the request again on a new connection when a kept one was closed by the server', async () => {
    let connections = 0;
    const base = await rawOrigin((_head, socket, n) => {
      if (n === 1) {
        // The second request finds its kept connection closing: nothing of an answer comes.
        socket.destroy();
        return;
      }
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc');
    });
    const server = servers[servers.length - 1] as Server;
    server.on('connection', () => connections++);
    const a = agent();
    assert.equal((await readAll((await a.request(`${base}/1`, GET)).body)).toString(), 'abc');
    assert.equal((await readAll((await a.request(`${base}/2`, GET)).body)).toString(), 'abc');
    assert.equal(connections, 2);
  });

  it('does not send again after a timeout on a kept connection (only a closed one is stale)', async () => {
    let connections = 0;
    const base = await rawOrigin((_head, socket, n) => {
      if (n === 0) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx');
    });
    (servers[servers.length - 1] as Server).on('connection', () => connections++);
    const a = agent();
    await readAll((await a.request(`${base}/`, GET)).body);
    await assert.rejects(
      a.request(`${base}/`, { ...GET, headersTimeoutMs: 100 }),
      code('HTTP1_HEADERS_TIMEOUT'),
    );
    assert.equal(connections, 1);
  });

  it('fails, not retries, when a new connection closes before an answer', async () => {
    const base = await rawOrigin((_head, socket) => socket.destroy());
    await assert.rejects(agent().request(`${base}/`, GET), (e: unknown) => {
      assert.ok(e instanceof Http1Error);
      assert.equal(e.code, 'HTTP1_CLOSED');
      return true;
    });
  });

  it('fails a body the server cuts short, and one that runs past its length does not reuse the connection', async () => {
    const short = await rawOrigin((_head, socket) =>
      socket.end('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc'),
    );
    const res = await agent().request(`${short}/`, GET);
    await assert.rejects(readAll(res.body), code('HTTP1_CLOSED'));

    let connections = 0;
    const long = await rawOrigin((_head, socket) =>
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcEXTRA'),
    );
    (servers[servers.length - 1] as Server).on('connection', () => connections++);
    const a = agent();
    assert.equal((await readAll((await a.request(`${long}/`, GET)).body)).toString(), 'abc');
    assert.equal((await readAll((await a.request(`${long}/`, GET)).body)).toString(), 'abc');
    assert.equal(connections, 2);
  });

  it('reads a body that ends at the close (HTTP/1.0, no length)', async () => {
    const base = await rawOrigin((_head, socket) => {
      socket.write('HTTP/1.0 200 OK\r\n\r\n');
      socket.write(DATA.subarray(0, 100_000));
      setTimeout(() => socket.end(DATA.subarray(100_000, 200_000)), 20);
    });
    const a = agent();
    const res = await a.request(`${base}/`, GET);
    assert.ok((await readAll(res.body, 1)).equals(DATA.subarray(0, 200_000)));
    assert.equal(a.connectionCount, 0);
  });

  it('refuses a malformed answer and an oversized head, naming them', async () => {
    const bad = await rawOrigin((_head, socket) => socket.write('HTTP/1.1 2OO OK\r\n\r\n'));
    await assert.rejects(agent().request(`${bad}/`, GET), (e: unknown) => {
      assert.equal((e as { code?: string }).code, 'HTTP1_PARSE');
      assert.match((e as Error).message, /malformed HTTP response: bad status line "HTTP\/1.1 2OO OK"/);
      return true;
    });
    const big = await rawOrigin((_head, socket) =>
      socket.write(`HTTP/1.1 200 OK\r\n${'X-Big: yes\r\n'.repeat(7000)}\r\n`),
    );
    await assert.rejects(agent().request(`${big}/`, GET), code('HTTP1_HEAD_TOO_LARGE'));
  });

  it('times out waiting for the head and for body bytes', async () => {
    const silent = await rawOrigin(() => undefined);
    await assert.rejects(
      agent().request(`${silent}/`, { ...GET, headersTimeoutMs: 100 }),
      code('HTTP1_HEADERS_TIMEOUT'),
    );
    const stalls = await rawOrigin((_head, socket) =>
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc'),
    );
    const res = await agent().request(`${stalls}/`, { ...GET, bodyTimeoutMs: 100 });
    await assert.rejects(readAll(res.body), code('HTTP1_BODY_TIMEOUT'));
  });

  it('a refused connection and a connect timeout fail with their causes', async () => {
    const { server } = await listen(createServer());
    const port = (server.address() as AddressInfo).port;
    server.close();
    await new Promise((r) => server.once('close', r));
    await assert.rejects(agent().request(`http://127.0.0.1:${port}/`, GET), code('ECONNREFUSED'));

    // A listener that never accepts (its process stopped) with a full queue: the kernel drops further SYNs.
    const child = spawn(
      process.execPath,
      [
        '-e',
        "require('net').createServer().listen({ port: 0, host: '127.0.0.1', backlog: 1 }, function () { console.log(this.address().port) })",
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const fillers: Socket[] = [];
    try {
      const stuck = Number(((await once(child.stdout!, 'data')) as [Buffer])[0].toString());
      child.kill('SIGSTOP');
      for (let i = 0; i < 3; i++) fillers.push(connect(stuck, '127.0.0.1').on('error', () => undefined));
      await new Promise((r) => setTimeout(r, 100));
      await assert.rejects(
        agent({ connectTimeoutMs: 200 }).request(`http://127.0.0.1:${stuck}/`, GET),
        code('HTTP1_CONNECT_TIMEOUT'),
      );
    } finally {
      for (const f of fillers) f.destroy();
      child.kill('SIGKILL');
    }
  });

  it('stops on the abort signal with its reason, before and during the body', async () => {
    const origin = await rangeOrigin();
    const a = agent();
    const early = new AbortController();
    early.abort(new Error('gone before'));
    await assert.rejects(a.request(`${origin.base}/f`, { ...GET, signal: early.signal }), /gone before/);
    const ac = new AbortController();
    const res = await a.request(`${origin.base}/f`, { ...GET, signal: ac.signal });
    let n = 0;
    await assert.rejects(
      (async () => {
        for await (const chunk of res.body) {
          n += chunk.length;
          if (n > 1024 * 1024) ac.abort(new Error('stop now'));
        }
      })(),
      /stop now/,
    );
    assert.ok(n < DATA.length);
  });

  it('a reader that stops early ends the connection; dump keeps it for a small rest', async () => {
    const origin = await rangeOrigin();
    const a = agent();
    const res = await a.request(`${origin.base}/f`, GET);
    for await (const chunk of res.body) {
      assert.ok(chunk.length > 0);
      break;
    }
    assert.equal(a.connectionCount, 0);
    const small = await a.request(`${origin.base}/f`, range(0, 1000));
    await small.body.dump({ limit: 64 * 1024 });
    assert.equal(a.connectionCount, 1);
    const large = await a.request(`${origin.base}/f`, GET);
    await large.body.dump({ limit: 64 * 1024 });
    assert.equal(a.connectionCount, 0);
    assert.equal(origin.connections(), 2, 'the kept connection served the third request');
  });

  it('refuses header names and values that would break the request (no CR/LF injection)', async () => {
    const origin = await rangeOrigin();
    const a = agent();
    await assert.rejects(
      a.request(`${origin.base}/`, { method: 'GET', headers: { 'x-a': 'b\r\nx-evil: 1' } }),
      {
        code: 'ERR_INVALID_CHAR',
      },
    );
    await assert.rejects(a.request(`${origin.base}/`, { method: 'GET', headers: { 'bad name': 'x' } }), {
      code: 'ERR_INVALID_HTTP_TOKEN',
    });
    assert.equal(origin.connections(), 0);
  });

  it('reaches an IPv6 literal, sending its bracketed form as Host', async () => {
    let host: string | undefined;
    const server = createHttpServer((req, res) => {
      host = req.headers.host;
      res.end('v6');
    });
    await new Promise<void>((ok) => server.listen(0, '::1', ok));
    servers.push(server);
    const port = (server.address() as AddressInfo).port;
    const res = await agent().request(`http://[::1]:${port}/x`, GET);
    assert.equal((await readAll(res.body)).toString(), 'v6');
    assert.equal(host, `[::1]:${port}`);
  });

  it('connects where resolveHost says, and fails with its error', async () => {
    const origin = await rangeOrigin();
    const port = Number(new URL(origin.base).port);
    const asked: string[] = [];
    const a = agent({
      resolveHost: async (host) => {
        asked.push(host);
        if (host === 'denied.example') throw new Error('not allowed here');
        return '127.0.0.1';
      },
    });
    const res = await a.request(`http://origin.example:${port}/f`, range(0, 10));
    assert.ok((await readAll(res.body)).equals(DATA.subarray(0, 10)));
    await assert.rejects(a.request(`http://denied.example:${port}/f`, GET), /not allowed here/);
    assert.deepEqual(asked, ['origin.example', 'denied.example']);
  });

  it('https: bodies whole to a slow reader (TLS hands over several records before a pause holds), one connection', async () => {
    const { cert, key } = selfSignedCertificate();
    let connections = 0;
    const server = createHttpsServer({ cert, key }, (req, res) => {
      const m = /bytes=(\d+)-(\d+)/.exec(req.headers.range ?? '');
      const start = m ? Number(m[1]) : 0;
      const end = m ? Number(m[2]) : DATA.length - 1;
      res.writeHead(206, { 'content-length': end - start + 1 }).end(DATA.subarray(start, end + 1));
    });
    server.on('secureConnection', () => connections++);
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    servers.push(server);
    const port = (server.address() as AddressInfo).port;
    const a = agent({ tls: { rejectUnauthorized: true, ca: [cert] } });
    for (const [start, length] of [
      [0, 4 * 1024 * 1024],
      [1000, 2 * 1024 * 1024],
    ] as const) {
      // localhost: the certificate names it; the check is against the URL's host.
      const res = await a.request(`https://localhost:${port}/f`, range(start, length));
      const hash = createHash('sha256');
      let n = 0;
      for await (const chunk of res.body) {
        hash.update(chunk);
        if (n++ % 8 === 0) await new Promise((r) => setTimeout(r, 1));
      }
      const want = createHash('sha256')
        .update(DATA.subarray(start, start + length))
        .digest('hex');
      assert.equal(hash.digest('hex'), want);
    }
    assert.equal(connections, 1);
    // Without the certificate among the trusted ones, the handshake fails with the reason.
    await assert.rejects(
      agent({ tls: { rejectUnauthorized: true } }).request(`https://localhost:${port}/f`, GET),
      (e: unknown) => /SELF_SIGNED|UNABLE_TO_VERIFY/.test(String((e as { code?: string }).code)),
    );
    // A name the certificate does not carry fails the identity check, also when connected by address.
    const byAddress = agent({
      tls: { rejectUnauthorized: true, ca: [cert] },
      resolveHost: async () => '127.0.0.1',
    });
    await assert.rejects(byAddress.request(`https://origin.example:${port}/f`, GET), {
      code: 'ERR_TLS_CERT_ALTNAME_INVALID',
    });
  });

  it('close() ends idle connections and waits for the request in flight', async () => {
    const origin = await rangeOrigin();
    const a = new Http1Agent({ keepAliveTimeoutMs: 60_000 });
    await readAll((await a.request(`${origin.base}/f`, range(0, 10))).body);
    const res = await a.request(`${origin.base}/f`, range(0, 1024 * 1024));
    let closed = false;
    const closing = a.close().then(() => (closed = true));
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(closed, false);
    assert.equal((await readAll(res.body)).length, 1024 * 1024);
    await closing;
    assert.equal(a.connectionCount, 0);
    await assert.rejects(a.request(`${origin.base}/f`, GET), code('HTTP1_AGENT_CLOSED'));
  });

  it('an idle connection is dropped after the keep-alive time the server asked for', async () => {
    const base = await rawOrigin((_head, socket) =>
      socket.write('HTTP/1.1 200 OK\r\nKeep-Alive: timeout=1\r\nContent-Length: 2\r\n\r\nok'),
    );
    const a = agent();
    await readAll((await a.request(`${base}/`, GET)).body);
    // timeout=1 s less the 1 s margin: not kept at all.
    assert.equal(a.connectionCount, 0);
    const b = agent({ keepAliveTimeoutMs: 50 });
    const plain = await rawOrigin((_head, socket) =>
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'),
    );
    await readAll((await b.request(`${plain}/`, GET)).body);
    assert.equal(b.connectionCount, 1);
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(b.connectionCount, 0);
  });
});
