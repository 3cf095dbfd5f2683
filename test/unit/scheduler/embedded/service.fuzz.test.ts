// Fuzz of the embedded scheduler's scheduler.v2.Scheduler service through a real grpc-js client: every unary RPC
// (AnnounceHost most) with schema-shaped, mutated and garbage bodies, and AnnouncePeer streams of random and
// plausible request sequences (ids from small pools, so peers register, start, report pieces and finish). Each
// call ends within a bound with a proper status (never UNKNOWN, no INTERNAL but grpc-js's and the scheduler's
// deliberate ones, never a JavaScript failure, one line); every response decodes; an announced host the scheduler
// accepts is one a peer can reach; and a valid peer is still scheduled afterwards.
// Input counts: test/helpers/fuzz.ts (FUZZ_RUNS, FUZZ_SEED), docs/security.md "Fuzzing".

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, isIP, type AddressInfo, type Server } from 'node:net';
import fc from 'fast-check';
import { pino } from 'pino';
import { Host, Priority } from '../../../../src/gen/common.js';
import {
  AnnounceHostRequest,
  AnnouncePeerRequest,
  AnnouncePeerResponse,
  DeleteHostRequest,
} from '../../../../src/gen/scheduler.js';
import { EmbeddedScheduler } from '../../../../src/scheduler/embedded/scheduler-server.js';
import { confineNetwork, loopbackPorts } from '../../../helpers/network-guard.js';
import {
  Tally,
  fuzzParameters,
  fuzzRuns,
  fuzzTestTimeout,
  hostileString,
  withoutStrayErrors,
} from '../../../helpers/fuzz.js';
import {
  GrpcStatus,
  ProtoFuzz,
  RawGrpcClient,
  assertProperStatus,
  protoRoot,
  varintValue,
} from '../../../helpers/proto-fuzz.js';

/** CI input counts (times FUZZ_RUNS). */
const RUNS_UNARY = 1200;
const RUNS_STREAMS = 400;
const RUNS_PARALLEL_STREAMS = 40;

/** A call must end within this (a hang otherwise). */
const CALL_BOUND_MS = 5_000;

const SERVICE = 'scheduler.v2.Scheduler';

/**
 * The scheduler's deliberate INTERNAL answers, as Go's service_v2.go gives them: a peer or task state transition
 * the request does not allow, and a peer's back-to-source failure.
 */
const SCHEDULER_INTERNAL =
  /inappropriate in current state|, not Running$|download piece back-to-source failed$/;

let scheduler: EmbeddedScheduler;
let client: RawGrpcClient;
/** Where fuzzed hosts point: accepts and closes, so seed triggers fail at once without leaving this test. */
let sink: Server;
let sinkPort: number;
let restoreNetwork: (() => void) | undefined;

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const HOST_IDS = ['fuzz-host-a', 'fuzz-host-b', 'fuzz-seed'];
const PEER_IDS = ['peer-1', 'peer-2', 'peer-3', 'fuzz-seed-peer'];
const TASK_IDS = [sha('fuzz-task-1'), sha('fuzz-task-2')];

before(async () => {
  sink = createServer((s) => s.destroy());
  await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
  sinkPort = (sink.address() as AddressInfo).port;
  scheduler = new EmbeddedScheduler({
    ip: '127.0.0.1',
    port: 0,
    log: pino({ level: 'silent' }),
    // Short scheduling rounds: a registered peer is answered in milliseconds.
    options: { retryLimit: 2, retryBackToSourceLimit: 1, retryIntervalMs: 5, registerBackoffBaseMs: 0 },
  });
  const port = await scheduler.start();
  // Seed triggers and host probes reach only the sink (pointsElsewhere skips the rest; this is the backstop).
  restoreNetwork = confineNetwork(loopbackPorts(() => [port, sinkPort, 1]));
  client = new RawGrpcClient(`127.0.0.1:${port}`);
  await announcePoolHosts();
});

/** The pool's hosts as a normal host and a seed (the unary fuzz may have deleted or changed them). */
async function announcePoolHosts(): Promise<void> {
  for (const id of ['fuzz-host-a', 'fuzz-seed']) {
    await client.unary(
      `/${SERVICE}/DeleteHost`,
      Buffer.from(DeleteHostRequest.encode({ hostId: id }).finish()),
      CALL_BOUND_MS,
    );
  }
  await announce({ id: 'fuzz-host-a' });
  await announce({ id: 'fuzz-seed', type: 1 });
}

after(async () => {
  restoreNetwork?.();
  client.close();
  await scheduler.stop();
  await new Promise<void>((r) => sink.close(() => r()));
});

function announce(host: Partial<Host> & { id: string }) {
  const body = AnnounceHostRequest.encode({
    host: Host.fromPartial({
      hostname: host.id,
      ip: '127.0.0.1',
      port: sinkPort,
      downloadPort: sinkPort,
      ...host,
    }),
    interval: { seconds: 300, nanos: 0 },
  }).finish();
  return client.unary(`/${SERVICE}/AnnounceHost`, Buffer.from(body), CALL_BOUND_MS).then((o) => {
    assert.equal(o.code, GrpcStatus.OK, o.details);
  });
}

/** Strings by field name: ids from the pools above, so requests meet hosts, peers and tasks that exist. */
function strings(field: string, message: string): fc.Arbitrary<string> | undefined {
  const pool = (xs: string[]) =>
    fc.oneof({ arbitrary: fc.constantFrom(...xs), weight: 4 }, { arbitrary: hostileString(64), weight: 1 });
  if (field === 'host_id' || (message === 'common.v2.Host' && field === 'id')) return pool(HOST_IDS);
  if (field === 'peer_id' || field === 'parent_id' || (message === 'common.v2.Peer' && field === 'id'))
    return pool(PEER_IDS);
  if (field === 'task_id' || (message === 'common.v2.Task' && field === 'id')) return pool(TASK_IDS);
  if (field === 'ip' || field === 'remote_ip') {
    return pool([
      '127.0.0.1',
      '::1',
      '0.0.0.0',
      '127.0.0.1:22',
      '[::1]',
      '1.2.3.4.5',
      '::ffff:127.0.0.1',
      'localhost',
    ]);
  }
  if (field === 'url')
    return pool(['http://127.0.0.1:1/f', 'https://[::1]:1/x?y=1', 'file:///etc/passwd', 'x:', 'http://']);
  if (field === 'digest')
    return pool(['crc32:1a2b3c4d', `sha256:${sha('d')}`, 'md5:zz', 'sha256:', 'crc32:']);
  if (field === 'hostname' || field === 'name') return pool(['h', 'fuzz.local']);
  return undefined;
}

/** Integers by field name: the ports of announced hosts and the host type take values that pass, mostly. */
function integers(field: string): fc.Arbitrary<bigint> | undefined {
  const pool = (xs: bigint[]) =>
    fc.oneof({ arbitrary: fc.constantFrom(...xs), weight: 4 }, { arbitrary: varintValue, weight: 1 });
  // Never another open port: the scheduler connects to seeds (and probes known hosts) at their ports.
  if (field === 'port' || field === 'download_port') {
    return fc.oneof(
      { arbitrary: fc.constant(0).map(() => BigInt(sinkPort)), weight: 4 },
      {
        arbitrary: fc.constantFrom(0n, -1n, 65536n, 2n ** 31n - 1n, 2n ** 32n - 1n, 2n ** 64n - 1n),
        weight: 1,
      },
    );
  }
  if (field === 'type') return pool([0n, 1n, 2n, 3n]);
  return undefined;
}

const fuzz = new ProtoFuzz({ strings, integers });

interface Method {
  name: string;
  path: string;
  requestType: string;
  responseType: string;
  streaming: boolean;
}

const methods: Method[] = protoRoot()
  .lookupService(SERVICE)
  .methodsArray.map((m) => ({
    name: m.name,
    path: `/${SERVICE}/${m.name}`,
    requestType: m.resolvedRequestType!.fullName.slice(1),
    responseType: m.resolvedResponseType!.fullName.slice(1),
    streaming: !!m.requestStream || !!m.responseStream,
  }));

/** Decodes a response with the schema: the server must only send what its clients can read. */
function assertDecodes(m: { responseType: string }, bodies: Buffer[], what: string): void {
  const type = protoRoot().lookupType(m.responseType);
  for (const b of bodies) {
    try {
      type.decode(b);
    } catch (e) {
      throw new Error(`${what}: response does not decode as ${m.responseType}: ${(e as Error).message}`, {
        cause: e,
      });
    }
  }
}

/**
 * Whether an AnnounceHost body (as the scheduler will decode it) names a port that is open on this machine and not
 * the sink: a byte mutation or a wire-type slip can make one, and the scheduler would connect there (seed triggers,
 * host probes). Such inputs are skipped: a fuzz run must not reach other programs.
 */
function pointsElsewhere(body: Buffer): boolean {
  let host: Host | undefined;
  try {
    host = AnnounceHostRequest.decode(body).host;
  } catch {
    return false;
  }
  if (!host) return false;
  return [host.port, host.downloadPort].some((p) => p >= 1 && p <= 65535 && p !== sinkPort);
}

/** An accepted host is one the scheduler can hand out: an IP address and a TCP port (seed triggers, parents). */
function assertReachableHost(body: Buffer, what: string): void {
  const host = AnnounceHostRequest.decode(body).host!;
  assert.ok(isIP(host.ip) !== 0, `${what}: accepted Host.ip ${JSON.stringify(host.ip)}, not an IP address`);
  assert.ok(host.port > 0 && host.port < 65536, `${what}: accepted Host.port ${host.port}`);
}

/** A valid peer registers on a valid host and gets its scheduling answer. */
async function assertSchedulerServes(): Promise<void> {
  await announce({ id: 'valid-host' });
  const taskId = sha(`valid-${Math.random()}`);
  const register = AnnouncePeerRequest.encode(
    AnnouncePeerRequest.fromPartial({
      hostId: 'valid-host',
      taskId,
      peerId: `valid-peer-${taskId.slice(0, 8)}`,
      registerPeerRequest: {
        // A real peer sends what its own source stat found (without it the task counts as empty).
        download: {
          url: 'http://127.0.0.1:1/valid',
          priority: Priority.LEVEL3,
          needBackToSource: true,
          actualContentLength: 10 * 1024 * 1024,
          actualPieceLength: 4 * 1024 * 1024,
          actualPieceCount: 3,
        },
      },
    }),
  ).finish();
  const o = await client.bidi(`/${SERVICE}/AnnouncePeer`, [Buffer.from(register)], CALL_BOUND_MS);
  assert.equal(o.code, GrpcStatus.OK, o.details);
  const replies = o.messages.map((m) => AnnouncePeerResponse.decode(m));
  assert.ok(
    replies.some((r) => r.needBackToSourceResponse),
    JSON.stringify(replies),
  );
}

test(
  `fuzz: ${fuzzRuns(RUNS_UNARY)} unary calls (AnnounceHost most) answer with a proper status`,
  { timeout: fuzzTestTimeout(RUNS_UNARY, 100) },
  async (t) => {
    const tally = new Tally();
    const unary = methods.filter((m) => !m.streaming);
    // The RPCs the embedded scheduler implements most; the 25 that answer UNIMPLEMENTED together a tenth.
    const weight = (m: Method) =>
      m.name === 'AnnounceHost'
        ? 40
        : /Host|Peer|Task$/.test(m.name) && !/Persistent|Cache/.test(m.name)
          ? 12
          : 1;
    const input = fc.oneof(
      ...unary.map((m) => ({
        arbitrary: fuzz.request(m.requestType).map((body) => ({ m, body })),
        weight: weight(m),
      })),
      { arbitrary: plausibleAnnounceHost.map((body) => ({ m: announceHostMethod, body })), weight: 40 },
    );
    let calls = 0;
    await withoutStrayErrors(() =>
      fc.assert(
        fc.asyncProperty(input, async ({ m, body }) => {
          if (m.name === 'AnnounceHost') fc.pre(!pointsElsewhere(body));
          const what = `${m.name}(${body.toString('hex').slice(0, 400)})`;
          const o = await client.unary(m.path, body, CALL_BOUND_MS);
          assert.ok(o.ms < CALL_BOUND_MS - 100, `${what}: no answer within ${CALL_BOUND_MS} ms`);
          assertProperStatus(o, what, { internal: SCHEDULER_INTERNAL });
          tally.add(m.name === 'AnnounceHost' ? `AnnounceHost ${GrpcStatus[o.code]}` : GrpcStatus[o.code]!);
          if (o.code !== GrpcStatus.OK) return;
          assertDecodes(m, o.messages, what);
          if (m.name === 'AnnounceHost') assertReachableHost(body, what);
          if (++calls % 200 === 0) await assertSchedulerServes();
        }),
        fuzzParameters(RUNS_UNARY),
      ),
    );
    t.diagnostic(`statuses: ${tally}`);
    await assertSchedulerServes();
  },
);

const announceHostMethod = methods.find((m) => m.name === 'AnnounceHost')!;

/** A host as a daemon announces it, with one field, at most, replaced by an edge value. */
const plausibleAnnounceHost: fc.Arbitrary<Buffer> = fc
  .record({
    id: fc.constantFrom(...HOST_IDS, 'fuzz-host-c', 'fuzz-host-d'),
    type: fc.constantFrom(0, 1),
    hostname: fc.constantFrom('h', 'fuzz.local'),
    ip: fc.constantFrom('127.0.0.1', '::1'),
    port: fc.constant(0).map(() => sinkPort),
    downloadPort: fc.constant(0).map(() => sinkPort),
    os: fc.constantFrom('linux', ''),
    network: fc.option(
      fc.record({ idc: fc.constantFrom('', 'idc-1'), location: fc.constantFrom('', 'cn|hz') }),
      {
        nil: undefined,
      },
    ),
  })
  .chain((host) =>
    fc.oneof(
      { arbitrary: fc.constant(host), weight: 2 },
      {
        arbitrary: fc
          .oneof(
            fc.record({ key: fc.constantFrom('id', 'hostname', 'ip', 'os'), value: hostileString(64) }),
            fc.record({ key: fc.constant('type'), value: fc.constantFrom(2, 3, 4, 255, 2 ** 32 - 1) }),
            fc.record({
              key: fc.constantFrom('port', 'downloadPort'),
              value: fc.constantFrom(-1, 0, 65536, 2 ** 31 - 1, -(2 ** 31)),
            }),
          )
          .map(({ key, value }) => ({ ...host, [key]: value })),
        weight: 3,
      },
    ),
  )
  .map((host) => {
    const body = AnnounceHostRequest.encode({
      host: Host.fromPartial(host as Parameters<typeof Host.fromPartial>[0]),
      interval: { seconds: 300, nanos: 0 },
    }).finish();
    return Buffer.from(body);
  });

// ---- AnnouncePeer streams --------------------------------------------------------------------------------------

const pick = <T>(xs: readonly T[]) => fc.constantFrom(...xs);

/** A piece as peers report it, with numbers near the real ones and edge values. */
const piece = fc.record({
  number: fc.oneof(fc.nat({ max: 5 }), fc.constant(2 ** 32 - 1)),
  parentId: fc.option(pick(PEER_IDS), { nil: undefined }),
  offset: fc.nat({ max: 2 ** 40 }),
  length: fc.nat({ max: 2 ** 30 }),
  digest: pick(['crc32:1a2b3c4d', '', 'md5:zz']),
  trafficType: fc.option(fc.nat({ max: 3 }), { nil: undefined }),
  cost: fc.option(fc.record({ seconds: fc.nat({ max: 10 ** 9 }), nanos: fc.nat({ max: 999_999_999 }) }), {
    nil: undefined,
  }),
  createdAt: fc.option(fc.date({ noInvalidDate: true, min: new Date(0), max: new Date(2 ** 41) }), {
    nil: undefined,
  }),
});

const download = fc.record({
  url: fc.oneof(
    { arbitrary: pick(['http://127.0.0.1:1/f', 'https://127.0.0.1:1/g?x=1']), weight: 6 },
    { arbitrary: pick(['', 'not a url', '/relative']), weight: 1 },
  ),
  digest: fc.option(pick(['crc32:1a2b3c4d', 'md5:zz']), { nil: undefined, freq: 4 }),
  priority: fc.integer({ min: 0, max: 7 }),
  type: fc.integer({ min: 0, max: 4 }),
  needBackToSource: fc.boolean(),
  metadataOnly: fc.boolean(),
  range: fc.option(fc.record({ start: fc.nat({ max: 100 }), length: fc.nat({ max: 100 }) }), {
    nil: undefined,
  }),
  actualContentLength: fc.option(fc.oneof(fc.constant(0), fc.nat({ max: 2 ** 40 })), { nil: undefined }),
  actualPieceLength: fc.option(fc.constantFrom(0, 1, 4 * 1024 * 1024), { nil: undefined }),
  actualPieceCount: fc.option(fc.nat({ max: 10 }), { nil: undefined }),
  concurrentPieceCount: fc.option(fc.nat({ max: 2 ** 32 - 1 }), { nil: undefined }),
});

/** One request of a peer's life, in a form the generated encoder takes. */
const plausibleRequest: fc.Arbitrary<Record<string, unknown>> = fc.oneof(
  download.map((d) => ({ registerPeerRequest: { download: d } })),
  fc.constant({ downloadPeerStartedRequest: {} }),
  fc.constant({ downloadPeerBackToSourceStartedRequest: {} }),
  fc.array(pick(PEER_IDS), { maxLength: 3 }).map((ids) => ({
    reschedulePeerRequest: { candidateParents: ids.map((id) => ({ id })), description: 'x' },
  })),
  fc
    .record({ contentLength: fc.nat(), pieceCount: fc.nat({ max: 10 }) })
    .map((r) => ({ downloadPeerFinishedRequest: r })),
  fc
    .record({ contentLength: fc.nat(), pieceCount: fc.nat({ max: 10 }) })
    .map((r) => ({ downloadPeerBackToSourceFinishedRequest: r })),
  fc.constant({ downloadPeerFailedRequest: { description: 'x' } }),
  fc.constant({ downloadPeerBackToSourceFailedRequest: { description: 'x' } }),
  piece.map((p) => ({ downloadPieceFinishedRequest: { piece: p } })),
  piece.map((p) => ({ downloadPieceBackToSourceFinishedRequest: { piece: p } })),
  fc
    .record({ pieceNumber: fc.nat({ max: 5 }), parentId: pick(['', ...PEER_IDS]), temporary: fc.boolean() })
    .map((r) => ({ downloadPieceFailedRequest: r })),
  fc.nat({ max: 5 }).map((n) => ({ downloadPieceBackToSourceFailedRequest: { pieceNumber: n } })),
);

const ids = fc.record({ hostId: pick(HOST_IDS), taskId: pick(TASK_IDS), peerId: pick(PEER_IDS) });

function encodeAll(who: Record<string, string>, reqs: Array<Record<string, unknown>>): Buffer[] {
  return reqs.map((r) => {
    const msg = AnnouncePeerRequest.fromPartial({ ...who, ...r } as Parameters<
      typeof AnnouncePeerRequest.fromPartial
    >[0]);
    return Buffer.from(AnnouncePeerRequest.encode(msg).finish());
  });
}

/**
 * A stream's requests: one peer's plausible life starting with its register, requests of a peer not registered on
 * this stream, or schema-shaped and garbage messages.
 */
const streamBodies: fc.Arbitrary<Buffer[]> = fc.oneof(
  {
    arbitrary: fc
      .tuple(ids, download, fc.array(plausibleRequest, { maxLength: 6 }))
      .map(([who, d, rest]) => encodeAll(who, [{ registerPeerRequest: { download: d } }, ...rest])),
    weight: 3,
  },
  {
    arbitrary: fc
      .tuple(ids, fc.array(plausibleRequest, { minLength: 1, maxLength: 6 }))
      .map(([who, reqs]) => encodeAll(who, reqs)),
    weight: 1,
  },
  {
    arbitrary: fc.array(fuzz.request('scheduler.v2.AnnouncePeerRequest'), { minLength: 1, maxLength: 5 }),
    weight: 2,
  },
);

const announcePeer = methods.find((m) => m.name === 'AnnouncePeer')!;

async function oneStream(bodies: Buffer[], leaveOpen: boolean, tally: Tally): Promise<void> {
  const what = `AnnouncePeer(${bodies.map((b) => b.toString('hex').slice(0, 200)).join(', ')})${leaveOpen ? ' left open' : ''}`;
  const o = await client.bidi(announcePeer.path, bodies, CALL_BOUND_MS, leaveOpen);
  assert.ok(o.ms < CALL_BOUND_MS - 100, `${what}: not ended within ${CALL_BOUND_MS} ms; ${schedulerState()}`);
  assertProperStatus(o, what, { internal: SCHEDULER_INTERNAL });
  assertDecodes(announcePeer, o.messages, what);
  tally.add(GrpcStatus[o.code]!);
  for (const m of o.messages) {
    // The response's set oneof member(s), by name.
    const set = Object.entries(AnnouncePeerResponse.decode(m)).filter(([, v]) => v !== undefined);
    tally.add(set.map(([k]) => k).join('+'));
  }
}

/** The model's peers and tasks, for a failure message. */
function schedulerState(): string {
  const r = scheduler.resources;
  const peers = [...r.peers.values()].map((p) => `${p.id}@${p.host.id}:${p.state}`);
  const tasks = [...r.tasks.values()].map((t) => `${t.id.slice(0, 8)}:${t.state}`);
  return `peers ${peers.join(' ')}; tasks ${tasks.join(' ')}`;
}

/** Ends a peer's stream the way the Rust client does: a terminal request, never a half-close. */
function terminal(bodies: Buffer[]): Buffer[] {
  const last = AnnouncePeerRequest.fromPartial({
    hostId: HOST_IDS[0],
    taskId: TASK_IDS[0],
    peerId: PEER_IDS[0],
    downloadPeerFailedRequest: { description: 'done' },
  });
  return [...bodies, Buffer.from(AnnouncePeerRequest.encode(last).finish())];
}

test(
  `fuzz: ${fuzzRuns(RUNS_STREAMS)} AnnouncePeer streams of random request sequences end with a proper status`,
  { timeout: fuzzTestTimeout(RUNS_STREAMS, 200) },
  async (t) => {
    const tally = new Tally();
    await announcePoolHosts();
    await withoutStrayErrors(() =>
      fc.assert(
        fc.asyncProperty(streamBodies, fc.boolean(), async (bodies, leaveOpen) => {
          // Left open, the stream ends only on a terminal request or an error: the client sends one last.
          await oneStream(leaveOpen ? terminal(bodies) : bodies, leaveOpen, tally);
        }),
        fuzzParameters(RUNS_STREAMS),
      ),
    );
    t.diagnostic(`statuses and responses: ${tally}`);
    await assertSchedulerServes();
  },
);

test(
  `fuzz: ${fuzzRuns(RUNS_PARALLEL_STREAMS)} batches of 4 concurrent AnnouncePeer streams on the same ids`,
  { timeout: fuzzTestTimeout(RUNS_PARALLEL_STREAMS, 500) },
  async (t) => {
    const tally = new Tally();
    await announcePoolHosts();
    await withoutStrayErrors(() =>
      fc.assert(
        fc.asyncProperty(fc.array(streamBodies, { minLength: 4, maxLength: 4 }), async (batch) => {
          await Promise.all(batch.map((bodies) => oneStream(bodies, false, tally)));
        }),
        fuzzParameters(RUNS_PARALLEL_STREAMS),
      ),
    );
    t.diagnostic(`statuses and responses: ${tally}`);
    await assertSchedulerServes();
  },
);
