// Fuzz of dfdaemon's HTTP proxy as its clients meet it: the proxy of a whole dfdaemon running in this process
// (forwarding, P2P through the daemon, registry mirror, CONNECT interception) in front of a Node origin, fed
// structured requests (methods, targets, versions, X-Dragonfly-* and other headers with hostile values, bodies),
// CONNECT targets, and raw bytes mutated from valid requests, over a socket. Each answer is an HTTP status line
// or a close, within a bound; the proxy never answers its own 500 with a JavaScript failure, logs none, and serves
// valid requests afterwards. A network guard keeps every connection the proxy makes on this test's loopback ports.
// Input counts: test/helpers/fuzz.ts (FUZZ_RUNS, FUZZ_SEED), docs/security.md "Fuzzing".

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { once } from 'node:events';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import {
  Tally,
  fuzzBytes,
  fuzzParameters,
  fuzzRuns,
  fuzzTestTimeout,
  hostileString,
  within,
  withoutStrayErrors,
} from '../helpers/fuzz.js';
import { startInProcessDaemon, type InProcessDaemon } from '../helpers/in-process-daemon.js';
import { confineNetwork, loopbackPorts } from '../helpers/network-guard.js';
import { contentSha256, contentSlice, Origin } from '../helpers/origin.js';
import { JS_FAILURE } from '../helpers/proto-fuzz.js';

/** CI input counts (times FUZZ_RUNS). */
const RUNS_REQUESTS = 1000;
const RUNS_CONNECT = 150;
const RUNS_RAW = 600;

/** An answer (or a close) must come within this. */
const ANSWER_BOUND_MS = 10_000;

const origin = new Origin();
let d: InProcessDaemon;
let restoreNetwork: () => void;
let outDir: string;
const SIZE = 20_000;
/** A registry blob whose URL names its content's digest, and one whose URL names another. */
const BLOB = `/v2/library/x/blobs/sha256:${contentSha256(10, 3000)}`;
const WRONG_BLOB = `/v2/library/x/blobs/sha256:${'a'.repeat(64)}`;

before(async () => {
  await origin.start();
  origin.add('/small', { size: SIZE, seed: 7 });
  origin.add('/empty', { size: 0, seed: 8 });
  origin.add('/failing', { size: 10, seed: 9, status: 500 });
  origin.add(BLOB, { size: 3000, seed: 10 });
  // Bytes that do not hash to the digest in its URL: the proxy must never hand them over whole.
  origin.add(WRONG_BLOB, { size: 3000, seed: 11 });
  d = await startInProcessDaemon({
    // The registry mirror is the origin: origin-form requests never leave the test.
    extraConfig: `proxy:\n  server:\n    ip: 127.0.0.1\n    port: 0\n  registryMirror:\n    addr: ${origin.url}\n`,
  });
  outDir = join(d.dir, 'out');
  mkdirSync(outDir);
  restoreNetwork = confineNetwork(loopbackPorts(() => [origin.port, d.proxyPort, 1]));
});

after(async () => {
  restoreNetwork?.();
  await d?.stop();
  await origin.stop();
});

interface Answer {
  status?: number;
  head: string;
  /** The start of the body. */
  body: string;
  bytes: number;
}

/** Whether `data` holds the whole first answer (by Content-Length, chunked framing, or a body-less status). */
function firstAnswerComplete(data: Buffer, request: Buffer): boolean {
  const at = data.indexOf('\r\n\r\n');
  if (at < 0) return false;
  const head = data.subarray(0, at).toString('latin1');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1]);
  if (request.subarray(0, 5).toString('latin1') === 'HEAD ' || status === 204 || status === 304) return true;
  // A CONNECT's 200 has no body: the tunnel starts.
  if (status === 200 && /^HTTP\/1\.1 200 Connection Established/.test(head)) return true;
  const length = /\r\ncontent-length: *(\d+)/i.exec(head)?.[1];
  if (length !== undefined) return data.length - at - 4 >= Number(length);
  if (/\r\ntransfer-encoding: *chunked/i.test(head)) return data.subarray(at + 4).includes('0\r\n\r\n');
  return false;
}

/**
 * How long the client waits for the answer to start before it half-closes (the request may be incomplete): well-
 * formed requests get longer (a P2P answer starts after the download did), raw bytes less (most are cut short).
 */
const START_WAIT_MS = { requests: 1_000, raw: 300 };
/** How soon a CONNECT tunnel must be closed once its client half-closed before starting TLS. */
const TUNNEL_RELEASE_MS = 3_000;
/** Inputs sent at once (each may wait START_WAIT_MS): the daemon also meets concurrent downloads of one task. */
const BATCH = 20;
/** Once an answer started, this long without a byte ends it (a keep-alive connection stays open). */
const QUIET_MS = 300;

/**
 * Sends `bytes` and collects the answer. Node's HTTP server drops a request whose client half-closes, so the
 * client half-closes only when nothing came back for START_WAIT_MS (an incomplete request is then refused); an
 * answer is complete when the proxy closes or goes quiet.
 */
async function exchange(bytes: Buffer, startWaitMs: number, leaveAtOnce = false): Promise<Answer> {
  const socket = connect(d.proxyPort, '127.0.0.1');
  socket.on('error', () => {});
  try {
    await once(socket, 'connect');
    const parts: Buffer[] = [];
    let closed = false;
    let wake: (() => void) | undefined;
    socket.on('data', (c: Buffer) => {
      parts.push(c);
      wake?.();
    });
    socket.once('close', () => {
      closed = true;
      wake?.();
    });
    const next = (ms: number) =>
      new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), ms);
        wake = () => {
          clearTimeout(timer);
          resolve(true);
        };
      });
    const what = `the proxy's answer to ${JSON.stringify(bytes.toString('latin1').slice(0, 300))}${leaveAtOnce ? ' (half-closed at once)' : ''}`;
    const deadline = Date.now() + ANSWER_BOUND_MS;
    if (leaveAtOnce) {
      // A client that sends its request and leaves: whatever the proxy started for it must end soon.
      socket.end(bytes);
      while (!closed)
        assert.ok(await next(TUNNEL_RELEASE_MS), `${what}: the connection is held after its client left`);
    } else socket.write(bytes);
    if (!(await next(startWaitMs)) && !closed) {
      socket.end();
      assert.ok(await next(ANSWER_BOUND_MS), `${what}: no answer and no close within ${ANSWER_BOUND_MS} ms`);
    }
    while (!closed && !firstAnswerComplete(Buffer.concat(parts), bytes) && (await next(QUIET_MS))) {
      assert.ok(Date.now() < deadline, `${what}: still sending after ${ANSWER_BOUND_MS} ms`);
    }
    if (!closed && /^HTTP\/1\.1 200 Connection Established/.test(Buffer.concat(parts).toString('latin1'))) {
      // A tunnel whose client leaves before TLS must be let go at once, not held until some timeout.
      socket.end();
      while (!closed) {
        assert.ok(await next(TUNNEL_RELEASE_MS), `${what}: the tunnel is held after its client left`);
      }
    }
    const all = Buffer.concat(parts);
    const text = all.toString('latin1');
    const headEnd = text.indexOf('\r\n\r\n');
    const head = headEnd >= 0 ? text.slice(0, headEnd) : text.slice(0, 2000);
    const m = /^HTTP\/1\.[01] (\d{3}) /.exec(text);
    const body = headEnd >= 0 ? text.slice(headEnd + 4, headEnd + 4 + 2000) : '';
    return { status: m ? Number(m[1]) : undefined, head, body, bytes: all.length };
  } finally {
    socket.destroy();
  }
}

/**
 * An answer is a status line (or a close without one); the proxy's own errors carry X-Dragonfly-Error-Type, and
 * none of its 5xx is a JavaScript failure. Nothing in the daemon's log is one either.
 */
function checkAnswer(input: Buffer, a: Answer, logged: number, tally: Tally): void {
  const what = JSON.stringify(input.toString('latin1').slice(0, 400));
  if (a.bytes > 0)
    assert.ok(
      a.status !== undefined,
      `${what}: the answer is not HTTP: ${JSON.stringify(a.head.slice(0, 200))}`,
    );
  const type = /\r\nx-dragonfly-error-type: (\w+)/i.exec(a.head)?.[1];
  tally.add(a.status === undefined ? 'closed' : `${a.status}${type ? ` ${type}` : ''}`);
  if (a.status !== undefined && a.status >= 500 && type === 'proxy') {
    assert.doesNotMatch(a.body, JS_FAILURE, `${what}: the proxy failed with a JavaScript error: ${a.body}`);
  }
  const failures = d.logs
    .slice(logged)
    .map((l) => JSON.stringify(l))
    .filter(
      (l) => /"type":"(TypeError|RangeError|ReferenceError|SyntaxError)"/.test(l) || JS_FAILURE.test(l),
    );
  assert.deepEqual(failures, [], `${what}: the daemon logged JavaScript errors`);
}

const batchOf = <T>(arb: fc.Arbitrary<T>) => fc.array(arb, { minLength: BATCH, maxLength: BATCH });

/** Waits for every check, then fails with the first failure (Promise.all would leave the others running). */
async function all(checks: Array<Promise<void>>): Promise<void> {
  const results = await Promise.allSettled(checks);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

async function checked(bytes: Buffer, startWaitMs: number, tally: Tally, leaveAtOnce = false): Promise<void> {
  const logged = d.logs.length;
  const answer = await exchange(bytes, startWaitMs, leaveAtOnce);
  checkAnswer(bytes, answer, logged, tally);
}

/** A forwarded GET, a P2P GET with a Range, and a mirror GET, answered byte-exact. */
async function assertProxyServes(): Promise<void> {
  const body = async (req: string): Promise<Buffer> => {
    const socket = connect(d.proxyPort, '127.0.0.1');
    const parts: Buffer[] = [];
    socket.on('data', (c: Buffer) => parts.push(c));
    await once(socket, 'connect');
    // Not half-closed: Node's HTTP server drops the request of a client that half-closes.
    socket.write(req);
    await within(once(socket, 'close'), ANSWER_BOUND_MS, req);
    const all = Buffer.concat(parts);
    const at = all.indexOf('\r\n\r\n');
    assert.match(all.subarray(0, at).toString(), /^HTTP\/1\.1 20[06] /, req);
    return all.subarray(at + 4);
  };
  const host = `127.0.0.1:${origin.port}`;
  const fresh = `?fresh=${Math.random()}`;
  assert.ok(
    (await body(`GET http://${host}/small HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`)).equals(
      contentSlice(7, 0, SIZE),
    ),
  );
  assert.ok(
    (
      await body(
        `GET http://${host}/small${fresh} HTTP/1.1\r\nHost: ${host}\r\nX-Dragonfly-Use-P2P: true\r\nRange: bytes=100-199\r\nConnection: close\r\n\r\n`,
      )
    ).equals(contentSlice(7, 100, 200)),
  );
  assert.equal(
    (await body(`GET ${BLOB} HTTP/1.1\r\nHost: registry\r\nConnection: close\r\n\r\n`)).length,
    3000,
  );
}

// ---- structured requests ---------------------------------------------------------------------------------------

const pick = <T>(xs: readonly T[]) => fc.constantFrom(...xs);

/** Request targets: the origin's files by proxy and by P2P rule, the mirror, and malformed ones. */
const targetInput: fc.Arbitrary<string> = fc.constant('').chain(() => {
  const host = `127.0.0.1:${origin.port}`;
  return fc.oneof(
    {
      arbitrary: fc
        .tuple(
          pick(['/small', '/empty', '/failing', '/missing', BLOB, WRONG_BLOB]),
          pick(['', '?a=1', '?a=%00&b=%zz', `?${'q'.repeat(5000)}`, '#frag']),
        )
        .map(([p, q]) => `http://${host}${p}${q}`),
      weight: 6,
    },
    {
      arbitrary: pick([
        BLOB,
        WRONG_BLOB,
        '/v2/library/x/manifests/latest',
        '/v2/',
        '/',
        '*',
        '',
        `127.0.0.1:${origin.port}`,
        `http://localhost:${origin.port}/small`,
        `http://user:pw@${host}/small`,
        `HTTP://${host}/small`,
        `https://${host}/small`,
        'http://127.0.0.1:1/refused',
        'http://[::1]:1/refused',
        'http://name.invalid/x',
        'http:///nohost',
        `http://${host}/${'a'.repeat(70_000)}`,
        `http://${host}/%2e%2e/%2e%2e/etc/passwd`,
        `http://${host}/\u00e9\u0000`,
      ]),
      weight: 3,
    },
    { arbitrary: hostileString(40), weight: 1 },
  );
});

const headerValue = fc.oneof(
  {
    arbitrary: pick(['true', 'false', '1', '0', '-1', '4194304', '99999999999999999999', 'NaN', ' true ']),
    weight: 6,
  },
  { arbitrary: hostileString(40), weight: 1 },
);

/** Headers a client sends (mostly well-formed), the proxy's own with hostile values, and framing confusers. */
const headerInput: fc.Arbitrary<[string, string]> = fc.oneof(
  {
    arbitrary: fc.tuple(
      pick([
        'X-Dragonfly-Use-P2P',
        'X-Dragonfly-Tag',
        'X-Dragonfly-Application',
        'X-Dragonfly-Priority',
        'X-Dragonfly-Piece-Length',
        'X-Dragonfly-Filtered-Query-Params',
        'X-Dragonfly-Prefetch',
        'X-Dragonfly-Force-Hard-Link',
        'X-Dragonfly-Content-For-Calculating-Task-ID',
        'X-Dragonfly-Enable-Task-ID-Based-Blob-Digest',
      ]),
      headerValue,
    ),
    weight: 16,
  },
  {
    arbitrary: fc.tuple(
      fc.constant('X-Dragonfly-Registry'),
      fc
        .constant('')
        .chain(() =>
          pick([
            origin.url,
            'http://127.0.0.1:1',
            `http://127.0.0.1:${d.proxyPort}`,
            'ftp://x',
            'not a url',
            '',
          ]),
        ),
    ),
    weight: 2,
  },
  {
    arbitrary: fc.tuple(
      fc.constant('X-Dragonfly-Output-Path'),
      fc
        .constant('')
        .chain(() =>
          pick([
            join(outDir, 'o'),
            join(outDir, 'missing', 'o'),
            outDir,
            'relative',
            '',
            join(d.storageDir, 'x'),
          ]),
        ),
    ),
    weight: 2,
  },
  {
    arbitrary: fc.tuple(
      fc.constant('Range'),
      pick([
        'bytes=0-99',
        'bytes=-5',
        'bytes=5-',
        'bytes=99999999-',
        'bytes=0-1,3-4',
        'bytes=1-0',
        'items=0-1',
        '',
      ]),
    ),
    weight: 3,
  },
  {
    arbitrary: fc.tuple(
      pick(['If-Range', 'Via', 'Proxy-Authorization', 'Authorization', 'Expect', 'Upgrade']),
      headerValue,
    ),
    weight: 2,
  },
  {
    arbitrary: fc.tuple(pick(['Content-Length', 'Transfer-Encoding', 'Connection', 'Host']), headerValue),
    weight: 1,
  },
  {
    arbitrary: fc.tuple(
      fc.string({ unit: 'binary-ascii', maxLength: 20 }),
      fc.string({ unit: 'binary-ascii', maxLength: 40 }),
    ),
    weight: 1,
  },
);

/** A request as bytes: method, target, version, headers, maybe a body. */
const requestInput: fc.Arbitrary<Buffer> = fc
  .record({
    method: fc.oneof(
      { arbitrary: fc.constant('GET'), weight: 6 },
      { arbitrary: pick(['HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'get', 'G ET', 'CONNECT']), weight: 2 },
      { arbitrary: fc.string({ unit: 'binary-ascii', minLength: 1, maxLength: 8 }), weight: 1 },
    ),
    target: targetInput,
    version: fc.oneof(
      { arbitrary: fc.constant('HTTP/1.1'), weight: 8 },
      { arbitrary: pick(['HTTP/1.0', 'HTTP/2.0', 'HTTP/9.9', 'HTTP/1.1x', '']), weight: 1 },
    ),
    host: fc.oneof({ arbitrary: fc.constant(true), weight: 9 }, { arbitrary: fc.constant(false), weight: 1 }),
    headers: fc.array(headerInput, { maxLength: 4 }),
    body: fc.oneof(fc.constant(''), fc.string({ maxLength: 64 })),
  })
  .map(({ method, target, version, host, headers, body }) => {
    const lines = [`${method} ${target} ${version}`];
    if (host) lines.push(`Host: 127.0.0.1:${origin.port}`);
    for (const [k, v] of headers) lines.push(`${k}: ${v}`);
    if (body) lines.push(`Content-Length: ${Buffer.byteLength(body, 'latin1')}`);
    return Buffer.from(`${lines.join('\r\n')}\r\n\r\n${body}`, 'latin1');
  });

test(
  `fuzz: ${fuzzRuns(RUNS_REQUESTS)} structured requests (X-Dragonfly-* headers, targets, versions) get an HTTP answer`,
  { timeout: fuzzTestTimeout(RUNS_REQUESTS, 200) },
  async (t) => {
    const tally = new Tally();
    await withoutStrayErrors(() =>
      fc.assert(
        fc.asyncProperty(batchOf(requestInput), (batch) =>
          all(batch.map((bytes) => checked(bytes, START_WAIT_MS.requests, tally))),
        ),
        fuzzParameters(Math.ceil(RUNS_REQUESTS / BATCH)),
      ),
    );
    t.diagnostic(`answers: ${tally}`);
    await assertProxyServes();
  },
);

// ---- CONNECT ---------------------------------------------------------------------------------------------------

const connectTarget: fc.Arbitrary<string> = fc.oneof(
  {
    arbitrary: pick([
      'example.com:443',
      'example.com',
      '127.0.0.1:443',
      '[::1]:8443',
      '[::1',
      'example.com:0',
      'example.com:65536',
      'example.com:-1',
      'user:pw@example.com:443',
      'example.com:443/path',
      '*.example.com:443',
      'xn--nxasmq6b.com:443',
      '\u00e9xample.com:443',
      `${'a'.repeat(63)}.${'b'.repeat(63)}.com:443`,
      `${'a'.repeat(300)}:443`,
      '1.2.3.4.5:443',
      '[fe80::1%25eth0]:443',
      ':443',
      '',
    ]),
    weight: 3,
  },
  {
    arbitrary: fc.tuple(fc.domain(), fc.integer({ min: 0, max: 70_000 })).map(([h, p]) => `${h}:${p}`),
    weight: 2,
  },
  { arbitrary: hostileString(40), weight: 1 },
);

test(
  `fuzz: ${fuzzRuns(RUNS_CONNECT)} CONNECT targets get 200 or 4xx, and bytes after a 200 are handled`,
  { timeout: fuzzTestTimeout(RUNS_CONNECT, 500) },
  async (t) => {
    const tally = new Tally();
    await withoutStrayErrors(() =>
      fc.assert(
        fc.asyncProperty(
          batchOf(
            fc.tuple(
              connectTarget,
              fc.oneof(
                fc.constant(Buffer.alloc(0)),
                fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)),
              ),
              fc.boolean(),
            ),
          ),
          (batch) =>
            all(
              batch.map(([target, after, leaveAtOnce]) =>
                checked(
                  Buffer.concat([
                    Buffer.from(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`, 'latin1'),
                    after,
                  ]),
                  START_WAIT_MS.requests,
                  tally,
                  leaveAtOnce,
                ),
              ),
            ),
        ),
        fuzzParameters(Math.ceil(RUNS_CONNECT / BATCH)),
      ),
    );
    t.diagnostic(`answers: ${tally}`);
    await assertProxyServes();
  },
);

// ---- raw bytes -------------------------------------------------------------------------------------------------

function rawSeeds(): Buffer[] {
  const host = `127.0.0.1:${origin.port}`;
  return [
    `GET http://${host}/small HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
    `GET http://${host}/small HTTP/1.1\r\nHost: ${host}\r\nX-Dragonfly-Use-P2P: true\r\nX-Dragonfly-Tag: t\r\nX-Dragonfly-Priority: 3\r\nRange: bytes=0-99\r\n\r\n`,
    `GET ${BLOB} HTTP/1.1\r\nHost: r\r\nX-Dragonfly-Registry: ${origin.url}\r\n\r\n`,
    `CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n`,
    `POST http://${host}/small HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 5\r\n\r\nhello`,
    `PUT http://${host}/small HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`,
    `GET http://${host}/empty HTTP/1.1\r\nHost: ${host}\r\n\r\nGET http://${host}/small HTTP/1.1\r\nHost: ${host}\r\n\r\n`,
  ].map((s) => Buffer.from(s, 'latin1'));
}

test(
  `fuzz: ${fuzzRuns(RUNS_RAW)} raw byte streams (random, and mutations of valid requests) get an HTTP answer or a close`,
  { timeout: fuzzTestTimeout(RUNS_RAW, 200) },
  async (t) => {
    const tally = new Tally();
    await withoutStrayErrors(() =>
      fc.assert(
        fc.asyncProperty(batchOf(fuzzBytes(rawSeeds(), 300)), (batch) =>
          all(batch.map((bytes) => checked(bytes, START_WAIT_MS.raw, tally))),
        ),
        fuzzParameters(Math.ceil(RUNS_RAW / BATCH)),
      ),
    );
    t.diagnostic(`answers: ${tally}`);
    await assertProxyServes();
  },
);
