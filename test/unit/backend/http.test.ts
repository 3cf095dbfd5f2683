import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { DfError } from '../../../src/core/errors.js';
import { DEFAULT_USER_AGENT, HttpBackend } from '../../../src/backend/http.js';
import type { HttpBackendOptions } from '../../../src/backend/http.js';
import { Origin, readAll, selfSignedCertificate, serveRanges } from './origin.js';
import { freePort } from '../../helpers/child-process.js';

const TIMEOUT_MS = 5_000;
const DATA = randomBytes(1024 * 1024 + 17);

function options(overrides: Partial<HttpBackendOptions> = {}): HttpBackendOptions {
  return {
    maxRetries: 0,
    enableCacheTemporaryRedirect: true,
    cacheTemporaryRedirectTTLMs: 600_000,
    requestHeader: {},
    ...overrides,
  };
}

function isDfError(code: DfError['code'], check?: (e: DfError) => void) {
  return (e: unknown) => {
    assert.ok(e instanceof DfError, `expected DfError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    check?.(e);
    return true;
  };
}

const statReq = (url: string, requestHeader: Record<string, string> = {}) => ({
  taskId: 't',
  url,
  requestHeader,
  timeoutMs: TIMEOUT_MS,
});

const getReq = (
  url: string,
  range?: { start: number; length: number },
  requestHeader: Record<string, string> = {},
) => ({
  taskId: 't',
  pieceNumber: 0,
  url,
  range,
  requestHeader,
  timeoutMs: TIMEOUT_MS,
});

describe('HttpBackend', () => {
  const origin = new Origin();
  const other = new Origin();
  const backends: HttpBackend[] = [];
  const backend = (o: Partial<HttpBackendOptions> = {}, scheme = 'http') => {
    const b = new HttpBackend(scheme, options(o));
    backends.push(b);
    return b;
  };

  before(async () => {
    await origin.listen();
    await other.listen();
  });
  after(async () => {
    await Promise.all(backends.map((b) => b.close()));
    await origin.close();
    await other.close();
  });

  describe('stat', () => {
    it('reads the total from Content-Range of a bytes=0-0 GET', async () => {
      const url = origin.route('/stat/ranged', serveRanges(DATA));
      const res = await backend().stat(statReq(url));
      assert.equal(res.statusCode, 206);
      assert.equal(res.contentLength, DATA.length);
      assert.equal(res.responseHeader['content-length'], String(DATA.length));
      assert.equal(res.responseHeader['content-range'], undefined);
      assert.equal(origin.lastHeaders.get('/stat/ranged')?.range, 'bytes=0-0');
      assert.deepEqual(origin.methods.get('/stat/ranged'), ['GET']);
    });

    it('falls back to HEAD when the origin answers chunked without a length', async () => {
      const url = origin.route('/stat/chunked', (req, res) => {
        if (req.method === 'HEAD') {
          res.writeHead(200, { 'content-length': 12345 });
          res.end();
          return;
        }
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        res.write(Buffer.alloc(100));
        res.end(Buffer.alloc(100));
      });
      const res = await backend().stat(statReq(url));
      assert.equal(res.contentLength, 12345);
      assert.deepEqual(origin.methods.get('/stat/chunked'), ['GET', 'HEAD']);
      assert.equal(origin.lastHeaders.get('/stat/chunked')?.range, undefined);
    });

    it('falls back to a plain GET on 416 (a 0-byte object)', async () => {
      const url = origin.route('/stat/416', serveRanges(Buffer.alloc(0)));
      const res = await backend().stat(statReq(url));
      assert.equal(res.statusCode, 200);
      assert.equal(res.contentLength, 0);
      assert.equal(origin.count('/stat/416'), 2);
      assert.equal(origin.lastHeaders.get('/stat/416')?.range, undefined);
    });

    it('stats a 0-byte object answered with 200 and Content-Length 0', async () => {
      const url = origin.route('/stat/empty', (_req, res) => {
        res.writeHead(200, { 'content-length': 0 });
        res.end();
      });
      const res = await backend().stat(statReq(url));
      assert.equal(res.contentLength, 0);
      assert.equal(res.statusCode, 200);
    });

    it('keeps the GET answer when the HEAD fallback is refused', async () => {
      const url = origin.route('/stat/no-head', (req, res) => {
        if (req.method === 'HEAD') {
          res.writeHead(405, { 'content-length': 0 });
          res.end();
          return;
        }
        res.writeHead(200, { 'x-from': 'get' });
        res.end('abc');
      });
      const res = await backend().stat(statReq(url));
      assert.equal(res.statusCode, 200);
      assert.equal(res.contentLength, undefined);
      assert.equal(res.responseHeader['x-from'], 'get');
      assert.deepEqual(origin.methods.get('/stat/no-head'), ['GET', 'HEAD']);
    });

    it('reports no length when the origin gives none', async () => {
      const url = origin.route('/stat/nolength', (_req, res) => {
        res.writeHead(200);
        res.end('abc');
      });
      const res = await backend().stat(statReq(url));
      assert.equal(res.contentLength, undefined);
    });

    it('turns 404 into a BACKEND error keeping status and headers', async () => {
      await assert.rejects(
        backend().stat(statReq(`${origin.url}/stat/missing`)),
        isDfError('BACKEND', (e) => {
          assert.equal(e.backend?.statusCode, 404);
          assert.equal(e.backend?.header['x-origin'], 'test');
          assert.equal(e.retryable, false);
          assert.match(e.message, /404 Not Found for http:\/\/127\.0\.0\.1:\d+\/stat\/missing/);
        }),
      );
    });
  });

  describe('get', () => {
    const url = () => `${origin.url}/data`;
    before(() => origin.route('/data', serveRanges(DATA)));

    it('returns exactly the requested range', async () => {
      const res = await backend().get(getReq(url(), { start: 1000, length: 300_000 }));
      assert.equal(res.statusCode, 206);
      const body = await readAll(res.body);
      assert.ok(body.equals(DATA.subarray(1000, 301_000)));
      assert.equal(origin.lastHeaders.get('/data')?.range, 'bytes=1000-300999');
    });

    it('returns the last short piece and the whole object without a range', async () => {
      const last = await backend().get(getReq(url(), { start: DATA.length - 17, length: 17 }));
      assert.ok((await readAll(last.body)).equals(DATA.subarray(DATA.length - 17)));
      const whole = await backend().get(getReq(url()));
      assert.equal(whole.statusCode, 200);
      assert.ok((await readAll(whole.body)).equals(DATA));
    });

    it('refuses a 200 full body to a middle range', async () => {
      const u = origin.route('/ignores-range', (_req, res) => {
        res.writeHead(200, { 'content-length': DATA.length });
        res.end(DATA);
      });
      await assert.rejects(
        backend().get(getReq(u, { start: 4096, length: 4096 })),
        isDfError('BACKEND', (e) => {
          assert.equal(e.backend?.statusCode, 200);
          assert.match(e.message, /ignored the range/);
        }),
      );
      // A range from 0 that is shorter than the object is refused too...
      await assert.rejects(backend().get(getReq(u, { start: 0, length: 4096 })), isDfError('BACKEND'));
      // ...but one that is the whole object is what was asked for.
      const res = await backend().get(getReq(u, { start: 0, length: DATA.length }));
      assert.ok((await readAll(res.body)).equals(DATA));
    });

    it('refuses a Content-Range that is not the requested range', async () => {
      const u = origin.route('/wrong-range', (_req, res) => {
        res.writeHead(206, { 'content-range': `bytes 0-99/${DATA.length}`, 'content-length': 100 });
        res.end(DATA.subarray(0, 100));
      });
      await assert.rejects(
        backend().get(getReq(u, { start: 100, length: 100 })),
        isDfError('BACKEND', (e) => {
          assert.equal(e.backend?.statusCode, 206);
          assert.match(e.message, /Content-Range "bytes 0-99\/\d+" does not match/);
        }),
      );
    });

    it('refuses a 206 without Content-Range', async () => {
      const u = origin.route('/no-content-range', (_req, res) => {
        res.writeHead(206, { 'content-length': 100 });
        res.end(DATA.subarray(0, 100));
      });
      await assert.rejects(backend().get(getReq(u, { start: 100, length: 100 })), isDfError('BACKEND'));
    });

    it('errors the body when the origin closes the connection short', async () => {
      const u = origin.route('/short', (_req, res) => {
        res.writeHead(206, { 'content-range': `bytes 0-9999/${DATA.length}`, 'content-length': 10_000 });
        res.write(DATA.subarray(0, 5000), () => res.socket?.destroy());
      });
      const res = await backend().get(getReq(u, { start: 0, length: 10_000 }));
      await assert.rejects(
        readAll(res.body),
        isDfError('BACKEND', (e) => assert.match(e.message, /after 5000 of 10000 bytes/)),
      );
    });

    it('errors the body when a chunked answer ends short', async () => {
      const u = origin.route('/short-chunked', (_req, res) => {
        res.writeHead(206, { 'content-range': `bytes 0-9999/${DATA.length}` });
        res.end(DATA.subarray(0, 4000));
      });
      const res = await backend().get(getReq(u, { start: 0, length: 10_000 }));
      await assert.rejects(
        readAll(res.body),
        isDfError('BACKEND', (e) => assert.match(e.message, /ended after 4000 of 10000 bytes/)),
      );
    });

    it('errors the body when the origin sends more than asked', async () => {
      const u = origin.route('/too-long', (_req, res) => {
        res.writeHead(206, { 'content-range': `bytes 0-9999/${DATA.length}` });
        res.write(DATA.subarray(0, 6000));
        res.end(DATA.subarray(6000, 12_000));
      });
      const res = await backend().get(getReq(u, { start: 0, length: 10_000 }));
      await assert.rejects(
        readAll(res.body),
        isDfError('BACKEND', (e) => assert.match(e.message, /more than the 10000 bytes/)),
      );
    });

    it('refuses a Content-Length that differs from the range', async () => {
      const u = origin.route('/long-length', (_req, res) => {
        res.writeHead(206, { 'content-range': `bytes 0-99/${DATA.length}`, 'content-length': 200 });
        res.end(DATA.subarray(0, 200));
      });
      await assert.rejects(backend().get(getReq(u, { start: 0, length: 100 })), isDfError('BACKEND'));
    });

    it('rejects an empty or negative range before asking the origin', async () => {
      await assert.rejects(
        backend().get(getReq(url(), { start: 0, length: 0 })),
        isDfError('INVALID_ARGUMENT'),
      );
      await assert.rejects(
        backend().get(getReq(url(), { start: -1, length: 10 })),
        isDfError('INVALID_ARGUMENT'),
      );
    });

    it('keeps 404 status and headers', async () => {
      await assert.rejects(
        backend().get(getReq(`${origin.url}/nothing-here`, { start: 0, length: 10 })),
        isDfError('BACKEND', (e) => {
          assert.equal(e.backend?.statusCode, 404);
          assert.equal(e.backend?.header['x-origin'], 'test');
        }),
      );
    });

    it('cancels when the caller aborts mid-body', async () => {
      const u = origin.route('/slow-body', (_req, res) => {
        res.writeHead(206, { 'content-range': `bytes 0-9999/${DATA.length}`, 'content-length': 10_000 });
        res.write(DATA.subarray(0, 100));
      });
      const ac = new AbortController();
      const res = await backend().get({ ...getReq(u, { start: 0, length: 10_000 }), signal: ac.signal });
      setTimeout(() => ac.abort(), 50);
      await assert.rejects(readAll(res.body), isDfError('CANCELLED'));
    });
  });

  describe('retries', () => {
    it('retries 500 maxRetries times, then fails with the status', async () => {
      const u = origin.route('/always-500', (_req, res) => {
        res.writeHead(500);
        res.end('boom');
      });
      await assert.rejects(
        backend({ maxRetries: 2 }).get(getReq(u, { start: 0, length: 10 })),
        isDfError('BACKEND', (e) => {
          assert.equal(e.backend?.statusCode, 500);
          assert.equal(e.retryable, true);
          assert.match(e.message, /500 Internal Server Error/);
        }),
      );
      assert.equal(origin.count('/always-500'), 3);
    });

    it('succeeds when 503 is followed by 200', async () => {
      let n = 0;
      const ranges = serveRanges(DATA);
      const u = origin.route('/flaky', (req, res) => {
        if (n++ === 0) {
          res.writeHead(503);
          res.end();
          return;
        }
        ranges(req, res);
      });
      const res = await backend({ maxRetries: 1 }).get(getReq(u, { start: 10, length: 10 }));
      assert.ok((await readAll(res.body)).equals(DATA.subarray(10, 20)));
      assert.equal(origin.count('/flaky'), 2);
    });

    it('does not retry a 4xx', async () => {
      const u = origin.route('/forbidden', (_req, res) => {
        res.writeHead(403);
        res.end();
      });
      await assert.rejects(backend({ maxRetries: 3 }).stat(statReq(u)), isDfError('BACKEND'));
      assert.equal(origin.count('/forbidden'), 1);
    });
  });

  describe('failures to connect', () => {
    it('times out within the configured time on an origin that never answers', async () => {
      const u = origin.route('/hang', () => {});
      const started = Date.now();
      await assert.rejects(
        backend({ maxRetries: 3 }).get({ ...getReq(u, { start: 0, length: 10 }), timeoutMs: 300 }),
        isDfError('TIMEOUT', (e) => assert.match(e.message, /within 300 ms/)),
      );
      const elapsed = Date.now() - started;
      assert.ok(elapsed >= 290 && elapsed < 1500, `took ${elapsed} ms`);
    });

    it('names host and cause when the connection is refused', async () => {
      const port = await freePort();
      await assert.rejects(
        backend({ maxRetries: 1 }).stat(statReq(`http://127.0.0.1:${port}/x`)),
        isDfError('BACKEND', (e) => {
          assert.equal(e.retryable, true);
          assert.equal(
            e.message,
            `backend error: cannot reach 127.0.0.1:${port}: connection refused (ECONNREFUSED)`,
          );
        }),
      );
    });
  });

  describe('redirects', () => {
    it('follows a 307 and caches it until the TTL passes', async () => {
      let now = 1_000_000;
      const b = backend({ cacheTemporaryRedirectTTLMs: 60_000, now: () => now });
      other.route('/target', serveRanges(DATA));
      const u = origin.route('/temp', (_req, res) => {
        res.writeHead(307, { location: `${other.url}/target?sig=abc` });
        res.end();
      });
      const read = async () =>
        (await readAll((await b.get(getReq(u, { start: 5, length: 5 }))).body)).toString('hex');
      const expected = DATA.subarray(5, 10).toString('hex');

      assert.equal(await read(), expected);
      assert.deepEqual([origin.count('/temp'), other.count('/target')], [1, 1]);

      now += 30_000;
      assert.equal(await read(), expected);
      assert.deepEqual(
        [origin.count('/temp'), other.count('/target')],
        [1, 2],
        'cached: straight to the target',
      );

      now += 30_000;
      assert.equal(await read(), expected);
      assert.deepEqual(
        [origin.count('/temp'), other.count('/target')],
        [2, 3],
        'expired: asks the origin again',
      );
    });

    it('does not cache a 307 when caching is off', async () => {
      const b = backend({ enableCacheTemporaryRedirect: false });
      origin.route('/data2', serveRanges(DATA));
      const u = origin.route('/temp-nocache', (_req, res) => {
        res.writeHead(307, { location: '/data2' });
        res.end();
      });
      await readAll((await b.get(getReq(u, { start: 0, length: 5 }))).body);
      await readAll((await b.get(getReq(u, { start: 0, length: 5 }))).body);
      assert.equal(origin.count('/temp-nocache'), 2);
    });

    it('forgets a cached target that fails and asks the origin again', async () => {
      const b = backend();
      let presignedValid = true;
      other.route('/presigned-1', (req, res) => {
        if (presignedValid) return serveRanges(DATA)(req, res);
        res.writeHead(403, { 'content-length': 0 });
        res.end();
      });
      other.route('/presigned-2', serveRanges(DATA));
      const u = origin.route('/temp-stale', (_req, res) => {
        res.writeHead(307, { location: `${other.url}/presigned-${origin.count('/temp-stale')}` });
        res.end();
      });
      await readAll((await b.get(getReq(u, { start: 0, length: 5 }))).body);
      presignedValid = false; // the cached signature expires before the TTL
      const res = await b.get(getReq(u, { start: 0, length: 5 }));
      assert.ok((await readAll(res.body)).equals(DATA.subarray(0, 5)));
      assert.deepEqual(
        [origin.count('/temp-stale'), other.count('/presigned-1'), other.count('/presigned-2')],
        [2, 2, 1],
      );
    });

    for (const status of [301, 302, 303, 308]) {
      it(`follows a ${status} without caching it`, async () => {
        const b = backend();
        const target = origin.route(`/moved-target-${status}`, serveRanges(DATA));
        const u = origin.route(`/moved-${status}`, (_req, res) => {
          res.writeHead(status, { location: target });
          res.end();
        });
        for (let i = 0; i < 2; i++) {
          const res = await b.get(getReq(u, { start: 7, length: 3 }));
          assert.ok((await readAll(res.body)).equals(DATA.subarray(7, 10)));
        }
        assert.equal(origin.count(`/moved-${status}`), 2);
      });
    }

    it('gives up after too many redirects', async () => {
      const u = origin.route('/loop', (_req, res) => {
        res.writeHead(302, { location: '/loop' });
        res.end();
      });
      await assert.rejects(
        backend().stat(statReq(u)),
        isDfError('BACKEND', (e) => assert.match(e.message, /redirects/)),
      );
      assert.equal(origin.count('/loop'), 11);
    });

    it('strips Authorization and Cookie on a cross-origin redirect, keeps them on the same origin', async () => {
      other.route('/echo', serveRanges(DATA));
      origin.route('/echo', serveRanges(DATA));
      const cross = origin.route('/to-other', (_req, res) => {
        res.writeHead(302, { location: `${other.url}/echo` });
        res.end();
      });
      const same = origin.route('/to-same', (_req, res) => {
        res.writeHead(302, { location: '/echo' });
        res.end();
      });
      const secret = { Authorization: 'Bearer secret', Cookie: 'a=b', 'X-Keep': 'yes' };
      await backend().stat(statReq(cross, secret));
      const seen = other.lastHeaders.get('/echo');
      assert.equal(seen?.authorization, undefined);
      assert.equal(seen?.cookie, undefined);
      assert.equal(seen?.['x-keep'], 'yes');
      assert.equal(origin.lastHeaders.get('/to-other')?.authorization, 'Bearer secret');

      await backend().stat(statReq(same, secret));
      assert.equal(origin.lastHeaders.get('/echo')?.authorization, 'Bearer secret');
      assert.equal(origin.lastHeaders.get('/echo')?.cookie, 'a=b');
    });
  });

  describe('request headers', () => {
    it('sends configured defaults under the request headers; the request wins', async () => {
      const u = origin.route('/headers', serveRanges(DATA));
      const b = backend({ requestHeader: { 'X-Config': 'config', 'X-Both': 'config' } });
      const res = await b.get(
        getReq(u, { start: 0, length: 4 }, { 'x-both': 'request', 'X-Only': 'request' }),
      );
      await readAll(res.body);
      const seen = origin.lastHeaders.get('/headers');
      assert.equal(seen?.['x-config'], 'config');
      assert.equal(seen?.['x-both'], 'request');
      assert.equal(seen?.['x-only'], 'request');
      assert.equal(seen?.['user-agent'], DEFAULT_USER_AGENT);
      assert.equal(seen?.range, 'bytes=0-3');
    });

    it('drops hop-by-hop headers and a caller Range and If-Range; keeps a caller User-Agent', async () => {
      const u = origin.route('/headers2', serveRanges(DATA));
      const res = await backend().get(
        getReq(
          u,
          { start: 0, length: 4 },
          { Connection: 'upgrade', Range: 'bytes=9-9', 'If-Range': '"v0"', 'User-Agent': 'mine' },
        ),
      );
      await readAll(res.body);
      const seen = origin.lastHeaders.get('/headers2');
      assert.equal(seen?.range, 'bytes=0-3');
      assert.equal(seen?.['if-range'], undefined);
      assert.equal(seen?.['user-agent'], 'mine');
    });

    it('refuses an invalid configured header naming it', () => {
      assert.throws(
        () => new HttpBackend('http', options({ requestHeader: { 'bad header': 'x' } })),
        isDfError('INVALID_CONFIG', (e) => assert.match(e.message, /backend\.requestHeader\.bad header/)),
      );
      assert.throws(() => new HttpBackend('http', options({ maxRetries: -1 })), isDfError('INVALID_CONFIG'));
    });
  });

  describe('piece validators (the version the task started with)', () => {
    /** Serves DATA by range under `state`'s headers; honours If-Match / If-Unmodified-Since unless `ignore`. */
    const versioned = (state: { headers: Record<string, string>; ignore?: boolean }) => {
      const serve = (req: IncomingMessage, res: ServerResponse) => {
        const etag = state.headers['etag'];
        const lm = state.headers['last-modified'];
        const ifMatch = req.headers['if-match'];
        const since = req.headers['if-unmodified-since'];
        const failed =
          !state.ignore &&
          ((ifMatch !== undefined && (etag === undefined || etag.startsWith('W/') || ifMatch !== etag)) ||
            (ifMatch === undefined &&
              since !== undefined &&
              lm !== undefined &&
              Date.parse(lm) > Date.parse(since)));
        if (failed) {
          res.writeHead(412).end('precondition failed');
          return;
        }
        for (const [k, v] of Object.entries(state.headers)) res.setHeader(k, v);
        serveRanges(DATA)(req, res);
      };
      return serve;
    };
    const piece = { start: 8, length: 8 };
    const LM1 = 'Mon, 02 Jun 2025 10:00:00 GMT';
    const LM2 = 'Mon, 02 Jun 2025 10:00:05 GMT';

    it('asks If-Match with a strong ETag and gets the piece while it holds', async () => {
      const u = origin.route('/v/strong', versioned({ headers: { etag: '"a"', 'last-modified': LM1 } }));
      const res = await backend().get({ ...getReq(u, piece), validator: { etag: '"a"', lastModified: LM1 } });
      assert.ok((await readAll(res.body)).equals(DATA.subarray(8, 16)));
      const seen = origin.lastHeaders.get('/v/strong');
      assert.equal(seen?.['if-match'], '"a"');
      assert.equal(seen?.['if-unmodified-since'], undefined);
    });

    it('a 412 to If-Match is SOURCE_CHANGED, not the origin status', async () => {
      const u = origin.route('/v/412', versioned({ headers: { etag: '"b"' } }));
      await assert.rejects(
        backend().get({ ...getReq(u, piece), validator: { etag: '"a"' } }),
        isDfError('SOURCE_CHANGED', (e) => {
          assert.match(e.message, /^source changed during the download: .*\/v\/412 .*412 to If-Match: "a"/);
          assert.equal(e.backend, undefined);
          assert.equal(e.retryable, false);
        }),
      );
    });

    it('an origin that ignores If-Match is caught by the ETag of its answer', async () => {
      const u = origin.route('/v/ignored', versioned({ headers: { etag: '"b"' }, ignore: true }));
      await assert.rejects(
        backend().get({ ...getReq(u, piece), validator: { etag: '"a"' } }),
        isDfError('SOURCE_CHANGED', (e) => assert.match(e.message, /ETag "a" → "b"/)),
      );
    });

    it('a whole-object piece answered 200 by an origin that changed is caught too', async () => {
      const u = origin.route('/v/whole', (req, res) => {
        res.writeHead(200, { etag: '"b"', 'content-length': DATA.length }).end(DATA);
      });
      await assert.rejects(
        backend().get({ ...getReq(u, { start: 0, length: DATA.length }), validator: { etag: '"a"' } }),
        isDfError('SOURCE_CHANGED'),
      );
    });

    it('a weak ETag is never sent as If-Match: If-Unmodified-Since with Last-Modified instead', async () => {
      const state = { headers: { etag: 'W/"a"', 'last-modified': LM1 } };
      const u = origin.route('/v/weak', versioned(state));
      const validator = { etag: 'W/"a"', lastModified: LM1 };
      const res = await backend().get({ ...getReq(u, piece), validator });
      await readAll(res.body);
      const seen = origin.lastHeaders.get('/v/weak');
      assert.equal(seen?.['if-match'], undefined);
      assert.equal(seen?.['if-unmodified-since'], LM1);
      // A changed weak ETag in the answer still tells (weak comparison), even when the date precondition held.
      state.headers = { etag: 'W/"b"', 'last-modified': LM1 };
      await assert.rejects(backend().get({ ...getReq(u, piece), validator }), isDfError('SOURCE_CHANGED'));
    });

    it('Last-Modified only: 412 to If-Unmodified-Since, or the answer’s date, is SOURCE_CHANGED', async () => {
      const state = { headers: { 'last-modified': LM2 }, ignore: false };
      const u = origin.route('/v/lm', versioned(state));
      await assert.rejects(
        backend().get({ ...getReq(u, piece), validator: { lastModified: LM1 } }),
        isDfError('SOURCE_CHANGED', (e) => assert.match(e.message, /412 to If-Unmodified-Since/)),
      );
      state.ignore = true;
      await assert.rejects(
        backend().get({ ...getReq(u, piece), validator: { lastModified: LM1 } }),
        isDfError('SOURCE_CHANGED', (e) => assert.match(e.message, /Last-Modified .* → /)),
      );
    });

    it('equal ETags decide even when Last-Modified moved; answers without validators pass', async () => {
      const u = origin.route(
        '/v/same',
        versioned({ headers: { etag: '"a"', 'last-modified': LM2 }, ignore: true }),
      );
      const res = await backend().get({ ...getReq(u, piece), validator: { etag: '"a"', lastModified: LM1 } });
      assert.ok((await readAll(res.body)).equals(DATA.subarray(8, 16)));
      const bare = origin.route('/v/bare', serveRanges(DATA));
      const res2 = await backend().get({ ...getReq(bare, piece), validator: { etag: '"a"' } });
      assert.ok((await readAll(res2.body)).equals(DATA.subarray(8, 16)));
    });

    it('no validator: no precondition is sent', async () => {
      const u = origin.route('/v/none', serveRanges(DATA));
      await readAll((await backend().get({ ...getReq(u, piece), validator: {} })).body);
      const seen = origin.lastHeaders.get('/v/none');
      assert.equal(seen?.['if-match'], undefined);
      assert.equal(seen?.['if-unmodified-since'], undefined);
    });
  });

  describe('https', () => {
    let tls: { cert: string; key: string };
    let secure: Origin;
    before(async () => {
      tls = selfSignedCertificate();
      secure = await new Origin(tls).listen();
      secure.route('/secure', serveRanges(DATA));
    });
    after(async () => secure.close());

    it('trusts a self-signed origin given in ca (PEM or DER)', async () => {
      const pem = Buffer.from(tls.cert);
      const res = await backend({ ca: [pem] }, 'https').stat(statReq(`${secure.url}/secure`));
      assert.equal(res.contentLength, DATA.length);

      const der = Buffer.from(tls.cert.replace(/-----[^-]+-----|\s/g, ''), 'base64');
      const got = await backend({ ca: [der] }, 'https').get(
        getReq(`${secure.url}/secure`, { start: 0, length: 8 }),
      );
      assert.ok((await readAll(got.body)).equals(DATA.subarray(0, 8)));
    });

    it('refuses it without ca, and accepts it with insecureSkipVerify', async () => {
      await assert.rejects(
        backend({ maxRetries: 2 }, 'https').stat(statReq(`${secure.url}/secure`)),
        isDfError('BACKEND', (e) => {
          assert.match(e.message, /TLS with 127\.0\.0\.1:\d+ failed/);
          assert.equal(e.retryable, false);
        }),
      );
      const res = await backend({ insecureSkipVerify: true }, 'https').stat(statReq(`${secure.url}/secure`));
      assert.equal(res.contentLength, DATA.length);
    });
  });
});
