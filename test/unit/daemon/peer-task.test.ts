// The P2P flow of a task run (src/daemon/peer-task.ts) against a scripted scheduler — a real grpc-js
// `scheduler.v2.Scheduler` server on port 0 whose AnnouncePeer records every request and replies as the test
// says — fake parents (DfdaemonUpload clients whose SyncPieces streams the test drives) and a fake piece path
// (which records where each piece was taken from). The run is a real TaskRun with the PeerTask as its source.
// Reschedules and timeouts are decided by PeerTask's check(), every 250 ms (a constant): the tests that wait for
// one take a tick or two; every other timer is shortened through the options.

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { Server, ServerCredentials, credentials, status, type ServerDuplexStream } from '@grpc/grpc-js';
import pino from 'pino';
import { DfError } from '../../../src/core/errors.js';
import { Download, Host, Peer } from '../../../src/gen/common.js';
import type {
  DfdaemonUploadClient,
  SyncPiecesRequest,
  SyncPiecesResponse,
} from '../../../src/gen/dfdaemon.js';
import {
  AnnouncePeerResponse,
  SchedulerClient,
  SchedulerService,
  type AnnouncePeerRequest,
} from '../../../src/gen/scheduler.js';
import { PeerTask, type PeerTaskOptions } from '../../../src/daemon/peer-task.js';
import { DownlinkPace, type BodyMeter } from '../../../src/daemon/downlink-pace.js';
import type {
  PiecePath,
  PieceParent,
  SourceBodyWatch,
  SourceTask,
  VerifiedPiece,
} from '../../../src/daemon/piece-path.js';
import { TaskRun, type PieceEvent, type PieceSpec } from '../../../src/daemon/task-run.js';
import type { PieceRecord } from '../../../src/storage/storage.js';

const TASK_ID = 'a'.repeat(64);
const HOST_ID = 'host-self';
const PIECE_LENGTH = 1024;
const URL = 'http://origin.test/file.bin';
const log = pino({ level: 'silent' });

// ---------------------------------------------------------------------------------------------------------------
// The scheduler

/** The oneof field set in an AnnouncePeerRequest. */
const REQUEST_KINDS = [
  'registerPeerRequest',
  'downloadPeerStartedRequest',
  'downloadPeerBackToSourceStartedRequest',
  'reschedulePeerRequest',
  'downloadPeerFinishedRequest',
  'downloadPeerBackToSourceFinishedRequest',
  'downloadPeerFailedRequest',
  'downloadPeerBackToSourceFailedRequest',
  'downloadPieceFinishedRequest',
  'downloadPieceBackToSourceFinishedRequest',
  'downloadPieceFailedRequest',
  'downloadPieceBackToSourceFailedRequest',
] as const;
type RequestKind = (typeof REQUEST_KINDS)[number];

function kindOf(req: AnnouncePeerRequest): RequestKind {
  const kinds = REQUEST_KINDS.filter((k) => req[k] !== undefined);
  assert.equal(kinds.length, 1, `exactly one request in ${JSON.stringify(req)}`);
  return kinds[0]!;
}

/** One AnnouncePeer stream as the scheduler sees it. */
class SchedulerStream {
  readonly requests: AnnouncePeerRequest[] = [];
  constructor(private readonly call: ServerDuplexStream<AnnouncePeerRequest, AnnouncePeerResponse>) {}

  get kinds(): RequestKind[] {
    return this.requests.map(kindOf);
  }

  of<K extends RequestKind>(kind: K): NonNullable<AnnouncePeerRequest[K]>[] {
    return this.requests.filter((r) => r[kind] !== undefined).map((r) => r[kind]!);
  }

  reply(r: Partial<AnnouncePeerResponse>): void {
    this.call.write(AnnouncePeerResponse.fromPartial(r));
  }

  parents(...parents: FakeParent[]): void {
    this.reply({ normalTaskResponse: { candidateParents: parents.map((p) => p.peer) } });
  }

  backToSource(description = 'no parents'): void {
    this.reply({ needBackToSourceResponse: { description } });
  }

  fail(code: number, details: string): void {
    this.call.emit('error', { code, details });
  }
}

/** A scheduler.v2 server whose AnnouncePeer is scripted by the test through `onRequest`. */
class FakeScheduler {
  readonly streams: SchedulerStream[] = [];
  /** Called for every request received; replies (or fails the stream) as the test wants. */
  onRequest: (req: AnnouncePeerRequest, stream: SchedulerStream) => void = () => undefined;
  private readonly server = new Server();
  private client_?: SchedulerClient;

  static async start(): Promise<FakeScheduler> {
    const fake = new FakeScheduler();
    fake.server.addService(SchedulerService, {
      announcePeer: (call: ServerDuplexStream<AnnouncePeerRequest, AnnouncePeerResponse>) =>
        fake.accept(call),
    });
    const port = await new Promise<number>((resolve, reject) =>
      fake.server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    );
    fake.client_ = new SchedulerClient(`127.0.0.1:${port}`, credentials.createInsecure());
    return fake;
  }

  get client(): SchedulerClient {
    assert.ok(this.client_);
    return this.client_;
  }

  private accept(call: ServerDuplexStream<AnnouncePeerRequest, AnnouncePeerResponse>): void {
    const stream = new SchedulerStream(call);
    this.streams.push(stream);
    call.on('data', (req: AnnouncePeerRequest) => {
      stream.requests.push(req);
      this.onRequest(req, stream);
    });
    // The peer ends its side after a terminal request; the scheduler then ends the call, as Go does.
    call.on('end', () => call.end());
    call.on('error', () => undefined);
  }

  /** The first stream (most tests open one). */
  get stream(): SchedulerStream {
    assert.ok(this.streams[0], 'no AnnouncePeer stream was opened');
    return this.streams[0];
  }

  close(): void {
    this.client.close();
    this.server.forceShutdown();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Parents

/** A SyncPieces stream as the collector uses it: data/end/error events and cancel(). */
class FakeSyncStream extends EventEmitter {
  cancelled = false;
  cancel(): void {
    this.cancelled = true;
  }
}

let nextPort = 20_000;

/** A parent host: its Peer as the scheduler names it, and the SyncPieces stream we opened to it. */
class FakeParent {
  readonly peer: Peer;
  readonly port = nextPort++;
  readonly syncs: SyncPiecesRequest[] = [];
  stream?: FakeSyncStream;

  constructor(
    readonly id: string,
    seed = false,
  ) {
    this.peer = Peer.fromPartial({
      id,
      state: 'Running',
      host: Host.fromPartial({ id: `host-${id}`, type: seed ? 1 : 0, ip: '127.0.0.1', port: this.port }),
    });
  }

  sync(req: SyncPiecesRequest): FakeSyncStream {
    this.syncs.push(req);
    this.stream = new FakeSyncStream();
    return this.stream;
  }

  announce(...numbers: number[]): void {
    assert.ok(this.stream, `nobody syncs with ${this.id}`);
    for (const number of numbers) {
      const r: SyncPiecesResponse = {
        number,
        offset: number * PIECE_LENGTH,
        length: PIECE_LENGTH,
        ip: '127.0.0.1',
        tcpPort: this.port + 1,
      };
      this.stream.emit('data', r);
    }
  }

  end(): void {
    this.stream?.emit('end');
  }
}

function uploadClients(...parents: FakeParent[]): (ip: string, port: number) => DfdaemonUploadClient {
  return (_ip, port) => {
    const parent = parents.find((p) => p.port === port);
    assert.ok(parent, `no parent listens on ${port}`);
    return { syncPieces: (req: SyncPiecesRequest) => parent.sync(req) } as unknown as DfdaemonUploadClient;
  };
}

// ---------------------------------------------------------------------------------------------------------------
// The piece path

function record(piece: PieceSpec, trafficType: number, parentId?: string): PieceRecord {
  const at = new Date(0);
  return {
    taskId: TASK_ID,
    number: piece.number,
    offset: piece.offset,
    length: piece.length,
    digest: `crc32:${piece.number}`,
    parentId,
    trafficType,
    costMs: 3,
    createdAt: at,
    updatedAt: at,
    finishedAt: at,
  };
}

/** Where each piece was taken from; every piece is stored at once unless `parentFails` says otherwise. */
class FakePiecePath {
  readonly calls: { number: number; from: string }[] = [];
  /** An error for a parent's piece, or undefined to store it. */
  parentFails: (number: number, parentId: string) => Error | undefined = () => undefined;

  /** How long a parent's piece takes (ms; 0: at once), and the most parent pieces that were in flight at once. */
  holdMs = 0;
  private inFlight = 0;
  maxInFlight = 0;

  /** Parents whose pieces never come: their fetch ends only when its signal aborts. */
  readonly stalled = new Set<string>();
  readonly stored: { number: number; parentId: string }[] = [];

  fromParent(
    taskId: string,
    piece: PieceSpec,
    parent: PieceParent,
    signal?: AbortSignal,
    downlink?: BodyMeter,
  ): Promise<PieceRecord> {
    assert.equal(taskId, TASK_ID);
    this.calls.push({ number: piece.number, from: parent.parentId });
    if (this.stalled.has(parent.parentId)) {
      // Waiting in the parent's upload queue: no body begins.
      return new Promise((_, reject) => signal?.addEventListener('abort', () => reject(signal.reason)));
    }
    const err = this.parentFails(piece.number, parent.parentId);
    if (err) return Promise.reject(err);
    if (this.holdMs === 0) return Promise.resolve(record(piece, 1, parent.parentId));
    const body = downlink?.began();
    this.maxInFlight = Math.max(this.maxInFlight, ++this.inFlight);
    return new Promise((resolve) =>
      setTimeout(() => {
        this.inFlight--;
        body?.ended(); // no sample: the test's pace keeps what it was given
        resolve(record(piece, 1, parent.parentId));
      }, this.holdMs),
    );
  }

  fromParentToMemory(_taskId: string, piece: PieceSpec, parent: PieceParent): Promise<VerifiedPiece> {
    this.calls.push({ number: piece.number, from: `${parent.parentId} (copy)` });
    return Promise.resolve({
      data: Buffer.alloc(0),
      digest: `crc32:${piece.number}`,
      parentId: parent.parentId,
    });
  }

  storeVerified(_taskId: string, piece: PieceSpec, verified: VerifiedPiece): Promise<PieceRecord> {
    this.stored.push({ number: piece.number, parentId: verified.parentId });
    return Promise.resolve(record(piece, 1, verified.parentId));
  }

  /** Source pieces whose bodies the test drives (`holdSource`): their watch, and how to end them. */
  holdSource = false;
  readonly sourceHeld = new Map<number, { watch?: SourceBodyWatch; end: () => void }>();

  fromSource(
    task: SourceTask,
    piece: PieceSpec,
    _signal?: AbortSignal,
    watch?: SourceBodyWatch,
  ): Promise<PieceRecord> {
    assert.equal(task.url, URL);
    this.calls.push({ number: piece.number, from: 'source' });
    if (!this.holdSource) return Promise.resolve(record(piece, 0));
    return new Promise((resolve) =>
      this.sourceHeld.set(piece.number, { watch, end: () => resolve(record(piece, 0)) }),
    );
  }

  from(who: string): number[] {
    return this.calls.filter((c) => c.from === who).map((c) => c.number);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// One test's world

const specs = (count: number): PieceSpec[] =>
  Array.from({ length: count }, (_, i) => ({ number: i, offset: i * PIECE_LENGTH, length: PIECE_LENGTH }));

async function waitFor(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Lets pending callbacks and promise continuations run. */
const settle = async (): Promise<void> => {
  for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
};

interface World {
  scheduler: FakeScheduler;
  path: FakePiecePath;
  run: TaskRun;
  task: PeerTask;
  events: PieceEvent[];
  started: Promise<void>;
}

/**
 * A run of `pieces` pieces, all wanted, with a PeerTask as its source; the peer registers at once. The PeerTask
 * options default to quiet timers (no proactive reschedule, long collectedPieceTimeout).
 */
async function world(
  t: TestContext,
  pieces: number,
  parents: FakeParent[],
  script: (req: AnnouncePeerRequest, stream: SchedulerStream) => void,
  options: Partial<PeerTaskOptions> = {},
): Promise<World> {
  const scheduler = await FakeScheduler.start();
  scheduler.onRequest = script;
  const path = new FakePiecePath();
  const run = new TaskRun(TASK_ID, specs(pieces), [], 4);
  const task = new PeerTask({
    run,
    source: { taskId: TASK_ID, url: URL, requestHeader: {} },
    piecePath: path as unknown as PiecePath,
    download: Download.fromPartial({ url: URL, outputPath: '/tmp/out', needPieceContent: true }),
    contentLength: pieces * PIECE_LENGTH,
    pieceLength: PIECE_LENGTH,
    hostId: HOST_ID,
    peerId: 'peer-1',
    scheduler: scheduler.client,
    uploadClient: uploadClients(...parents),
    scheduleTimeoutMs: 5000,
    maxScheduleCount: 5,
    collectedPieceTimeoutMs: 60_000,
    concurrentPieceCount: 4,
    proactiveRescheduleIdleMs: 60_000,
    random: () => 0,
    log,
    ...options,
  });
  const events: PieceEvent[] = [];
  run.subscribe((ev) => events.push(ev));
  run.setSource(task);
  run.want(specs(pieces).map((p) => p.number));
  const started = task.start();
  // The task manager only logs a failed start; a test that cares awaits `started`.
  started.catch(() => undefined);
  t.after(() => {
    run.end();
    task.close();
    scheduler.close();
  });
  return { scheduler, path, run, task, events, started };
}

/** A script step: answer the register request of every stream with the given parents. */
const registerWith =
  (...parents: FakeParent[]) =>
  (req: AnnouncePeerRequest, stream: SchedulerStream): void => {
    if (req.registerPeerRequest) stream.parents(...parents);
  };

/** Every piece stored and `terminal` received on the `index`th AnnouncePeer stream; no piece failed. */
async function finished(w: World, terminal: RequestKind, index = 0): Promise<void> {
  await waitFor('every piece', () => w.run.isFinished);
  await waitFor(terminal, () => w.scheduler.streams[index]?.kinds.includes(terminal) === true);
  assert.ok(
    w.events.every((e) => !e.error),
    'no piece failed',
  );
}

// ---------------------------------------------------------------------------------------------------------------

test('register → NormalTaskResponse → DownloadPeerStarted → pieces from the parent → DownloadPeerFinished', async (t) => {
  const a = new FakeParent('parent-a');
  const w = await world(t, 3, [a], registerWith(a));
  await waitFor('SyncPieces to the parent', () => a.stream !== undefined);
  assert.deepEqual(a.syncs, [{ hostId: HOST_ID, taskId: TASK_ID, interestedPieceNumbers: [0, 1, 2] }]);
  a.announce(0, 1, 2);
  a.end();
  await finished(w, 'downloadPeerFinishedRequest');
  await w.started;

  const s = w.scheduler.stream;
  assert.deepEqual(s.kinds, [
    'registerPeerRequest',
    'downloadPeerStartedRequest',
    'downloadPieceFinishedRequest',
    'downloadPieceFinishedRequest',
    'downloadPieceFinishedRequest',
    'downloadPeerFinishedRequest',
  ]);
  for (const r of s.requests) {
    assert.deepEqual([r.hostId, r.taskId, r.peerId], [HOST_ID, TASK_ID, 'peer-1']);
  }
  const download = s.of('registerPeerRequest')[0]!.download!;
  assert.equal(download.url, URL);
  assert.equal(download.outputPath, undefined, 'the local output path is not the scheduler’s business');
  assert.equal(download.needPieceContent, false);
  assert.deepEqual(
    [download.actualContentLength, download.actualPieceLength, download.actualPieceCount],
    [3 * PIECE_LENGTH, PIECE_LENGTH, 3],
  );
  assert.equal(download.concurrentPieceCount, 4);
  const reported = s.of('downloadPieceFinishedRequest').map((r) => r.piece!);
  assert.deepEqual(reported.map((p) => p.number).sort(), [0, 1, 2]);
  for (const p of reported) {
    assert.equal(p.parentId, 'parent-a');
    assert.equal(p.trafficType, 1, 'REMOTE_PEER');
    assert.equal(p.length, PIECE_LENGTH);
    assert.equal(p.digest, `crc32:${p.number}`);
  }
  assert.deepEqual(w.path.from('parent-a').sort(), [0, 1, 2]);
  assert.deepEqual(w.path.from('source'), []);
});

test('a piece is requested only from a parent that announced it, and only once announced', async (t) => {
  const a = new FakeParent('parent-a');
  const b = new FakeParent('parent-b');
  const w = await world(t, 3, [a, b], registerWith(a, b));
  await waitFor('SyncPieces to both parents', () => a.stream !== undefined && b.stream !== undefined);
  await settle();
  assert.deepEqual(w.path.calls, [], 'nothing is requested before a parent announced it');
  a.announce(0);
  await waitFor('piece 0', () => w.run.finished.has(0));
  b.announce(1);
  await waitFor('piece 1', () => w.run.finished.has(1));
  await settle();
  assert.deepEqual(w.path.calls, [
    { number: 0, from: 'parent-a' },
    { number: 1, from: 'parent-b' },
  ]);
  assert.equal(w.run.finished.has(2), false, 'piece 2 waits: nobody has it');
  b.announce(2);
  await finished(w, 'downloadPeerFinishedRequest');
  assert.deepEqual(w.path.calls[2], { number: 2, from: 'parent-b' });
});

test('a seed and a peer that finished the task: every piece from the peer, the last one announced too', async (t) => {
  const seed = new FakeParent('seed-1', true);
  const peer = new FakeParent('peer-done');
  peer.peer.state = 'Succeeded';
  const w = await world(t, 4, [peer, seed], registerWith(peer, seed));
  await waitFor('SyncPieces to both parents', () => seed.stream !== undefined && peer.stream !== undefined);
  // The seed's announcements come first; the seeds are held until the finished peer has announced every piece,
  // and the last of them must already be the peer's when the hold ends (it was the seed's once, in CI).
  seed.announce(0, 1, 2, 3);
  await settle();
  assert.deepEqual(w.path.calls, [], 'nothing from the seed while a finished peer is still announcing');
  peer.announce(0, 1, 2, 3);
  await finished(w, 'downloadPeerFinishedRequest');
  assert.deepEqual(w.path.from('seed-1'), [], 'no piece from the seed');
  assert.deepEqual(w.path.from('peer-done').sort(), [0, 1, 2, 3]);
});

test('a downlink measured slow takes one parent body at a time; measured fast, several', async (t) => {
  // Measured on their own clocks: a 1 KiB piece took 3 s alone (a piece takes seconds at this downlink's rate),
  // or 1 ms.
  const measured = (ms: number): DownlinkPace => {
    let clock = 0;
    const pace = new DownlinkPace(() => clock);
    const body = pace.began();
    clock = ms;
    body.ended(PIECE_LENGTH);
    return pace;
  };
  for (const [downlink, slow] of [
    [measured(3000), true],
    [measured(1), false],
  ] as const) {
    const parents = [new FakeParent('parent-a'), new FakeParent('parent-b'), new FakeParent('parent-c')];
    const w = await world(t, 6, parents, registerWith(...parents), { downlink });
    w.path.holdMs = 30;
    await waitFor('SyncPieces to every parent', () => parents.every((p) => p.stream !== undefined));
    for (const p of parents) for (let n = 0; n < 6; n++) p.announce(n);
    await finished(w, 'downloadPeerFinishedRequest');
    if (slow) assert.equal(w.path.maxInFlight, 1, 'one body at a time on the slow downlink');
    else assert.ok(w.path.maxInFlight > 1, `several at once on the fast one (${w.path.maxInFlight})`);
  }
});

test('under a downlink limit, a request waiting in a parent’s queue makes room after half a second, and is taken back once a body begins', async (t) => {
  let clock = 0;
  const slow = new DownlinkPace(() => clock);
  const body = slow.began();
  clock = 2000; // a piece in 2 s at this downlink's rate: one body at a time
  body.ended(PIECE_LENGTH);
  const a = new FakeParent('parent-a');
  const b = new FakeParent('parent-b');
  const w = await world(t, 2, [a, b], registerWith(a, b), { downlink: slow });
  w.path.stalled.add('parent-a');
  w.path.holdMs = 200;
  await waitFor('SyncPieces to both parents', () => a.stream !== undefined && b.stream !== undefined);
  a.announce(0);
  await waitFor('piece 0 asked of parent-a', () => w.path.from('parent-a').includes(0));
  b.announce(1);
  await new Promise((r) => setTimeout(r, 250));
  assert.deepEqual(
    w.path.from('parent-b'),
    [],
    'one request out: piece 1 waits while piece 0 may still come',
  );
  await waitFor('piece 1 asked of parent-b', () => w.path.from('parent-b').includes(1), 2000);
  // parent-b's body began: the request still waiting at parent-a was taken back, and is asked again only after.
  await waitFor('piece 1', () => w.run.finished.has(1), 2000);
  assert.equal(w.path.maxInFlight, 1);
  await waitFor('piece 0 asked of parent-a again', () => w.path.from('parent-a').length === 2, 2000);
  assert.equal(w.run.finished.has(0), false, 'piece 0 still waits at parent-a');
  const failures = w.scheduler.streams[0]!.kinds.filter((k) => k === 'downloadPieceFailedRequest');
  assert.deepEqual(failures, [], 'a request taken back is no failed piece');
});

test('under a downlink limit, a request for a piece only a seed holds keeps its place while it waits at the seed', async (t) => {
  let clock = 0;
  const slow = new DownlinkPace(() => clock);
  const body = slow.began();
  clock = 2000; // one body at a time
  body.ended(PIECE_LENGTH);
  const seed = new FakeParent('seed-1', true);
  const b = new FakeParent('parent-b');
  const w = await world(t, 2, [seed, b], registerWith(seed, b), { downlink: slow });
  w.path.stalled.add('seed-1'); // the seed is sending another child its fresh piece: ours waits in its queue
  await waitFor('SyncPieces to both parents', () => seed.stream !== undefined && b.stream !== undefined);
  seed.announce(0);
  b.announce(1);
  await waitFor('piece 0 asked of the seed', () => w.path.from('seed-1').includes(0));
  // Well past the half second after which another request waiting would make room.
  await new Promise((r) => setTimeout(r, 1200));
  assert.deepEqual(w.path.from('parent-b'), [], 'piece 1 waits: the seed’s body will need the downlink');
  assert.deepEqual(w.path.from('seed-1'), [0], 'asked once, not taken back');
  assert.equal(w.run.finished.size, 0);
});

test('a parent that fails a piece: DownloadPieceFailed, and the piece comes from another holder, no error', async (t) => {
  const a = new FakeParent('parent-a');
  const b = new FakeParent('parent-b');
  const w = await world(t, 2, [a, b], registerWith(a, b));
  w.path.parentFails = (n, parent) =>
    parent === 'parent-a' ? new DfError('DIGEST_MISMATCH', `piece ${n} is corrupt`) : undefined;
  await waitFor('SyncPieces to both parents', () => a.stream !== undefined && b.stream !== undefined);
  a.announce(0, 1);
  await waitFor('both pieces tried on parent-a', () => w.path.from('parent-a').length === 2);
  await settle();
  assert.equal(w.run.finished.size, 0);
  b.announce(0, 1);
  await finished(w, 'downloadPeerFinishedRequest');
  assert.deepEqual(
    w.path.from('parent-a').sort(),
    [0, 1],
    'parent-a is not asked for a piece it failed again',
  );
  assert.deepEqual(w.path.from('parent-b').sort(), [0, 1]);
  const failed = w.scheduler.stream.of('downloadPieceFailedRequest');
  assert.deepEqual(
    failed.sort((x, y) => x.pieceNumber! - y.pieceNumber!),
    [
      { pieceNumber: 0, parentId: 'parent-a', temporary: true },
      { pieceNumber: 1, parentId: 'parent-a', temporary: true },
    ],
  );
  assert.equal(w.events.length, 2);
});

test('a busy parent (full upload queue): nothing reported, the piece asked of it again shortly', async (t) => {
  const a = new FakeParent('parent-a');
  const w = await world(t, 1, [a], registerWith(a));
  let busyAnswers = 2;
  w.path.parentFails = () =>
    busyAnswers-- > 0
      ? new DfError('RESOURCE_EXHAUSTED', `parent a: busy: 2 requests are waiting for an upload slot`, {
          retryable: true,
        })
      : undefined;
  await waitFor('SyncPieces to parent-a', () => a.stream !== undefined);
  a.announce(0);
  await finished(w, 'downloadPeerFinishedRequest');
  assert.deepEqual(w.path.from('parent-a'), [0, 0, 0], 'asked three times: busy, busy, served');
  assert.deepEqual(w.scheduler.stream.of('downloadPieceFailedRequest'), [], 'a busy parent did not fail');
  assert.equal(w.events.length, 1);
});

test('a parent whose piece server refuses connections is dropped: nothing more is asked of it', async (t) => {
  const a = new FakeParent('parent-a');
  const b = new FakeParent('parent-b');
  const w = await world(t, 2, [a, b], registerWith(a, b));
  w.path.parentFails = (n, parent) =>
    parent === 'parent-a'
      ? new DfError('UNAVAILABLE', `piece ${n}`, {
          cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }),
        })
      : undefined;
  await waitFor('SyncPieces to both parents', () => a.stream !== undefined && b.stream !== undefined);
  a.announce(0);
  await waitFor('piece 0 tried on parent-a', () => w.path.from('parent-a').length === 1);
  await settle();
  a.announce(1); // would start at once from parent-a, were it alive
  await settle();
  b.announce(0, 1);
  await finished(w, 'downloadPeerFinishedRequest');
  assert.deepEqual(w.path.from('parent-a'), [0]);
  assert.deepEqual(w.path.from('parent-b').sort(), [0, 1]);
  assert.ok(a.stream!.cancelled, 'its SyncPieces stream is closed');
});

test('every parent stream ended with pieces missing → ReschedulePeer with the candidate parents as received', async (t) => {
  const a = new FakeParent('parent-a');
  const b = new FakeParent('parent-b');
  const c = new FakeParent('parent-c', true);
  const w = await world(t, 2, [a, b, c], (req, stream) => {
    if (req.registerPeerRequest) stream.parents(a, b);
    if (req.reschedulePeerRequest) stream.parents(c);
  });
  await waitFor('SyncPieces to both parents', () => a.stream !== undefined && b.stream !== undefined);
  a.announce(0);
  a.end();
  b.end();
  await waitFor('ReschedulePeer', () => w.scheduler.stream.kinds.includes('reschedulePeerRequest'));
  const reschedule = w.scheduler.stream.of('reschedulePeerRequest')[0]!;
  assert.deepEqual(reschedule.candidateParents, [a.peer, b.peer]);
  assert.ok(reschedule.description);
  await waitFor('SyncPieces to the new parent', () => c.stream !== undefined);
  c.announce(1);
  await finished(w, 'downloadPeerFinishedRequest');
  assert.deepEqual(w.scheduler.stream.kinds, [
    'registerPeerRequest',
    'downloadPeerStartedRequest',
    'downloadPieceFinishedRequest',
    'reschedulePeerRequest',
    'downloadPieceFinishedRequest',
    'downloadPeerFinishedRequest',
  ]);
  assert.deepEqual(w.path.calls, [
    { number: 0, from: 'parent-a' },
    { number: 1, from: 'parent-c' },
  ]);
});

test('NeedBackToSource on register → back-to-source, pieces in order, each reported, then BTS finished', async (t) => {
  const w = await world(t, 4, [], (req, stream) => {
    if (req.registerPeerRequest) stream.backToSource();
  });
  await finished(w, 'downloadPeerBackToSourceFinishedRequest');
  assert.deepEqual(
    w.path.calls.map((c) => c.from),
    ['source', 'source', 'source', 'source'],
  );
  assert.deepEqual(w.path.from('source'), [0, 1, 2, 3], 'the source gives pieces in piece order');
  const s = w.scheduler.stream;
  assert.deepEqual(s.kinds, [
    'registerPeerRequest',
    'downloadPeerBackToSourceStartedRequest',
    'downloadPieceBackToSourceFinishedRequest',
    'downloadPieceBackToSourceFinishedRequest',
    'downloadPieceBackToSourceFinishedRequest',
    'downloadPieceBackToSourceFinishedRequest',
    'downloadPeerBackToSourceFinishedRequest',
  ]);
  const reported = s.of('downloadPieceBackToSourceFinishedRequest').map((r) => r.piece!);
  assert.deepEqual(reported.map((p) => p.number).sort(), [0, 1, 2, 3]);
  assert.ok(
    reported.every((p) => p.trafficType === 0 && p.parentId === undefined),
    'BACK_TO_SOURCE',
  );
});

test('back-to-source takes one source piece at a time; the next request goes out during the previous body’s tail', async (t) => {
  const w = await world(
    t,
    3,
    [],
    (req, stream) => {
      if (req.registerPeerRequest) stream.backToSource();
    },
    { concurrentPieceCount: 4 },
  );
  w.path.holdSource = true;
  await waitFor('piece 0 from the source', () => w.path.sourceHeld.has(0));
  await settle();
  assert.deepEqual(w.path.from('source'), [0], 'one piece at a time, not the run’s four');
  const p0 = w.path.sourceHeld.get(0)!;
  assert.ok(p0.watch, 'the source body is watched');
  p0.watch.bodyBegan(PIECE_LENGTH);
  await settle();
  assert.deepEqual(w.path.from('source'), [0], 'a body begun is not yet in its tail');
  p0.watch.progress(PIECE_LENGTH); // every byte arrived: storing it is what remains
  await waitFor('piece 1 requested while piece 0 ends', () => w.path.sourceHeld.has(1));
  await settle();
  assert.deepEqual(w.path.from('source'), [0, 1], 'only the next one');
  p0.end();
  w.path.sourceHeld.get(1)!.end();
  await waitFor('piece 2', () => w.path.sourceHeld.has(2));
  w.path.sourceHeld.get(2)!.end();
  await finished(w, 'downloadPeerBackToSourceFinishedRequest');
  assert.deepEqual(w.path.from('source'), [0, 1, 2]);
});

test('a proactive reschedule answered with NeedBackToSource while a parent still streams: stay with the parents', async (t) => {
  const a = new FakeParent('parent-a');
  const w = await world(
    t,
    3,
    [a],
    (req, stream) => {
      if (req.registerPeerRequest) stream.parents(a);
      if (req.reschedulePeerRequest) stream.backToSource('no other parents');
    },
    { proactiveRescheduleIdleMs: 20, maxProactiveReschedules: 2 },
  );
  await waitFor('SyncPieces to the parent', () => a.stream !== undefined);
  a.announce(0);
  // A second proactive reschedule is only sent once the first answer was handled, and only from the parents.
  const s = w.scheduler.stream;
  await waitFor('two proactive reschedules', () => s.of('reschedulePeerRequest').length === 2);
  assert.deepEqual(s.of('reschedulePeerRequest')[0]!.candidateParents, [a.peer]);
  a.announce(1, 2);
  await finished(w, 'downloadPeerFinishedRequest');
  assert.deepEqual(w.path.from('source'), [], 'the origin is never asked');
  assert.deepEqual(w.path.from('parent-a').sort(), [0, 1, 2]);
  assert.equal(s.kinds.includes('downloadPeerBackToSourceStartedRequest'), false);
  assert.equal(s.kinds.at(-1), 'downloadPeerFinishedRequest');
});

test('the scheduler fails the stream on register → every piece from the source, nothing reported', async (t) => {
  const w = await world(t, 3, [], (req, stream) => {
    if (req.registerPeerRequest) stream.fail(status.UNAVAILABLE, 'scheduler is sick');
  });
  await waitFor('every piece', () => w.run.isFinished);
  await w.started;
  assert.deepEqual(w.path.from('source'), [0, 1, 2]);
  assert.equal(w.scheduler.streams.length, 1, 'no second register');
  assert.deepEqual(w.scheduler.stream.kinds, ['registerPeerRequest']);
  assert.ok(w.events.every((e) => !e.error));
});

test('the scheduler does not answer within scheduleTimeout → every piece from the source', async (t) => {
  const w = await world(t, 2, [], () => undefined, { scheduleTimeoutMs: 50 });
  await waitFor('every piece', () => w.run.isFinished);
  await w.started;
  assert.deepEqual(w.path.from('source'), [0, 1]);
  // The register may reach the scheduler only after the peer gave up on it (a busy machine).
  await waitFor('the register', () => w.scheduler.streams[0]?.requests.length === 1);
  assert.deepEqual(w.scheduler.stream.kinds, ['registerPeerRequest']);
});

test('NOT_FOUND on register → the host is announced again and the peer registers with a new peer id', async (t) => {
  const a = new FakeParent('parent-a');
  const order: string[] = [];
  const w = await world(
    t,
    2,
    [a],
    (req, stream) => {
      if (!req.registerPeerRequest) return;
      order.push(`register ${req.peerId}`);
      if (req.peerId === 'peer-1') stream.fail(status.NOT_FOUND, 'host not found');
      else stream.parents(a);
    },
    {
      reannounce: async () => void order.push('reannounce'),
      newPeerId: () => 'peer-2',
    },
  );
  await waitFor('SyncPieces to the parent', () => a.stream !== undefined);
  a.announce(0, 1);
  await waitFor('second stream', () => w.scheduler.streams.length === 2);
  await finished(w, 'downloadPeerFinishedRequest', 1);
  await w.started;
  assert.deepEqual(order, ['register peer-1', 'reannounce', 'register peer-2']);
  const second = w.scheduler.streams[1]!;
  assert.ok(second.requests.every((r) => r.peerId === 'peer-2' && r.hostId === HOST_ID));
  assert.deepEqual(second.kinds, [
    'registerPeerRequest',
    'downloadPeerStartedRequest',
    'downloadPieceFinishedRequest',
    'downloadPieceFinishedRequest',
    'downloadPeerFinishedRequest',
  ]);
  assert.deepEqual(w.path.from('source'), []);
});

// Guards a fix: a rejected reannounce escaped start() and left the run with no source at all (it hung).
test('NOT_FOUND on register and the host cannot be announced again → every piece from the source', async (t) => {
  const w = await world(
    t,
    2,
    [],
    (req, stream) => {
      if (req.registerPeerRequest) stream.fail(status.NOT_FOUND, 'host not found');
    },
    {
      reannounce: () => Promise.reject(new DfError('UNAVAILABLE', 'scheduler is down')),
      newPeerId: () => 'peer-2',
    },
  );
  await waitFor('every piece', () => w.run.isFinished);
  await w.started;
  assert.deepEqual(w.path.from('source'), [0, 1]);
  assert.equal(w.scheduler.streams.length, 1, 'no register without the host');
});

test('more replies than maxScheduleCount → DownloadPeerFailed and the rest from the source', async (t) => {
  const a = new FakeParent('parent-a');
  const b = new FakeParent('parent-b');
  const w = await world(
    t,
    3,
    [a, b],
    (req, stream) => {
      if (req.registerPeerRequest) stream.parents(a);
      if (req.reschedulePeerRequest) stream.parents(b);
    },
    { maxScheduleCount: 1 },
  );
  await waitFor('SyncPieces to the parent', () => a.stream !== undefined);
  a.announce(0);
  a.end();
  await waitFor('every piece', () => w.run.isFinished);
  const s = w.scheduler.stream;
  await waitFor('DownloadPeerFailed', () => s.kinds.includes('downloadPeerFailedRequest'));
  assert.deepEqual(s.kinds, [
    'registerPeerRequest',
    'downloadPeerStartedRequest',
    'downloadPieceFinishedRequest',
    'reschedulePeerRequest',
    'downloadPeerFailedRequest',
  ]);
  assert.equal(s.of('downloadPeerFailedRequest')[0]!.description, 'max schedule count exceeded');
  assert.deepEqual(w.path.from('parent-a'), [0]);
  assert.deepEqual(w.path.from('source'), [1, 2]);
  assert.equal(b.syncs.length, 0, 'the parents of the reply past the limit are not used');
});

test('parents announce nothing new for collectedPieceTimeout → DownloadPeerFailed and the rest from the source', async (t) => {
  const a = new FakeParent('parent-a');
  const w = await world(t, 3, [a], registerWith(a), { collectedPieceTimeoutMs: 50 });
  await waitFor('SyncPieces to the parent', () => a.stream !== undefined);
  a.announce(0);
  await waitFor('every piece', () => w.run.isFinished);
  const s = w.scheduler.stream;
  await waitFor('DownloadPeerFailed', () => s.kinds.includes('downloadPeerFailedRequest'));
  assert.equal(s.of('downloadPeerFailedRequest')[0]!.description, 'collected piece timeout');
  assert.deepEqual(w.path.from('parent-a'), [0]);
  assert.deepEqual(w.path.from('source'), [1, 2]);
  assert.equal(s.kinds.includes('downloadPeerFinishedRequest'), false, 'nothing after the terminal request');
  assert.ok(a.stream!.cancelled);
});

test('disableBackToSource: when the scheduler fails, the pieces fail with UNAVAILABLE instead of going to source', async (t) => {
  const w = await world(
    t,
    2,
    [],
    (req, stream) => {
      if (req.registerPeerRequest) stream.fail(status.UNAVAILABLE, 'scheduler is sick');
    },
    { download: Download.fromPartial({ url: URL, disableBackToSource: true }) },
  );
  await waitFor('both pieces failed', () => w.events.length === 2);
  await w.started;
  assert.deepEqual(w.path.calls, [], 'the source is never asked');
  assert.deepEqual(
    w.events.map((e) => (e.error ? [e.error.code, e.number] : ['ok', e.piece.number])).sort(),
    [
      ['UNAVAILABLE', 0],
      ['UNAVAILABLE', 1],
    ],
  );
  assert.equal(w.run.isFinished, false);
});

// Guards a fix: a parent dropped for a connection failure kept its SyncPieces stream open, which counted as a
// parent that still streams, so no ReschedulePeer was sent until collectedPieceTimeout.
test('the only parent is dead but its SyncPieces stream stays open → ReschedulePeer, not a wait for collectedPieceTimeout', async (t) => {
  const a = new FakeParent('parent-a');
  const b = new FakeParent('parent-b');
  const w = await world(t, 2, [a, b], (req, stream) => {
    if (req.registerPeerRequest) stream.parents(a);
    if (req.reschedulePeerRequest) stream.parents(b);
  });
  w.path.parentFails = (n, parent) =>
    parent === 'parent-a'
      ? new DfError('UNAVAILABLE', `piece ${n}`, {
          cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }),
        })
      : undefined;
  await waitFor('SyncPieces to the parent', () => a.stream !== undefined);
  a.announce(0, 1);
  await waitFor('ReschedulePeer', () => w.scheduler.stream.kinds.includes('reschedulePeerRequest'));
  await waitFor('SyncPieces to the new parent', () => b.stream !== undefined);
  b.announce(0, 1);
  await finished(w, 'downloadPeerFinishedRequest');
  assert.deepEqual(w.path.from('source'), []);
  assert.deepEqual(w.path.from('parent-b').sort(), [0, 1]);
  assert.ok(a.stream!.cancelled);
  assert.deepEqual(
    w.scheduler.stream.of('reschedulePeerRequest')[0]!.candidateParents.map((p) => p.id),
    ['parent-a'],
  );
});

test('endgame: a piece stuck at a busy parent is asked of a second holder; the first copy wins', async (t) => {
  const a = new FakeParent('parent-a');
  const b = new FakeParent('parent-b');
  const w = await world(t, 1, [a, b], (req, stream) => {
    if (req.registerPeerRequest) stream.parents(a, b);
  });
  w.path.stalled.add('parent-a');
  await waitFor('both syncs', () => a.stream !== undefined && b.stream !== undefined);
  a.announce(0);
  await waitFor('piece 0 asked of parent-a', () => w.path.from('parent-a').length === 1);
  b.announce(0);
  // Every missing piece is in flight and piece 0 is older than the endgame's minimum age: a copy from parent-b.
  await waitFor('the piece', () => w.events.length === 1, 4000);
  assert.ok(w.events[0]!.piece, 'no error reaches the run');
  assert.equal(w.events[0]!.piece!.parentId, 'parent-b');
  assert.deepEqual(w.path.stored, [{ number: 0, parentId: 'parent-b' }], 'the copy was stored once');
  assert.deepEqual(w.path.from('parent-b (copy)'), [0]);
  await waitFor('finished', () => w.scheduler.stream.kinds.includes('downloadPeerFinishedRequest'));
  const reports = w.scheduler.stream.of('downloadPieceFinishedRequest');
  assert.equal(reports.length, 1);
  assert.equal(reports[0]!.piece!.parentId, 'parent-b');
  assert.ok(
    !w.scheduler.stream.kinds.includes('downloadPieceFailedRequest'),
    'the stopped fetch is not a failure',
  );
});
