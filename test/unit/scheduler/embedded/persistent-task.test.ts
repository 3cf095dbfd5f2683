// The embedded scheduler's persistent task RPCs (dfstore; persistent-task.ts over the persistent cache registry)
// through a real grpc-js client: the upload states under the persistent names, Stat and Delete, an export no peer
// can serve sent back to its object store (NeedBackToSource, not FAILED_PRECONDITION as for a persistent cache
// task), an export served by the importer, and replica placement with the task's object (url, ObjectStorage) on
// another host's upload port (a real DfdaemonUpload server standing for the peer).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Server, status as GrpcStatus, type ServerWritableStream } from '@grpc/grpc-js';
import { pino } from 'pino';
import type { PersistentTask } from '../../../../src/gen/common.js';
import { type DownloadPersistentTaskRequest } from '../../../../src/gen/dfdaemon.js';
import type { Empty } from '../../../../src/gen/google/protobuf/empty.js';
import type {
  AnnouncePersistentPeerResponse,
  SchedulerClient,
  UploadPersistentTaskStartedRequest,
} from '../../../../src/gen/scheduler.js';
import { unary } from '../../../../src/cli/daemon-client.js';
import { EmbeddedScheduler } from '../../../../src/scheduler/embedded/scheduler-server.js';
import { announceHost, schedulerClient } from '../../../helpers/scheduler-client.js';
import { rejection, startUploadStandIn } from '../../../helpers/upload-stand-in.js';

const MiB = 1024 * 1024;
const TTL = { seconds: 3600, nanos: 0 };
const STORAGE = {
  region: 'us-east-1',
  endpoint: 'http://127.0.0.1:9',
  accessKeyId: 'id',
  accessKeySecret: 's',
};

let scheduler: EmbeddedScheduler;
let client: SchedulerClient;
let peer: Server;
let peerPort: number;
const placements: DownloadPersistentTaskRequest[] = [];

before(async () => {
  ({ server: peer, port: peerPort } = await startUploadStandIn({
    downloadPersistentTask: (call: ServerWritableStream<DownloadPersistentTaskRequest, unknown>) => {
      placements.push(call.request);
      call.end();
    },
  }));
  scheduler = new EmbeddedScheduler({ ip: '127.0.0.1', port: 0, log: pino({ level: 'silent' }) });
  client = schedulerClient(await scheduler.start());
  await announceHost(client, { id: 'importer', ip: '127.0.0.1', port: 1 });
  await announceHost(client, { id: 'exporter', ip: '127.0.0.1', port: 2 });
});

after(async () => {
  client.close();
  await scheduler.stop();
  peer.forceShutdown();
});

let n = 0;
function started(over: Partial<UploadPersistentTaskStartedRequest> = {}): UploadPersistentTaskStartedRequest {
  return {
    hostId: 'importer',
    taskId: `ptask-${n++}`,
    peerId: `ppeer-${n++}`,
    url: 's3://bucket/key',
    objectStorage: STORAGE,
    persistentReplicaCount: 1,
    contentLength: 5 * MiB,
    pieceCount: 2,
    ttl: TTL,
    ...over,
  };
}

const call = {
  started: (r: UploadPersistentTaskStartedRequest) =>
    unary<Empty>((cb) => client.uploadPersistentTaskStarted(r, cb)),
  finished: (r: { hostId: string; taskId: string; peerId: string }) =>
    unary<PersistentTask>((cb) => client.uploadPersistentTaskFinished(r, cb)),
  failed: (r: { hostId: string; taskId: string; peerId: string }) =>
    unary<Empty>((cb) => client.uploadPersistentTaskFailed(r, cb)),
  stat: (taskId: string) =>
    unary<PersistentTask>((cb) => client.statPersistentTask({ hostId: 'importer', taskId }, cb)),
  delete: (taskId: string) =>
    unary<Empty>((cb) => client.deletePersistentTask({ hostId: 'importer', taskId }, cb)),
};

/** Registers `hostId` as an exporter of the task; resolves with the scheduler's first answer. */
function register(taskId: string, hostId: string): Promise<AnnouncePersistentPeerResponse> {
  const stream = client.announcePersistentPeer();
  return new Promise((resolve, reject) => {
    stream.on('data', (m: AnnouncePersistentPeerResponse) => {
      resolve(m);
      stream.write({ hostId, taskId, peerId: `exp-${n}`, downloadPersistentPeerFailedRequest: {} });
      stream.end();
    });
    stream.on('error', reject);
    stream.write({
      hostId,
      taskId,
      peerId: `exp-${n}`,
      registerPersistentPeerRequest: {
        url: 's3://bucket/key',
        objectStorage: STORAGE,
        persistent: false,
        pieceCount: 2,
        needBackToSource: false,
      },
    });
  });
}

test('UploadPersistentTaskStarted checks the replica count, the TTL, the url and the host', async () => {
  for (const [over, message] of [
    [{ persistentReplicaCount: 0 }, /persistent replica count must be at least 1/],
    [{ ttl: { seconds: 299, nanos: 0 } }, /ttl must be between 5 minutes and 7 days/],
    [{ url: '' }, /invalid Url/],
    [{ taskId: '' }, /invalid TaskId/],
  ] as const) {
    const e = await rejection(call.started(started(over)));
    assert.equal(e.code, GrpcStatus.INVALID_ARGUMENT, e.details);
    assert.match(e.details, message);
  }
  assert.equal((await rejection(call.started(started({ hostId: 'nobody' })))).code, GrpcStatus.NOT_FOUND);
});

test('an upload under the persistent names: Started, ALREADY_EXISTS, Finished, Stat, Delete', async () => {
  const r = started();
  await call.started(r);
  assert.equal((await rejection(call.started({ ...r, peerId: 'again' }))).code, GrpcStatus.ALREADY_EXISTS);
  const task = await call.finished(r);
  assert.equal(task.state, 'Succeeded');
  assert.equal(task.currentPersistentReplicaCount, 1);
  assert.equal(task.contentLength, 5 * MiB);
  assert.equal(task.pieceCount, 2);
  assert.deepEqual(task.ttl, TTL);
  assert.equal((await call.stat(r.taskId)).id, r.taskId);
  await call.delete(r.taskId);
  const gone = await rejection(call.stat(r.taskId));
  assert.equal(gone.code, GrpcStatus.NOT_FOUND);
  assert.equal(gone.details, `persistent task ${r.taskId} not found`);
});

test('a failed upload leaves no task', async () => {
  const r = started();
  await call.started(r);
  await call.failed(r);
  assert.equal((await rejection(call.stat(r.taskId))).code, GrpcStatus.NOT_FOUND);
});

test('an exporter gets the importer as its parent; with no other holder, NeedBackToSource', async () => {
  const r = started();
  await call.started(r);
  await call.finished(r);
  const fromPeer = await register(r.taskId, 'exporter');
  assert.deepEqual(
    fromPeer.normalPersistentTaskResponse?.candidateParents.map((p) => p.host?.id),
    ['importer'],
  );
  const alone = await register(r.taskId, 'importer');
  assert.ok(alone.needBackToSourceResponse, JSON.stringify(alone));
});

test('replicas are placed with the object: DownloadPersistentTask{url, objectStorage, persistent}', async () => {
  await announceHost(client, { id: 'replica-host', ip: '127.0.0.1', port: peerPort });
  // Two more replicas: both other hosts are asked (the exporter's port answers nobody), so the stand-in is.
  const r = started({ persistentReplicaCount: 3 });
  await call.started(r);
  placements.length = 0;
  await call.finished(r);
  const until = Date.now() + 5000;
  while (placements.length === 0 && Date.now() < until) await new Promise((res) => setTimeout(res, 20));
  assert.deepEqual(
    placements.map((p) => [p.url, p.objectStorage?.endpoint, p.objectStorage?.region, p.persistent]),
    [['s3://bucket/key', STORAGE.endpoint, STORAGE.region, true]],
  );
});
