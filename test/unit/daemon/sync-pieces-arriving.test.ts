// SyncPieces with cut-through (storage.server.cutThrough): a piece still arriving from a parent is announced to a
// child, so the child can ask for it before it is whole. Real storage, a real gRPC server and client; the task
// manager is the one thing the upload service asks for besides storage, and here no run of the task is active.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { rmSync } from 'node:fs';
import { Server, ServerCredentials, credentials, type ServerWritableStream } from '@grpc/grpc-js';
import { pieceDigest } from '../../../src/core/digest.js';
import { DfdaemonUploadServiceImpl } from '../../../src/daemon/grpc/dfdaemon-upload.js';
import type { TaskManager } from '../../../src/daemon/task-manager.js';
import {
  DfdaemonUploadClient,
  DfdaemonUploadService,
  type SyncPiecesRequest,
  type SyncPiecesResponse,
} from '../../../src/gen/dfdaemon.js';
import { Storage } from '../../../src/storage/storage.js';
import { tempDir } from '../../helpers/daemon.js';

const PIECE = 256 * 1024;
const dir = tempDir('dft-sync-arriving-');
const taskId = createHash('sha256').update('sync-pieces-arriving').digest('hex');
const quiet = { info() {}, warn() {}, debug() {} };
let storage: Storage;
let server: Server;
let client: InstanceType<typeof DfdaemonUploadClient>;

before(async () => {
  storage = await Storage.open({ dir, keep: true, writeBufferSize: 64 * 1024, readBufferSize: 64 * 1024 });
  await storage.prepareTask(taskId, { contentLength: 2 * PIECE, pieceLength: PIECE, responseHeader: {} });
  const upload = new DfdaemonUploadServiceImpl({
    taskManager: { storage, activeRun: () => undefined } as unknown as TaskManager,
    download: undefined as never,
    pieceServer: () => ({ ip: '127.0.0.1', tcpPort: 4005 }),
    host: () => ({}) as never,
    callers: undefined as never,
    log: quiet,
  });
  server = new Server();
  server.addService(DfdaemonUploadService, {
    syncPieces: (call: ServerWritableStream<SyncPiecesRequest, SyncPiecesResponse>) =>
      void upload.syncPieces(call),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (e, p) =>
      e ? reject(e) : resolve(p),
    ),
  );
  client = new DfdaemonUploadClient(`127.0.0.1:${port}`, credentials.createInsecure());
});

after(async () => {
  client.close();
  await new Promise<void>((r) => server.tryShutdown(() => r()));
  storage.close();
  rmSync(dir, { recursive: true, force: true });
});

function sync(interested: number[]): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const got: number[] = [];
    const stream = client.syncPieces({ hostId: 'child', taskId, interestedPieceNumbers: interested });
    stream.on('data', (r: SyncPiecesResponse) => got.push(r.number));
    stream.on('end', () => resolve(got.sort((a, b) => a - b)));
    stream.on('error', reject);
  });
}

test('a piece arriving with relay on is announced before it is stored; one without relay only once stored', async () => {
  const data = Buffer.alloc(PIECE, 7);
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const source = async function* (): AsyncGenerator<Buffer> {
    yield data.subarray(0, PIECE / 2);
    await gate;
    yield data.subarray(PIECE / 2);
  };
  const relayed = storage.writePiece(taskId, { number: 1, offset: PIECE, length: PIECE }, source(), {
    trafficType: 1,
    parentId: 'parent',
    expectedDigest: pieceDigest(data),
    relay: true,
  });
  let gate2!: () => void;
  const plainGate = new Promise<void>((r) => (gate2 = r));
  const plain = storage.writePiece(
    taskId,
    { number: 0, offset: 0, length: PIECE },
    (async function* () {
      yield data.subarray(0, PIECE / 2);
      await plainGate;
      yield data.subarray(PIECE / 2);
    })(),
    { trafficType: 1, parentId: 'parent', expectedDigest: pieceDigest(data) },
  );
  while (!storage.arriving.get(taskId, 1)) await new Promise((r) => setTimeout(r, 5));
  assert.deepEqual(await sync([0, 1]), [1], 'the arriving piece, not the one written without relay');
  assert.equal(storage.getPiece(taskId, 1), undefined);
  release();
  gate2();
  await Promise.all([relayed, plain]);
  assert.deepEqual(await sync([0, 1]), [0, 1]);
});
