// dfdaemon's HTTP proxy with curl as the client: forwarding, P2P routing by rule and by header, Range, errors,
// registry-mirror mode, CONNECT interception with our CA, basic auth and the request rate limit.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import {
  dfget,
  metricValue,
  metricsText,
  startDaemon,
  stopDaemon,
  tempDir,
  type DaemonHandle,
} from '../helpers/daemon.js';
import { Origin, contentSha256, contentSlice } from '../helpers/origin.js';
import { curl } from '../helpers/curl.js';
import { selfSignedLocalhost } from '../helpers/tls.js';
import { startScheduler, stopScheduler, type SchedulerHandle } from '../helpers/scheduler-process.js';

const MiB = 1024 * 1024;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('proxy', () => {
  const origin = new Origin();
  const origin2 = new Origin();
  const tlsOrigin = new Origin();
  let echo: Server;
  let echoPort = 0;
  let d: DaemonHandle;
  let proxy = '';
  const certDir = tempDir('dft-cert-');

  before(async () => {
    await origin.start();
    await origin2.start();
    const tls = selfSignedLocalhost(certDir);
    await tlsOrigin.start({ key: tls.key, cert: tls.cert, host: 'localhost' });
    // An echo origin for request bodies: answers with the body's sha256 and length.
    echo = createServer((req, res) => {
      const h = createHash('sha256');
      let n = 0;
      req.on('data', (c: Buffer) => {
        h.update(c);
        n += c.length;
      });
      req.on('end', () =>
        res.end(JSON.stringify({ sha: h.digest('hex'), n, method: req.method, host: req.headers.host })),
      );
    });
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    echoPort = (echo.address() as AddressInfo).port;
    d = await startDaemon({
      extraConfig: `proxy:
  server:
    ip: 127.0.0.1
    port: 0
  rules:
    - regex: 'p2p/.*'
    - regex: 'blobs/sha256.*'
  registryMirror:
    addr: ${origin.url}
    cert: ${tls.certPath}
  prefetchBandwidthLimit: 8MiB
`,
    });
    proxy = `http://127.0.0.1:${d.proxyPort}`;
  });

  after(async () => {
    if (d) await stopDaemon(d);
    await origin.stop();
    await origin2.stop();
    await tlsOrigin.stop();
    echo?.close();
    rmSync(certDir, { recursive: true, force: true });
  });

  test('a GET no rule matches is forwarded to the origin as it is', async () => {
    const url = origin.add('/plain/a', { size: 3 * MiB, seed: 1, headers: { 'x-origin-header': 'kept' } });
    const before = origin.requests.length;
    const r = await curl(['-x', proxy, url]);
    assert.equal(r.status, 200, r.stderr);
    assert.equal(sha(r.body), contentSha256(1, 3 * MiB));
    assert.equal(r.headers['x-origin-header'], 'kept');
    assert.equal(r.headers['x-dragonfly-task-id'], undefined, 'not through P2P');
    const seen = origin.requests.slice(before);
    assert.equal(seen.length, 1);
    assert.equal(seen[0]!.headers.host, `127.0.0.1:${origin.port}`);
    assert.equal(seen[0]!.headers['proxy-connection'], undefined, 'hop-by-hop header dropped');
  });

  test('a request body is streamed to the origin (POST is never routed to P2P)', async () => {
    const dir = tempDir();
    const file = join(dir, 'body');
    const body = contentSlice(5, 0, 8 * MiB);
    writeFileSync(file, body);
    const r = await curl([
      '-x',
      proxy,
      '-H',
      'X-Dragonfly-Use-P2P: true',
      '--data-binary',
      `@${file}`,
      `http://127.0.0.1:${echoPort}/p2p/up`,
    ]);
    rmSync(dir, { recursive: true, force: true });
    assert.equal(r.status, 200, r.stderr);
    const got = JSON.parse(r.body.toString()) as { sha: string; n: number; method: string; host: string };
    assert.deepEqual(got, { sha: sha(body), n: body.length, method: 'POST', host: `127.0.0.1:${echoPort}` });
  });

  test('a GET matching a rule goes through P2P; the second is a cache hit', async () => {
    const size = 20 * MiB;
    const url = origin.add('/p2p/big', { size, seed: 2, headers: { 'x-origin-header': 'replayed' } });
    const r = await curl(['-x', proxy, url]);
    assert.equal(r.status, 200, r.stderr);
    assert.equal(r.body.length, size);
    assert.equal(sha(r.body), contentSha256(2, size));
    assert.match(r.headers['x-dragonfly-task-id'] ?? '', /^[0-9a-f]{64}$/);
    assert.equal(r.headers['x-dragonfly-server-ip'], '127.0.0.1');
    assert.equal(r.headers['x-origin-header'], 'replayed', 'origin headers replayed');
    assert.equal(r.headers['content-length'], String(size));
    const pieces = origin.pieceRequests('/p2p/big').length;
    assert.ok(pieces > 0, 'pieces came from the origin');

    const again = await curl(['-x', proxy, url]);
    assert.equal(again.status, 200);
    assert.equal(sha(again.body), contentSha256(2, size));
    assert.equal(again.headers['x-dragonfly-task-download-finished'], 'true');
    assert.equal(again.headers['x-dragonfly-task-id'], r.headers['x-dragonfly-task-id']);
    assert.equal(origin.pieceRequests('/p2p/big').length, pieces, 'no origin piece request for a cache hit');
    const m = await metricsText(d);
    assert.ok(metricValue(m, 'dragonfly_client_proxy_request_via_dfdaemon_total') >= 2);
    assert.ok(metricValue(m, 'dragonfly_client_proxy_request_total') >= 2);
  });

  test('X-Dragonfly-Output-Path from a local client also writes the whole task to that path', async () => {
    const size = 5 * MiB;
    const url = origin.add('/p2p/output', { size, seed: 12 });
    const out = join(certDir, 'output.bin');
    const r = await curl(['-x', proxy, '-H', `X-Dragonfly-Output-Path: ${out}`, url]);
    assert.equal(r.status, 200, r.stderr);
    assert.equal(sha(r.body), contentSha256(12, size));
    assert.equal(createHash('sha256').update(readFileSync(out)).digest('hex'), contentSha256(12, size));
    const relative = await curl(['-x', proxy, '-H', 'X-Dragonfly-Output-Path: relative/x', url]);
    assert.equal(relative.status, 400, 'an output path must be absolute');
    assert.equal(relative.headers['x-dragonfly-error-type'], 'proxy');
    assert.match(relative.body.toString(), /must be absolute/);
  });

  test('X-Dragonfly-Use-P2P: true routes a GET no rule matches through P2P', async () => {
    const url = origin.add('/plain/hdr', { size: 6 * MiB, seed: 3 });
    const r = await curl(['-x', proxy, '-H', 'X-Dragonfly-Use-P2P: true', url]);
    assert.equal(r.status, 200, r.stderr);
    assert.equal(sha(r.body), contentSha256(3, 6 * MiB));
    assert.match(r.headers['x-dragonfly-task-id'] ?? '', /^[0-9a-f]{64}$/);
  });

  test('a single Range is answered with 206 and Content-Range; an unsatisfiable one with 416', async () => {
    const size = 12 * MiB + 17;
    const url = origin.add('/p2p/range', { size, seed: 4 });
    const r = await curl(['-x', proxy, '-r', '5000000-9000000', url]);
    assert.equal(r.status, 206, r.stderr);
    assert.equal(r.headers['content-range'], `bytes 5000000-9000000/${size}`);
    assert.equal(r.headers['content-length'], '4000001');
    assert.ok(r.body.equals(contentSlice(4, 5000000, 9000001)));

    const suffix = await curl(['-x', proxy, '-H', 'Range: bytes=-100', url]);
    assert.equal(suffix.status, 206);
    assert.equal(suffix.headers['content-range'], `bytes ${size - 100}-${size - 1}/${size}`);
    assert.ok(suffix.body.equals(contentSlice(4, size - 100, size)));

    const bad = await curl(['-x', proxy, '-r', `${size + 10}-`, url]);
    assert.equal(bad.status, 416);
    assert.equal(bad.headers['content-range'], `bytes */${size}`);
    assert.equal(bad.headers['x-dragonfly-error-type'], 'proxy');
  });

  test('X-Dragonfly-Prefetch on a Range request downloads the whole task in the background, paced', async () => {
    const size = 24 * MiB;
    const url = origin.add('/p2p/prefetch', { size, seed: 10 });
    const t0 = performance.now();
    const r = await curl(['-x', proxy, '-r', '0-99', '-H', 'X-Dragonfly-Prefetch: true', url]);
    assert.equal(r.status, 206, r.stderr);
    assert.ok(r.body.equals(contentSlice(10, 0, 100)));
    const taskId = r.headers['x-dragonfly-task-id']!;
    const deadline = Date.now() + 60_000;
    while (!d.logs.some((l) => l.includes('prefetch finished') && l.includes(taskId))) {
      assert.ok(Date.now() < deadline, `no prefetch finished line:\n${d.logs.slice(-20).join('\n')}`);
      await new Promise((res) => setTimeout(res, 100));
    }
    // The range fetched piece 0; the other 20 MiB wait for an 8 MiB/s bucket that starts with 8 MiB: ≥ 1.5 s.
    // (A lower bound only: a loaded machine makes it longer, never shorter.)
    assert.ok(performance.now() - t0 >= 1400, `prefetch took ${performance.now() - t0} ms`);
    const pieces = origin.pieceRequests('/p2p/prefetch').length;
    const full = await curl(['-x', proxy, url]);
    assert.equal(full.status, 200);
    assert.equal(full.headers['x-dragonfly-task-download-finished'], 'true');
    assert.equal(sha(full.body), contentSha256(10, size));
    assert.equal(origin.pieceRequests('/p2p/prefetch').length, pieces, 'everything was prefetched');
  });

  test('origin errors keep their status and headers, with X-Dragonfly-Error-Type: backend', async () => {
    const missing = await curl(['-x', proxy, `${origin.url}/p2p/missing`]);
    assert.equal(missing.status, 404);
    assert.equal(missing.headers['x-dragonfly-error-type'], 'backend');

    const url = origin.add('/p2p/broken', { size: 6 * MiB, seed: 6, status: 500 });
    const broken = await curl(['-x', proxy, url]);
    assert.equal(broken.status, 500);
    assert.equal(broken.headers['x-dragonfly-error-type'], 'backend');
    assert.equal(broken.headers['x-origin'], 'test', "the origin's headers are kept");
  });

  test('a 304 the origin answers to a conditional GET through P2P is passed on (not a 500)', async () => {
    const url = origin.add('/p2p/not-modified', { size: 1000, seed: 11, status: 304 });
    const r = await curl(['-x', proxy, '-H', 'If-None-Match: "v1"', url]);
    assert.equal(r.status, 304, r.stderr);
    assert.equal(r.headers['x-dragonfly-error-type'], 'backend');
    assert.equal(r.headers['x-origin'], 'test');
    assert.equal(r.body.length, 0);
  });

  test('registry token auth passes through: 401 with WWW-Authenticate unchanged, then the bearer token works', async () => {
    const size = 6 * MiB;
    origin.add('/v2/t/x/blobs/sha256:private', { size, seed: 11, bearerToken: 'tok123' });
    const url = `${proxy}/v2/t/x/blobs/sha256:private`;
    const denied = await curl([url]);
    assert.equal(denied.status, 401);
    assert.equal(denied.headers['x-dragonfly-error-type'], 'backend');
    assert.match(
      denied.headers['www-authenticate'] ?? '',
      /^Bearer realm=".*\/token",service="test-registry"/,
    );
    const ok = await curl(['-H', 'Authorization: Bearer tok123', url]);
    assert.equal(ok.status, 200, ok.stderr);
    assert.equal(sha(ok.body), contentSha256(11, size));
    const pieces = origin.pieceRequests('/v2/t/x/blobs/sha256:private');
    assert.ok(pieces.length > 0);
    assert.ok(
      pieces.every((r) => r.headers.authorization === 'Bearer tok123'),
      'every piece request carries the token',
    );
  });

  test('a client that gives up while the task starts does not fail another one waiting for the same task', async () => {
    const url = origin.add('/p2p/slow-start', { size: 1000, seed: 12, delayMs: 1500 });
    const first = curl(['-x', proxy, '--max-time', '0.5', url]);
    await new Promise((r) => setTimeout(r, 200));
    const second = await curl(['-x', proxy, url]);
    assert.notEqual((await first).code, 0, 'the first client gave up');
    assert.equal(second.status, 200, second.body.toString());
    assert.ok(second.body.equals(contentSlice(12, 0, 1000)));
  });

  test('an unreachable origin is a 502 with X-Dragonfly-Error-Type: proxy', async () => {
    const s = createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const port = (s.address() as AddressInfo).port;
    await new Promise((r) => s.close(r));
    const r = await curl(['-x', proxy, `http://127.0.0.1:${port}/gone`]);
    assert.equal(r.status, 502);
    assert.equal(r.headers['x-dragonfly-error-type'], 'proxy');
    assert.match(r.body.toString(), /cannot reach/);
  });

  test('registry mirror mode: a path-only request goes to X-Dragonfly-Registry, else ns, else registryMirror.addr', async () => {
    const size = 6 * MiB;
    origin.add('/v2/t/x/blobs/sha256:aaaa', { size, seed: 7 });
    origin2.add('/v2/t/x/blobs/sha256:aaaa', { size, seed: 8 });
    const viaAddr = await curl([`${proxy}/v2/t/x/blobs/sha256:aaaa`]);
    assert.equal(viaAddr.status, 200, viaAddr.stderr);
    assert.equal(sha(viaAddr.body), contentSha256(7, size));
    assert.match(viaAddr.headers['x-dragonfly-task-id'] ?? '', /^[0-9a-f]{64}$/, 'blobs go through P2P');

    const viaHeader = await curl([
      '-H',
      `X-Dragonfly-Registry: ${origin2.url}`,
      `${proxy}/v2/t/x/blobs/sha256:aaaa`,
    ]);
    assert.equal(viaHeader.status, 200);
    assert.equal(sha(viaHeader.body), contentSha256(8, size));

    // ns names the mirror address's host: its scheme (http here) is kept.
    const ns = encodeURIComponent(`127.0.0.1:${origin.port}`);
    const viaNs = await curl([`${proxy}/v2/t/x/blobs/sha256:aaaa?ns=${ns}`]);
    assert.equal(viaNs.status, 200, viaNs.stderr);
    assert.equal(sha(viaNs.body), contentSha256(7, size));
  });

  test('CONNECT is intercepted with a certificate of our CA; requests inside go forward or through P2P', async () => {
    const caCert = join(d.storageDir, 'proxy', 'ca.crt');
    const size = 5 * MiB;
    const url = tlsOrigin.add('/tls/file', { size, seed: 9 });
    const direct = await curl(['--cacert', caCert, '-x', proxy, url]);
    assert.equal(direct.status, 200, direct.stderr);
    assert.equal(sha(direct.body), contentSha256(9, size));
    assert.equal(direct.headers['x-dragonfly-task-id'], undefined);

    const p2p = await curl(['--cacert', caCert, '-x', proxy, '-H', 'X-Dragonfly-Use-P2P: true', url]);
    assert.equal(p2p.status, 200, p2p.stderr);
    assert.equal(sha(p2p.body), contentSha256(9, size));
    assert.match(p2p.headers['x-dragonfly-task-id'] ?? '', /^[0-9a-f]{64}$/);

    // Without our CA the client refuses the intercepted connection.
    const untrusted = await curl(['-x', proxy, url]);
    assert.notEqual(untrusted.code, 0);
    assert.match(untrusted.stderr, /certificate/i);
  });
});

describe('proxy request limits and basic auth', () => {
  const origin = new Origin();
  let d: DaemonHandle;
  let proxy = '';

  before(async () => {
    await origin.start();
    origin.add('/small', { size: 1024, seed: 1 });
    d = await startDaemon({
      extraConfig: `proxy:
  server:
    ip: 127.0.0.1
    port: 0
    requestRateLimit: 5
    basicAuth:
      username: alice
      password: s3cret
`,
    });
    proxy = `http://127.0.0.1:${d.proxyPort}`;
  });

  after(async () => {
    if (d) await stopDaemon(d);
    await origin.stop();
  });

  test('basic auth: right credentials pass, wrong or missing ones get 401, malformed 400', async () => {
    const ok = await curl(['-x', proxy, '--proxy-user', 'alice:s3cret', `${origin.url}/small`]);
    assert.equal(ok.status, 200, ok.stderr);
    assert.equal(sha(ok.body), contentSha256(1, 1024));
    const wrong = await curl(['-x', proxy, '--proxy-user', 'alice:nope', `${origin.url}/small`]);
    assert.equal(wrong.status, 401);
    assert.equal(wrong.headers['x-dragonfly-error-type'], 'proxy');
    const none = await curl(['-x', proxy, `${origin.url}/small`]);
    assert.equal(none.status, 401);
    const malformed = await curl([
      '-x',
      proxy,
      '-H',
      'Proxy-Authorization: Basic !!!',
      `${origin.url}/small`,
    ]);
    assert.equal(malformed.status, 400);
    await new Promise((r) => setTimeout(r, 1100)); // refill the rate limit for the next test
  });

  test('over proxy.server.requestRateLimit the proxy answers 429 at once', async () => {
    const results = await Promise.all(
      Array.from({ length: 15 }, () =>
        curl(['-x', proxy, '--proxy-user', 'alice:s3cret', `${origin.url}/small`]),
      ),
    );
    const statuses = results.map((r) => r.status);
    assert.ok(statuses.filter((s) => s === 200).length >= 1, statuses.join(','));
    const refused = results.filter((r) => r.status === 429);
    assert.ok(refused.length >= 5, `expected refusals over 5 requests/s, got ${statuses.join(',')}`);
    assert.equal(refused[0]!.headers['x-dragonfly-error-type'], 'proxy');
    assert.match(refused[0]!.body.toString(), /requestRateLimit/);
  });
});

describe('proxy and the dynconfig block list', () => {
  const origin = new Origin();
  let d: DaemonHandle;
  let scheduler: SchedulerHandle;
  let proxy = '';

  before(async () => {
    await origin.start();
    scheduler = await startScheduler();
    d = await startDaemon({
      schedulerAddr: scheduler.addr,
      dynconfigExtra: `clientConfig:
  blockList:
    task:
      download:
        urls:
          - '.*/blocked/.*'
        tags:
          - bad-tag
`,
    });
    proxy = `http://127.0.0.1:${d.proxyPort}`;
  });

  after(async () => {
    if (d) await stopDaemon(d);
    if (scheduler) await stopScheduler(scheduler);
    await origin.stop();
  });

  test('a download the block list refuses is a 403 with X-Dragonfly-Error-Type: proxy', async () => {
    const blocked = origin.add('/blocked/x', { size: 1000, seed: 1 });
    const ok = origin.add('/fine/x', { size: 1000, seed: 1 });
    const byUrl = await curl(['-x', proxy, '-H', 'X-Dragonfly-Use-P2P: true', blocked]);
    assert.equal(byUrl.status, 403);
    assert.equal(byUrl.headers['x-dragonfly-error-type'], 'proxy');
    assert.match(byUrl.body.toString(), /blocklist/);
    const byTag = await curl([
      '-x',
      proxy,
      '-H',
      'X-Dragonfly-Use-P2P: true',
      '-H',
      'X-Dragonfly-Tag: bad-tag',
      ok,
    ]);
    assert.equal(byTag.status, 403);
    const fine = await curl(['-x', proxy, '-H', 'X-Dragonfly-Use-P2P: true', ok]);
    assert.equal(fine.status, 200, fine.stderr);
    assert.equal(origin.requests.filter((r) => r.path === '/blocked/x').length, 0, 'the origin never saw it');

    const out = join(d.dir, 'out');
    const g = await dfget(d, blocked, out);
    assert.notEqual(g.code, 0);
    assert.match(g.stderr, /blocklist/);
    const m = await metricsText(d);
    assert.equal(metricValue(m, 'dragonfly_client_download_task_blocked_total'), 3);
  });
});
