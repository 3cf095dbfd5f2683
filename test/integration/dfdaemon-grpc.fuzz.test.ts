// Fuzz of dfdaemon's two gRPC servers as their callers meet them: DfdaemonDownload on the unix socket (dfget's) and
// DfdaemonUpload on TCP (other peers' and the scheduler's), in a whole dfdaemon running in this process against a
// Node origin. Every RPC gets schema-shaped, mutated and garbage protobuf bodies through a real grpc-js client;
// DownloadTask gets plausible Downloads with one hostile field (URL, output path, range, timeout, header...). Each
// call ends within a bound with a proper status (never UNKNOWN, never a JavaScript failure, one line), nothing is
// logged as a JavaScript error, the upload port never fetches an address remote callers may not reach, and valid
// requests are served afterwards. Raw bytes (mutations of a real HTTP/2 gRPC request) go to both listeners too.
// Input counts: test/helpers/fuzz.ts (FUZZ_RUNS, FUZZ_SEED), docs/security.md "Fuzzing".

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { isAbsolute, join, resolve } from 'node:path';
import { mkdirSync } from 'node:fs';
import fc from 'fast-check';
import { Download, Priority, TaskType } from '../../src/gen/common.js';
import {
  DownloadTaskRequest,
  DownloadTaskResponse,
  StatTaskRequest,
  SyncPiecesRequest,
  SyncPiecesResponse,
} from '../../src/gen/dfdaemon.js';
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
import { startInProcessDaemon, type InProcessDaemon, type LogLine } from '../helpers/in-process-daemon.js';
import { confineNetwork, loopbackPorts } from '../helpers/network-guard.js';
import { Origin } from '../helpers/origin.js';
import {
  GrpcStatus,
  JS_FAILURE,
  ProtoFuzz,
  RawGrpcClient,
  REQUEST_ERROR_CODES,
  assertProperStatus,
  captureGrpcRequest,
  protoRoot,
  type RawOutcome,
} from '../helpers/proto-fuzz.js';

/** CI input counts (times FUZZ_RUNS), per server. */
const RUNS_RPC = 500;
const RUNS_DOWNLOADS = 250;
const RUNS_RAW = 300;

/** A call must end within this (a hang otherwise); a download of the origin's small files takes milliseconds. */
const CALL_BOUND_MS = 10_000;

/** What a dfdaemon may answer, besides the statuses any server may: digest mismatch, source changed, its timeout. */
const DAEMON_CODES = new Set([
  ...REQUEST_ERROR_CODES,
  GrpcStatus.DATA_LOSS,
  GrpcStatus.ABORTED,
  GrpcStatus.DEADLINE_EXCEEDED,
  GrpcStatus.CANCELLED,
]);
/** dfdaemon's deliberate INTERNAL answers: an origin's error status, and I/O (ERROR_STATUS in core/errors.ts). */
const DAEMON_INTERNAL = /./;

const origin = new Origin();
let d: InProcessDaemon;
let socketClient: RawGrpcClient;
let uploadClient: RawGrpcClient;
/** A task stored before fuzzing, for StatTask and SyncPieces. */
let storedTaskId: string;
let url: { small: string; empty: string; missing: string; failing: string };
let outDir: string;
let restoreNetwork: (() => void) | undefined;
/** A real grpc-js StatTask request as bytes, the seed of the raw-bytes fuzz (captured before the guard is on). */
let capturedRequest: Buffer;

before(async () => {
  await origin.start();
  url = {
    small: origin.add('/small', { size: 10_000, seed: 1 }),
    empty: origin.add('/empty', { size: 0, seed: 2 }),
    missing: `${origin.url}/missing`,
    failing: origin.add('/failing', { size: 100, seed: 3, status: 500 }),
  };
  origin.add('/other', { size: 5_000, seed: 4 });
  d = await startInProcessDaemon({
    // Loopback callers may trigger downloads on the upload port (as a scheduler), of this origin only.
    extraConfig: 'security:\n  trustedSchedulers: [127.0.0.1]\n  allowedPrivateSources: [127.0.0.1]\n',
    // A connection that stalls is cut after 0.4 s instead of upstream's 320 s (grpc/server.ts KEEPALIVE).
    grpcKeepalive: { timeMs: 200, timeoutMs: 200 },
  });
  outDir = join(d.dir, 'out');
  mkdirSync(outDir);
  capturedRequest = await captureGrpcRequest(
    `/${DOWNLOAD_SERVICE}/StatTask`,
    Buffer.from(StatTaskRequest.encode({ taskId: 'a'.repeat(64) }).finish()),
  );
  // Beside the inputs that leavesTheTest skips: no connection of this process leaves the test's own ports.
  restoreNetwork = confineNetwork(loopbackPorts(() => [origin.port, d.uploadPort, d.vortexPort, 1]));
  socketClient = new RawGrpcClient(`unix:${d.socket}`);
  uploadClient = new RawGrpcClient(`127.0.0.1:${d.uploadPort}`);
  storedTaskId = await downloadTaskId(socketClient, url.small);
});

after(async () => {
  restoreNetwork?.();
  socketClient?.close();
  uploadClient?.close();
  await d?.stop();
  await origin.stop();
});

const DOWNLOAD_SERVICE = 'dfdaemon.v2.DfdaemonDownload';
const UPLOAD_SERVICE = 'dfdaemon.v2.DfdaemonUpload';

interface Method {
  name: string;
  path: string;
  requestType: string;
  responseType: string;
  requestStream: boolean;
  responseStream: boolean;
}

function methodsOf(service: string): Method[] {
  return protoRoot()
    .lookupService(service)
    .methodsArray.map((m) => ({
      name: m.name,
      path: `/${service}/${m.name}`,
      requestType: m.resolvedRequestType!.fullName.slice(1),
      responseType: m.resolvedResponseType!.fullName.slice(1),
      requestStream: !!m.requestStream,
      responseStream: !!m.responseStream,
    }));
}

function encodeDownload(download: Partial<Download>): Buffer {
  return Buffer.from(DownloadTaskRequest.encode({ download: Download.fromPartial(download) }).finish());
}

async function downloadTaskId(client: RawGrpcClient, u: string): Promise<string> {
  const o = await client.serverStream(
    `/${DOWNLOAD_SERVICE}/DownloadTask`,
    encodeDownload({ url: u }),
    CALL_BOUND_MS,
  );
  assert.equal(o.code, GrpcStatus.OK, o.details);
  return DownloadTaskResponse.decode(o.messages[0]!).taskId;
}

// ---- hermetic inputs -------------------------------------------------------------------------------------------

/** Where a download may connect: this origin, and ports nobody listens on. */
function allowedAuthority(u: URL): boolean {
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const port = u.port || (u.protocol === 'https:' ? '443' : '80');
  const local = ['127.0.0.1', '127.0.0.2', '127.1.2.3', '0.0.0.0', '::1', 'localhost'].includes(host);
  return local && (port === String(origin.port) || port === '1');
}

/**
 * Whether a body (as the daemon will decode it) would make the daemon connect to another program or write outside
 * this test's directory: a byte mutation can turn the origin's port into another open one, and dfdaemon writes an
 * output path as its caller (root here) may. Such inputs are skipped.
 */
function leavesTheTest(requestType: string, body: Buffer): boolean {
  if (requestType !== 'dfdaemon.v2.DownloadTaskRequest') return false;
  let download: Download | undefined;
  try {
    download = DownloadTaskRequest.decode(body).download;
  } catch {
    return false;
  }
  if (!download) return false;
  let u: URL | undefined;
  try {
    u = new URL(download.url);
  } catch {
    // Not a URL: refused before anything.
  }
  if (u && /^https?:$/i.test(u.protocol) && !allowedAuthority(u)) return true;
  const out = download.outputPath;
  if (out !== undefined && isAbsolute(out) && !resolve(out).startsWith(`${d.dir}/`)) return true;
  return false;
}

// ---- oracles ---------------------------------------------------------------------------------------------------

/** Log lines that are JavaScript failures (a TypeError caught and logged is a bug all the same). */
function jsFailuresIn(lines: LogLine[]): string[] {
  const bad: string[] = [];
  for (const l of lines) {
    const text = JSON.stringify(l);
    if (
      /"type":"(TypeError|RangeError|ReferenceError|SyntaxError)"/.test(text) ||
      JS_FAILURE.test(String(l.err ?? ''))
    ) {
      bad.push(text.slice(0, 600));
    }
  }
  return bad;
}

async function call(client: RawGrpcClient, m: Method, body: Buffer): Promise<RawOutcome> {
  if (m.requestStream) return client.bidi(m.path, [body], CALL_BOUND_MS);
  // SyncHost sends the host every second until the child goes away.
  if (m.responseStream)
    return client.serverStream(m.path, body, CALL_BOUND_MS, m.name === 'SyncHost' ? 1 : Infinity);
  return client.unary(m.path, body, CALL_BOUND_MS);
}

/** One call checked: bounded, a proper status, responses that decode, no JavaScript error in the daemon's log. */
async function checkedCall(
  client: RawGrpcClient,
  m: Method,
  body: Buffer,
  tally: Tally,
): Promise<RawOutcome> {
  const what = `${m.path}(${body.toString('hex').slice(0, 400)})`;
  const logged = d.logs.length;
  const o = await call(client, m, body);
  assert.ok(o.ms < CALL_BOUND_MS - 200, `${what}: no answer within ${CALL_BOUND_MS} ms`);
  assertProperStatus(o, what, { allowed: DAEMON_CODES, internal: DAEMON_INTERNAL });
  const type = protoRoot().lookupType(m.responseType);
  for (const b of o.messages) {
    try {
      type.decode(b);
    } catch (e) {
      throw new Error(`${what}: a response does not decode as ${m.responseType}`, { cause: e });
    }
  }
  const failures = jsFailuresIn(d.logs.slice(logged));
  assert.deepEqual(failures, [], `${what}: the daemon logged JavaScript errors`);
  tally.add(`${m.name} ${GrpcStatus[o.code]}`);
  return o;
}

/** Valid requests on both servers: a new download, StatTask, and SyncPieces of the stored task. */
async function assertDaemonServes(): Promise<void> {
  const fresh = `${url.small}?fresh=${Math.random()}`;
  await downloadTaskId(socketClient, fresh);
  const stat = await socketClient.unary(
    `/${DOWNLOAD_SERVICE}/StatTask`,
    Buffer.from(StatTaskRequest.encode({ taskId: storedTaskId }).finish()),
    CALL_BOUND_MS,
  );
  // The fuzz may have deleted the stored task (DeleteTask with its id): then it is NOT_FOUND, properly.
  assert.ok([GrpcStatus.OK, GrpcStatus.NOT_FOUND].includes(stat.code), stat.details);
  if (stat.code === GrpcStatus.NOT_FOUND) storedTaskId = await downloadTaskId(socketClient, url.small);
  const sync = await uploadClient.serverStream(
    `/${UPLOAD_SERVICE}/SyncPieces`,
    Buffer.from(
      SyncPiecesRequest.encode({ hostId: 'h', taskId: storedTaskId, interestedPieceNumbers: [0] }).finish(),
    ),
    CALL_BOUND_MS,
  );
  assert.equal(sync.code, GrpcStatus.OK, sync.details);
  assert.deepEqual(
    sync.messages.map((m) => SyncPiecesResponse.decode(m).number),
    [0],
  );
}

// ---- inputs ----------------------------------------------------------------------------------------------------

function strings(field: string): fc.Arbitrary<string> | undefined {
  const pool = (xs: fc.Arbitrary<string>) =>
    fc.oneof({ arbitrary: xs, weight: 4 }, { arbitrary: hostileString(64), weight: 1 });
  if (field === 'task_id') return pool(fc.constant('').map(() => storedTaskId));
  if (field === 'url') return pool(fc.constant('').chain(() => fc.constantFrom(...Object.values(url))));
  if (field === 'output_path') return pool(fc.constant('').map(() => join(outDir, 'f')));
  return undefined;
}

const fuzz = new ProtoFuzz({ strings });

/** URLs: this origin's files, refused ports, unsupported schemes, and malformed ones. */
const urlInput = fc.oneof(
  {
    arbitrary: fc.constant('').chain(() => fc.constantFrom(url.small, url.empty, url.missing, url.failing)),
    weight: 4,
  },
  {
    arbitrary: fc
      .constant('')
      .chain(() =>
        fc.constantFrom(
          `${url.small}?a=1&b=%00&c=${'x'.repeat(3000)}`,
          `${url.small}#frag`,
          url.small.replace('127.0.0.1', 'localhost'),
          url.small.replace('http://', 'http://user:pass@'),
          url.small.replace('http://', 'HTTP://'),
          'http://127.0.0.1:1/refused',
          'http://[::1]:1/refused',
          'http://127.0.0.2:1/private',
          's3://bucket/key',
          'hdfs://namenode:1/x',
          'file:///etc/passwd',
          'ftp://127.0.0.1:1/x',
          'http://',
          'http:///path',
          `http://127.0.0.1:1/${'a'.repeat(70_000)}`,
          'not a url',
        ),
      ),
    weight: 3,
  },
  { arbitrary: hostileString(64), weight: 1 },
);

/** Output paths: inside this test's directory (new, existing, a directory, missing parents), relative, malformed. */
const outputPathInput = fc.oneof(
  fc.constant(undefined),
  fc
    .constant('')
    .chain(() =>
      fc.constantFrom(
        join(outDir, 'new'),
        join(outDir, 'new'),
        outDir,
        join(outDir, 'missing', 'dir', 'f'),
        join(outDir, '..', 'out', 'dots'),
        join(d.storageDir, 'content', 'x'),
        join(d.storageDir, 'metadata'),
        `${outDir}/${'n'.repeat(300)}`,
        `${outDir}/${'d/'.repeat(2100)}f`,
        `${outDir}/a\0b`,
        'relative/path',
        '',
      ),
    ),
);

/** Values for each Download field that a valid request would not carry (and some it might). */
const HOSTILE_FIELDS: Record<string, fc.Arbitrary<unknown>> = {
  url: urlInput,
  digest: fc.constantFrom('crc32:00000000', 'sha256:' + '0'.repeat(64), 'md5:zz', 'sha256:', ':', 'crc32:'),
  range: fc.record({
    start: fc.constantFrom(0, 1, 9_999, 10_000, 10_001, 2 ** 40),
    length: fc.constantFrom(0, 1, 10_000, 2 ** 40),
  }),
  type: fc.constantFrom(TaskType.PERSISTENT, TaskType.PERSISTENT_CACHE, 7 as TaskType),
  tag: hostileString(32),
  application: hostileString(32),
  priority: fc.constantFrom(Priority.LEVEL0, Priority.LEVEL1, Priority.LEVEL6, 9 as Priority),
  filteredQueryParams: fc.array(hostileString(16), { minLength: 1, maxLength: 3 }),
  requestHeader: fc.dictionary(
    fc.oneof(
      fc.constantFrom('x-a', 'Range', 'Host', 'Content-Length', 'bad header', 'a\r\nb', ''),
      fc.string(),
    ),
    fc.oneof(fc.constantFrom('v', 'bytes=0-1', 'a\r\nX-Injected: 1', '\0', 'x'.repeat(9000)), fc.string()),
    { minKeys: 1, maxKeys: 3 },
  ),
  pieceLength: fc.constantFrom(0, 1, 4 * 1024 * 1024 - 1, 64 * 1024 * 1024 + 1, 2 ** 40),
  outputPath: outputPathInput,
  timeout: fc.record({
    seconds: fc.constantFrom(0, 1, 2 ** 31, 2 ** 40),
    nanos: fc.constantFrom(0, 1, 999_999_999, 1_000_000_000),
  }),
  contentForCalculatingTaskId: fc.oneof(hostileString(32), fc.constantFrom('label', 'xSTANDARD', 'CACHE')),
  remoteIp: fc.constantFrom('127.0.0.1', 'not-an-ip', '', '::1'),
  concurrentPieceCount: fc.constantFrom(0, 1, 2 ** 32 - 1),
  certificateChain: fc.array(fc.uint8Array({ maxLength: 64 }), { minLength: 1, maxLength: 2 }),
  actualContentLength: fc.constantFrom(0, 1, 2 ** 53),
};

/** Loopback addresses a remote caller may not make this daemon fetch from (only 127.0.0.1 is allowed here). */
const PRIVATE_URLS = [
  'http://127.0.0.2:1/x',
  'http://[::1]:1/x',
  'http://0.0.0.0:1/x',
  'http://127.1.2.3:1/x',
];

/**
 * A Download as dfget or a scheduler sends it (one of the origin's files, or with `privateUrls` sometimes an
 * address remote callers may not reach; benign options) with up to two fields replaced by hostile values: requests
 * get past the first check, so each field's own handling is reached.
 */
function plausibleDownload(privateUrls: boolean): fc.Arbitrary<Partial<Download>> {
  const originUrl = fc
    .constant('')
    .chain(() =>
      fc
        .constantFrom(url.small, url.empty, `${origin.url}/other`)
        .chain((u) =>
          fc.option(fc.nat({ max: 5 }), { nil: undefined }).map((q) => (q === undefined ? u : `${u}?q=${q}`)),
        ),
    );
  return fc
    .tuple(
      fc.record({
        url: privateUrls
          ? fc.oneof(
              { arbitrary: originUrl, weight: 4 },
              { arbitrary: fc.constantFrom(...PRIVATE_URLS), weight: 1 },
            )
          : originUrl,
        needPieceContent: fc.boolean(),
        disableBackToSource: fc.boolean(),
        forceHardLink: fc.boolean(),
        overwrite: fc.boolean(),
        prefetch: fc.boolean(),
        metadataOnly: fc.boolean(),
      }),
      fc.subarray(Object.keys(HOSTILE_FIELDS), { maxLength: 2 }),
    )
    .chain(([base, keys]) =>
      fc
        .record(Object.fromEntries(keys.map((k) => [k, HOSTILE_FIELDS[k]!])))
        .map((hostile) => ({ ...base, ...hostile }) as Partial<Download>),
    );
}

// ---- the targets -----------------------------------------------------------------------------------------------

for (const [server, service, clientOf] of [
  ['download socket', DOWNLOAD_SERVICE, () => socketClient],
  ['upload port', UPLOAD_SERVICE, () => uploadClient],
] as const) {
  describe(`fuzz: dfdaemon ${server} (${service})`, () => {
    test(
      `${fuzzRuns(RUNS_RPC)} calls of every RPC with schema-shaped, mutated and garbage bodies`,
      { timeout: fuzzTestTimeout(RUNS_RPC, 200) },
      async (t) => {
        const methods = methodsOf(service);
        // The implemented RPCs most; the unimplemented ones together about a tenth.
        const implemented =
          /^(DownloadTask|StatTask|DeleteTask|ListTaskEntries|StatLocalTask|ListLocalTasks|DeleteLocalTask|SyncPieces|SyncHost)$/;
        const input = fc.oneof(
          ...methods.map((m) => ({
            arbitrary: fuzz.request(m.requestType).map((body) => ({ m, body })),
            weight: implemented.test(m.name) ? 10 : 1,
          })),
        );
        const tally = new Tally();
        let calls = 0;
        await withoutStrayErrors(() =>
          fc.assert(
            fc.asyncProperty(input, async ({ m, body }) => {
              fc.pre(!leavesTheTest(m.requestType, body));
              await checkedCall(clientOf(), m, body, tally);
              if (++calls % 150 === 0) await assertDaemonServes();
            }),
            fuzzParameters(RUNS_RPC),
          ),
        );
        t.diagnostic(`statuses: ${tally}`);
        await assertDaemonServes();
      },
    );

    test(
      `${fuzzRuns(RUNS_DOWNLOADS)} DownloadTask calls with plausible Downloads, some fields hostile`,
      { timeout: fuzzTestTimeout(RUNS_DOWNLOADS, 300) },
      async (t) => {
        const m = methodsOf(service).find((x) => x.name === 'DownloadTask')!;
        const tally = new Tally();
        await withoutStrayErrors(() =>
          fc.assert(
            fc.asyncProperty(plausibleDownload(service === UPLOAD_SERVICE), async (download) => {
              const body = encodeDownload(download);
              fc.pre(!leavesTheTest(m.requestType, body));
              const o = await checkedCall(clientOf(), m, body, tally);
              if (
                service === UPLOAD_SERVICE &&
                /^https?:\/\/(127\.0\.0\.2|\[::1\])[:/]/i.test(download.url ?? '')
              ) {
                // A remote caller may reach only the origins allowed (security.allowedPrivateSources: 127.0.0.1),
                // and the URL is checked before anything else.
                assert.ok(
                  [GrpcStatus.PERMISSION_DENIED, GrpcStatus.INVALID_ARGUMENT].includes(o.code),
                  `upload DownloadTask of ${download.url}: ${GrpcStatus[o.code]} ${o.details}`,
                );
                tally.add(`private URL ${GrpcStatus[o.code]}`);
              }
            }),
            fuzzParameters(RUNS_DOWNLOADS),
          ),
        );
        t.diagnostic(`statuses: ${tally}`);
        await assertDaemonServes();
      },
    );
  });
}

// ---- raw bytes -------------------------------------------------------------------------------------------------

/** Sends raw bytes (half-closing, or leaving the connection open); the server must close it (keepalive at worst). */
async function rawExchange(
  connectTo: () => Socket,
  bytes: Buffer,
  leaveOpen: boolean,
  tally: Tally,
): Promise<void> {
  const socket = connectTo();
  socket.on('error', () => {});
  try {
    await once(socket, 'connect');
    let answered = false;
    socket.on('data', () => (answered = true));
    const closed = once(socket, 'close');
    if (leaveOpen) socket.write(bytes);
    else socket.end(bytes);
    await within(closed, 5_000, `the server's close after ${bytes.toString('hex').slice(0, 300)}`);
    tally.add(answered ? 'answered, closed' : 'closed');
  } finally {
    socket.destroy();
  }
}

/** Inputs sent at once: a stalled connection waits for the keepalive, so they overlap. */
const RAW_BATCH = 25;

test(
  `fuzz: ${fuzzRuns(RUNS_RAW)} raw byte streams (random, and mutations of a real gRPC request) to each listener`,
  { timeout: fuzzTestTimeout(2 * RUNS_RAW, 100) },
  async (t) => {
    const seeds = [capturedRequest];
    const batch = fc.array(fc.tuple(fuzzBytes(seeds, 400), fc.boolean()), {
      minLength: RAW_BATCH,
      maxLength: RAW_BATCH,
    });
    for (const [name, connectTo] of [
      ['socket', () => connect(d.socket)],
      ['upload', () => connect(d.uploadPort, '127.0.0.1')],
    ] as const) {
      const tally = new Tally();
      await withoutStrayErrors(() =>
        fc.assert(
          fc.asyncProperty(batch, async (inputs) => {
            await Promise.all(
              inputs.map(([bytes, leaveOpen]) => rawExchange(connectTo, bytes, leaveOpen, tally)),
            );
          }),
          fuzzParameters(Math.ceil(RUNS_RAW / RAW_BATCH)),
        ),
      );
      t.diagnostic(`${name}: ${tally}`);
    }
    await assertDaemonServes();
  },
);
