// A piece answered with a body that ends when the origin closes the connection (no Content-Length, or
// `Connection: close`), read slowly. undici 7 (client-h1 onHttpSocketEnd) asserts that its parser is not paused
// when the socket ends with a response in flight; a reader applying backpressure pauses it, so a fast origin and
// a slow disk crashed the whole daemon with an AssertionError (found by bench:objstore against a real HDFS
// DataNode, whose WebHDFS OPEN answers that way). Such bodies are now drained as they come (a piece at most).
// http sources now go through http1-agent.ts, where such a body ends at the close; the same cases hold for it.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { HttpBackend } from '../../../src/backend/http.js';
import { selfSignedCertificate } from './origin.js';

const SIZE = 8 * 1024 * 1024;
const DATA = randomBytes(SIZE);

/**
 * A raw HTTP/1.1 origin: each GET with a Range is answered 206 with `headers`, the bytes, then a close. Over TLS
 * for https (undici's client), plain for http (http1-agent.ts).
 */
function rawOrigin(scheme: 'http' | 'https', headers: (start: number, end: number) => string[]): Server {
  const onSocket = (socket: Socket) => {
    let head = '';
    socket.on('data', (d) => {
      head += d.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      const m = /range: bytes=(\d+)-(\d+)/i.exec(head);
      const start = Number(m?.[1] ?? 0);
      const end = Math.min(Number(m?.[2] ?? SIZE - 1), SIZE - 1);
      const lines = [
        'HTTP/1.1 206 Partial Content',
        `Content-Range: bytes ${start}-${end}/${SIZE}`,
        ...headers(start, end),
      ];
      socket.end(
        Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`), DATA.subarray(start, end + 1)]),
      );
    });
    socket.on('error', () => undefined);
  };
  return scheme === 'https' ? createTlsServer(selfSignedCertificate(), onSocket) : createServer(onSocket);
}

for (const scheme of ['http', 'https'] as const)
  describe(`HttpBackend (${scheme}) with bodies the origin ends by closing the connection`, () => {
    const cases: Array<[string, (s: number, e: number) => string[]]> = [
      ['no Content-Length, Connection: close', () => ['Connection: close']],
      ['no Content-Length, no Connection header', () => []],
      [
        'Content-Length and Connection: close',
        (s, e) => [`Content-Length: ${e - s + 1}`, 'Connection: close'],
      ],
    ];
    const servers: Server[] = [];
    const backends: HttpBackend[] = [];

    before(async () => {
      for (const [, headers] of cases) {
        const server = rawOrigin(scheme, headers);
        await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
        servers.push(server);
      }
    });
    after(async () => {
      await Promise.all(backends.map((b) => b.close()));
      for (const s of servers) await new Promise((ok) => s.close(ok));
    });

    cases.forEach(([name], i) => {
      it(`${name}: pieces read after the origin closed arrive whole`, async () => {
        const backend = new HttpBackend(scheme, {
          insecureSkipVerify: true,
          maxRetries: 0,
          enableCacheTemporaryRedirect: false,
          cacheTemporaryRedirectTTLMs: 0,
          requestHeader: {},
        });
        backends.push(backend);
        const port = (servers[i]!.address() as AddressInfo).port;
        const length = 4 * 1024 * 1024;
        for (let round = 0; round < 4; round++) {
          const start = round % 2 === 0 ? 0 : length;
          const res = await backend.get({
            taskId: 't',
            pieceNumber: round,
            url: `${scheme}://127.0.0.1:${port}/f`,
            range: { start, length },
            requestHeader: {},
            timeoutMs: 10_000,
          });
          // A reader slower than the socket (a busy disk): the body is under backpressure to its last chunk.
          const chunks: Buffer[] = [];
          for await (const chunk of res.body as AsyncIterable<Buffer>) {
            chunks.push(Buffer.from(chunk)); // valid only until the next chunk is asked for
            await new Promise((r) => setTimeout(r, 1));
          }
          const body = Buffer.concat(chunks);
          assert.equal(body.length, length);
          assert.ok(body.equals(DATA.subarray(start, start + length)), `piece ${round} differs`);
        }
      });
    });
  });
