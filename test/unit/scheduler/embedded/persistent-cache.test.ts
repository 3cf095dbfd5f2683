// The embedded scheduler's persistent cache tasks (spec/scheduler.md §6) through a real grpc-js client: Go's
// validation, the upload states (ALREADY_EXISTS, Finished's counts, Failed), Stat and Delete, an export with no other
// holder (FAILED_PRECONDITION), replica placement on another host's upload port (a real DfdaemonUpload server here),
// re-replication when a holder's host is deleted, the TTL, and the stream's end as grpc-go ends it (RST_STREAM).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { Server, status as GrpcStatus, type ServerWritableStream, type ServiceError } from '@grpc/grpc-js';
import { pino } from 'pino';
import type { PersistentCacheTask } from '../../../../src/gen/common.js';
import { type DownloadPersistentCacheTaskRequest } from '../../../../src/gen/dfdaemon.js';
import type { Empty } from '../../../../src/gen/google/protobuf/empty.js';
import {
  AnnouncePersistentCachePeerRequest,
  type AnnouncePersistentCachePeerResponse,
  type SchedulerClient,
  type UploadPersistentCacheTaskStartedRequest,
} from '../../../../src/gen/scheduler.js';
import { unary } from '../../../../src/cli/daemon-client.js';
import { PersistentCacheTasks } from '../../../../src/scheduler/embedded/persistent-cache.js';
import { Resources } from '../../../../src/scheduler/embedded/resources.js';
import { SqliteSchedulerStore } from '../../../../src/storage/scheduler-store.js';
import { EmbeddedScheduler } from '../../../../src/scheduler/embedded/scheduler-server.js';
import { announceHost, schedulerClient } from '../../../helpers/scheduler-client.js';
import { rejection, startUploadStandIn } from '../../../helpers/upload-stand-in.js';

const MiB = 1024 * 1024;
const TTL = { seconds: 3600, nanos: 0 };

let scheduler: EmbeddedScheduler;
let client: SchedulerClient;
/** A DfdaemonUpload server standing for a peer: records the replica placements it is asked for. */
let peer: Server;
let peerPort: number;
const placements: DownloadPersistentCacheTaskRequest[] = [];

before(async () => {
  ({ server: peer, port: peerPort } = await startUploadStandIn({
    downloadPersistentCacheTask: (
      call: ServerWritableStream<DownloadPersistentCacheTaskRequest, unknown>,
    ) => {
      placements.push(call.request);
      call.end();
    },
  }));
  scheduler = new EmbeddedScheduler({ ip: '127.0.0.1', port: 0, log: pino({ level: 'silent' }) });
  client = schedulerClient(await scheduler.start());
  await announceHost(client, { id: 'importer', ip: '127.0.0.1', port: 1 });
});

after(async () => {
  client.close();
  await scheduler.stop();
  peer.forceShutdown();
});

let n = 0;
function started(
  over: Partial<UploadPersistentCacheTaskStartedRequest> = {},
): UploadPersistentCacheTaskStartedRequest {
  return {
    hostId: 'importer',
    taskId: `task-${n++}`,
    peerId: `peer-${n++}`,
    persistentReplicaCount: 1,
    pieceLength: 4 * MiB,
    contentLength: 5 * MiB,
    pieceCount: 2,
    ttl: TTL,
    ...over,
  };
}

const call = {
  started: (r: UploadPersistentCacheTaskStartedRequest) =>
    unary<Empty>((cb) => client.uploadPersistentCacheTaskStarted(r, cb)),
  finished: (r: { hostId: string; taskId: string; peerId: string }) =>
    unary<PersistentCacheTask>((cb) => client.uploadPersistentCacheTaskFinished(r, cb)),
  failed: (r: { hostId: string; taskId: string; peerId: string }) =>
    unary<Empty>((cb) => client.uploadPersistentCacheTaskFailed(r, cb)),
  stat: (taskId: string) =>
    unary<PersistentCacheTask>((cb) => client.statPersistentCacheTask({ hostId: 'importer', taskId }, cb)),
};

test("UploadPersistentCacheTaskStarted checks Go's rules: replica count, piece length, TTL, known host", async () => {
  for (const [over, message] of [
    [{ persistentReplicaCount: 0 }, /persistent replica count must be at least 1/],
    [{ pieceLength: MiB }, /invalid PieceLength: value must be at least 4194304/],
    [{ ttl: { seconds: 299, nanos: 0 } }, /ttl must be between 5 minutes and 7 days/],
    [{ ttl: { seconds: 7 * 86400 + 1, nanos: 0 } }, /ttl must be between 5 minutes and 7 days/],
    [{ taskId: '' }, /invalid TaskId/],
  ] as const) {
    const e = await rejection(call.started(started(over)));
    assert.equal(e.code, GrpcStatus.INVALID_ARGUMENT, e.details);
    assert.match(e.details, message);
  }
  const unknown = await rejection(call.started(started({ hostId: 'nobody' })));
  assert.equal(unknown.code, GrpcStatus.NOT_FOUND);
  assert.equal(unknown.details, 'host nobody not found');
});

test('an upload: Started, Started again is ALREADY_EXISTS, Finished answers the task with its counts', async () => {
  const r = started();
  await call.started(r);
  const again = await rejection(call.started({ ...r, peerId: 'another' }));
  assert.equal(again.code, GrpcStatus.ALREADY_EXISTS);
  const task = await call.finished(r);
  assert.equal(task.state, 'Succeeded');
  assert.equal(task.currentPersistentReplicaCount, 1);
  assert.equal(task.currentReplicaCount, 1);
  assert.equal(task.contentLength, 5 * MiB);
  assert.deepEqual(task.ttl, TTL);
  assert.equal((await call.stat(r.taskId)).id, r.taskId);
});

test('a failed upload leaves no task (Go would mark it Succeeded)', async () => {
  const r = started();
  await call.started(r);
  await call.failed(r);
  const e = await rejection(call.stat(r.taskId));
  assert.equal(e.code, GrpcStatus.NOT_FOUND);
  assert.equal(e.details, `persistent cache task ${r.taskId} not found`);
});

test('an export of a task only its importer holds, from the importer itself: FAILED_PRECONDITION', async () => {
  const r = started();
  await call.started(r);
  await call.finished(r);
  const stream = client.announcePersistentCachePeer();
  const error = new Promise<ServiceError>((resolve) => stream.on('error', resolve));
  stream.on('data', (m: AnnouncePersistentCachePeerResponse) =>
    assert.fail(`unexpected ${JSON.stringify(m)}`),
  );
  stream.write({
    hostId: 'importer',
    taskId: r.taskId,
    peerId: 'exporter',
    registerPersistentCachePeerRequest: { persistent: false, pieceLength: 4 * MiB, pieceCount: 2 },
  });
  const e = await error;
  assert.equal(e.code, GrpcStatus.FAILED_PRECONDITION);
  assert.match(e.details, /no peer holds persistent cache task/);
});

test('replicas: a second host gets DownloadPersistentCacheTask{persistent}; again when a holder host leaves', async () => {
  await announceHost(client, { id: 'replica-host', ip: '127.0.0.1', port: peerPort });
  const r = started({ persistentReplicaCount: 2, tag: 't', application: 'a' });
  await call.started(r);
  placements.length = 0;
  await call.finished(r);
  const until = Date.now() + 5000;
  while (placements.length === 0 && Date.now() < until) await new Promise((res) => setTimeout(res, 20));
  assert.deepEqual(
    placements.map((p) => [p.taskId, p.persistent, p.tag, p.application]),
    [[r.taskId, true, 't', 'a']],
  );
  // The placed peer never registered (this stand-in fetches nothing): the need stays, and the importer's host
  // leaving makes the scheduler try again on the hosts left.
  placements.length = 0;
  scheduler.resources.deleteHost(scheduler.resources.hosts.get('importer')!);
  // Every task the importer held loses a persistent copy (the earlier tests' tasks too): each is placed again.
  const placed = () => placements.some((p) => p.taskId === r.taskId);
  while (!placed() && Date.now() < until + 5000) await new Promise((res) => setTimeout(res, 20));
  assert.ok(placed(), JSON.stringify(placements.map((p) => p.taskId)));
  await announceHost(client, { id: 'importer', ip: '127.0.0.1', port: 1 });
});

test('TTL: a task is forgotten at created_at + ttl', async () => {
  const store = new SqliteSchedulerStore(':memory:');
  const tasks = new PersistentCacheTasks({
    resources: new Resources(),
    log: pino({ level: 'silent' }),
    store,
  });
  try {
    tasks.create({
      id: 'short',
      persistentReplicaCount: 1,
      pieceLength: 4 * MiB,
      contentLength: 1,
      pieceCount: 1,
      ttlMs: 50,
    });
    assert.ok(tasks.get('short'));
    await new Promise((res) => setTimeout(res, 120));
    assert.equal(tasks.get('short'), undefined);
    assert.deepEqual(store.tasks(), [], 'the store forgets it too');
  } finally {
    tasks.close();
    store.close();
  }
});

// Found by test/interop/rust/dfcache.test.ts: the Rust client never half-closes AnnouncePersistentCachePeer; after
// its last request it waits until its request stream is dropped. grpc-js sent the trailers but left the HTTP/2 stream
// half-open, so a Rust export under our scheduler hung after its last piece. Raw HTTP/2, as the Rust transport talks.
for (const [name, terminal, code] of [
  ['after DownloadPersistentCachePeerFinished', true, '0'],
  ['after an error (an unknown host)', false, '5'],
] as const) {
  test(`AnnouncePersistentCachePeer: trailers, then RST_STREAM(NO_ERROR), ${name}`, async () => {
    const r = started();
    await call.started(r);
    await call.finished(r);
    await announceHost(client, { id: 'raw-exporter', ip: '127.0.0.1', port: 2 });
    const hostId = terminal ? 'raw-exporter' : 'nobody';
    const frame = (m: Partial<AnnouncePersistentCachePeerRequest>) => {
      const body = AnnouncePersistentCachePeerRequest.encode(
        AnnouncePersistentCachePeerRequest.fromPartial({
          hostId,
          taskId: r.taskId,
          peerId: 'raw-peer',
          ...m,
        }),
      ).finish();
      const head = Buffer.alloc(5);
      head.writeUInt32BE(body.length, 1);
      return Buffer.concat([head, body]);
    };
    const session = http2.connect(`http://127.0.0.1:${scheduler.listenPort}`);
    try {
      const stream = session.request({
        ':method': 'POST',
        ':path': '/scheduler.v2.Scheduler/AnnouncePersistentCachePeer',
        'content-type': 'application/grpc',
        te: 'trailers',
      });
      // The status comes in trailers, or in the headers of a trailers-only answer (an error before any message).
      const trailers: string[] = [];
      stream.on('response', (h) => {
        if (h['grpc-status'] !== undefined) trailers.push(String(h['grpc-status']));
      });
      stream.on('data', () => undefined);
      stream.on('trailers', (t) => trailers.push(String(t['grpc-status'])));
      const closed = new Promise<number>((resolve) => stream.on('close', () => resolve(stream.rstCode)));
      stream.write(
        frame({
          registerPersistentCachePeerRequest: { persistent: false, pieceLength: 4 * MiB, pieceCount: 2 },
        }),
      );
      if (terminal) {
        stream.write(frame({ downloadPersistentCachePeerStartedRequest: {} }));
        stream.write(frame({ downloadPersistentCachePeerFinishedRequest: {} }));
      }
      // The request side is never ended here.
      const rst = await Promise.race([
        closed,
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error('stream left open')), 3000)),
      ]);
      assert.equal(rst, http2.constants.NGHTTP2_NO_ERROR);
      assert.deepEqual(trailers, [code]);
    } finally {
      session.destroy();
    }
  });
}
