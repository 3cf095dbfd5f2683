import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Crc32 } from '../../../src/core/digest.js';
import { DfError } from '../../../src/core/errors.js';
import { Storage } from '../../../src/storage/storage.js';
import {
  VortexCode,
  decodePacket,
  encodeHeader,
  encodePacket,
  encodePieceContent,
} from '../../../src/vortex/codec.js';
import { downloadPiece, TcpPieceTransport } from '../../../src/vortex/piece-client.js';
import { VortexTcpServer, type VortexLogger } from '../../../src/vortex/piece-server.js';
import { UploadSlots } from '../../../src/vortex/upload-slots.js';

const MiB = 1024 * 1024;
const silent: VortexLogger = { debug() {}, info() {}, warn() {}, error() {} };

const taskA = createHash('sha256').update('vortex-test-task-a').digest('hex');
const taskB = createHash('sha256').update('vortex-test-task-b').digest('hex');
const A_PIECE = 4 * MiB;
const A_LENGTH = 2 * A_PIECE + 12_345;
const B_LENGTH = 16 * MiB;

/** Deterministic content: byte i of a task is a function of (seed, i), produced in chunks, never whole. */
async function* pattern(seed: number, offset: number, length: number): AsyncGenerator<Buffer> {
  const CHUNK = 256 * 1024;
  for (let at = 0; at < length; at += CHUNK) {
    const n = Math.min(CHUNK, length - at);
    const buf = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) {
      const x = offset + at + i;
      buf[i] = (x * 31 + seed + (x >>> 11)) & 0xff;
    }
    yield buf;
  }
}

async function sha256Of(
  source: AsyncIterable<Buffer>,
): Promise<{ sha: string; crc: string; length: number; maxChunk: number }> {
  const h = createHash('sha256');
  const crc = new Crc32();
  let length = 0;
  let maxChunk = 0;
  for await (const c of source) {
    h.update(c);
    crc.update(c);
    length += c.length;
    maxChunk = Math.max(maxChunk, c.length);
  }
  return { sha: h.digest('hex'), crc: crc.digest(), length, maxChunk };
}

let dir: string;
let storage: Storage;
let server: VortexTcpServer;
let port: number;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vortex-'));
  storage = await Storage.open({ dir, keep: true, writeBufferSize: 512 * 1024, readBufferSize: 512 * 1024 });
  await storage.prepareTask(taskA, { contentLength: A_LENGTH, pieceLength: A_PIECE, responseHeader: {} });
  for (let n = 0; n * A_PIECE < A_LENGTH; n++) {
    const offset = n * A_PIECE;
    const length = Math.min(A_PIECE, A_LENGTH - offset);
    await storage.writePiece(taskA, { number: n, offset, length }, pattern(1, offset, length), {
      trafficType: 0,
      parentId: n === 1 ? 'parent-peer-1' : undefined,
    });
  }
  await storage.prepareTask(taskB, { contentLength: B_LENGTH, pieceLength: B_LENGTH, responseHeader: {} });
  await storage.writePiece(taskB, { number: 0, offset: 0, length: B_LENGTH }, pattern(2, 0, B_LENGTH), {
    trafficType: 0,
  });
  server = new VortexTcpServer({ storage, ip: '127.0.0.1', port: 0, log: silent, requestTimeoutMs: 500 });
  port = await server.listen();
});

after(async () => {
  await server.close();
  storage.close();
  await rm(dir, { recursive: true, force: true });
});

test('downloads every piece byte-exact with the stored metadata', async () => {
  for (const record of storage.listPieces(taskA)) {
    const piece = await downloadPiece({
      ip: '127.0.0.1',
      port,
      taskId: taskA,
      number: record.number,
      timeoutMs: 5000,
    });
    assert.equal(piece.metadata.number, record.number);
    assert.equal(piece.metadata.offset, record.offset);
    assert.equal(piece.metadata.length, record.length);
    assert.equal(piece.metadata.digest, record.digest);
    assert.equal(piece.metadata.parentId, record.parentId ?? '');
    assert.equal(piece.metadata.trafficType, 1, 'upstream always sends REMOTE_PEER');
    assert.equal(piece.metadata.createdAt.getTime(), Math.floor(record.createdAt.getTime() / 1000) * 1000);
    const got = await sha256Of(piece.body);
    const want = await sha256Of(pattern(1, record.offset, record.length));
    assert.equal(got.length, record.length);
    assert.equal(got.sha, want.sha);
    assert.equal(got.crc, record.digest);
  }
});

test('a 16 MiB piece is streamed, not buffered', async () => {
  const before = process.memoryUsage().arrayBuffers;
  const piece = await downloadPiece({ ip: '127.0.0.1', port, taskId: taskB, number: 0, timeoutMs: 20_000 });
  // Nobody reads for a while: with backpressure the server stops after a few socket buffers.
  await new Promise((r) => setTimeout(r, 300));
  const grown = process.memoryUsage().arrayBuffers - before;
  assert.ok(grown < 8 * MiB, `buffers grew by ${(grown / MiB).toFixed(1)} MiB while the body was not read`);
  const got = await sha256Of(piece.body);
  const want = await sha256Of(pattern(2, 0, B_LENGTH));
  assert.equal(got.length, B_LENGTH);
  assert.equal(got.sha, want.sha);
  assert.equal(got.crc, piece.metadata.digest);
  assert.ok(got.maxChunk <= 4 * MiB, `largest chunk ${got.maxChunk}`);
});

test('missing pieces, unknown tasks and persistent kinds are PIECE_NOT_FOUND', async () => {
  const unknownTask = 'f'.repeat(64);
  for (const [taskId, number, kind] of [
    [taskA, 99, 'standard'],
    [unknownTask, 0, 'standard'],
    [taskA, 0, 'persistent'],
    [taskA, 0, 'persistent-cache'],
  ] as const) {
    await assert.rejects(
      downloadPiece({ ip: '127.0.0.1', port, taskId, number, timeoutMs: 5000, kind }),
      (e: unknown) => {
        assert.ok(e instanceof DfError);
        assert.equal(e.code, 'PIECE_NOT_FOUND');
        assert.match(e.message, new RegExp(`piece ${taskId}-${number} not found`));
        return true;
      },
    );
  }
});

/** Sends raw bytes and collects what the server answers until it closes (or `waitMs` passes). */
async function rawExchange(
  bytes: Buffer,
  options: { halfClose?: boolean; waitMs?: number } = {},
): Promise<{ data: Buffer; closed: boolean }> {
  const socket = connect({ host: '127.0.0.1', port });
  await once(socket, 'connect');
  const parts: Buffer[] = [];
  socket.on('data', (c: Buffer) => parts.push(c));
  socket.on('error', () => {});
  socket.write(bytes);
  if (options.halfClose) socket.end();
  const closed = await Promise.race([
    once(socket, 'close').then(() => true),
    new Promise<boolean>((r) => setTimeout(() => r(false), options.waitMs ?? 3000)),
  ]);
  socket.destroy();
  return { data: Buffer.concat(parts), closed };
}

function assertErrorPacket(data: Buffer, code: number, pattern: RegExp): void {
  const packet = decodePacket(data);
  assert.equal(packet.kind, 'error');
  if (packet.kind !== 'error') return;
  assert.equal(packet.code, code);
  assert.match(packet.message, pattern);
}

test('malformed requests get an Error packet or a close, and the server keeps serving', async () => {
  // Garbage: a DownloadPiece header announcing the wrong length.
  const garbage = Buffer.concat([Buffer.from([0x11, 0x00, 0x00, 0x00, 0x00, 0x10]), Buffer.alloc(16, 0xab)]);
  let r = await rawExchange(garbage);
  assert.ok(r.closed);
  assertErrorPacket(r.data, VortexCode.InvalidArgument, /expected 68 bytes for DownloadPiece, got 16/);

  // An Error packet announcing 4 GiB - 1: refused from the header, nothing allocated.
  r = await rawExchange(encodeHeader({ id: 1, tag: 255, length: 0xffff_ffff }));
  assert.ok(r.closed);
  assertErrorPacket(r.data, VortexCode.InvalidArgument, /exceeds/);

  // Tags the server does not serve (DownloadCachePiece, a response, Close).
  for (const tag of [6, 1, 254]) {
    const bytes =
      tag === 6
        ? encodePacket({ kind: 'download', id: 0, tag: 6, taskId: taskA, number: 0 })
        : tag === 1
          ? Buffer.concat([encodeHeader({ id: 0, tag: 1, length: 4 }), Buffer.from([0, 0, 0, 0])])
          : encodePacket({ kind: 'close', id: 0 });
    r = await rawExchange(bytes);
    assert.ok(r.closed, `tag ${tag}`);
    if (tag === 1)
      assertErrorPacket(r.data, VortexCode.InvalidArgument, /insufficient bytes for piece number/);
    else assertErrorPacket(r.data, VortexCode.InvalidArgument, /unsupported tag/);
  }

  // Invalid UTF-8 in the task id.
  const badUtf8 = encodePacket({ kind: 'download', id: 0, tag: 0, taskId: taskA, number: 0 });
  badUtf8[6] = 0xff;
  r = await rawExchange(badUtf8);
  assertErrorPacket(r.data, VortexCode.InvalidArgument, /invalid utf-8/);

  // Truncated request, connection left open: closed by the request timeout (500 ms here), no answer.
  const request = encodePacket({ kind: 'download', id: 0, tag: 0, taskId: taskA, number: 0 });
  const started = Date.now();
  r = await rawExchange(request.subarray(0, 30));
  assert.ok(r.closed, 'closed by the request timeout');
  assert.equal(r.data.length, 0);
  assert.ok(Date.now() - started < 2500);

  // Truncated request, then the client's end: closed at once.
  r = await rawExchange(request.subarray(0, 3), { halfClose: true });
  assert.ok(r.closed);
  assert.equal(r.data.length, 0);

  // A half-closed but complete request still gets the whole answer.
  r = await rawExchange(request, { halfClose: true });
  assert.ok(r.closed);
  const record = storage.getPiece(taskA, 0)!;
  assert.equal(r.data.readUInt8(1), 1);
  assert.equal(r.data.length, 6 + r.data.readUInt32BE(2) + record.length);

  const piece = await downloadPiece({ ip: '127.0.0.1', port, taskId: taskA, number: 2, timeoutMs: 5000 });
  assert.equal((await sha256Of(piece.body)).crc, piece.metadata.digest);
});

test('many concurrent downloads', async () => {
  const results = await Promise.all(
    Array.from({ length: 24 }, (_, i) =>
      downloadPiece({ ip: '127.0.0.1', port, taskId: taskA, number: i % 3, timeoutMs: 10_000 }).then(
        async (p) => ({
          digest: p.metadata.digest,
          crc: (await sha256Of(p.body)).crc,
        }),
      ),
    ),
  );
  for (const r of results) assert.equal(r.crc, r.digest);
});

test('the upload limiter is taken per piece with the piece length', async () => {
  const taken: number[] = [];
  const limited = new VortexTcpServer({
    storage,
    ip: '127.0.0.1',
    port: 0,
    log: silent,
    uploadLimiter: { acquire: async (bytes) => void taken.push(bytes) },
  });
  const limitedPort = await limited.listen();
  try {
    const p = await downloadPiece({
      ip: '127.0.0.1',
      port: limitedPort,
      taskId: taskA,
      number: 2,
      timeoutMs: 5000,
    });
    await sha256Of(p.body);
    assert.deepEqual(taken, [storage.getPiece(taskA, 2)!.length]);
  } finally {
    await limited.close();
  }
});

test('a request waiting for an upload slot longer than the request timeout is still served', async () => {
  // One slot, held by hand for 3 × the request timeout: the queued child must get its piece, not a closed
  // connection (which made children give up the only holder of a fresh piece in a 32-peer swarm).
  const slots = new UploadSlots({ slots: 1 });
  const release = await slots.acquire('other-task', 0, 1);
  const queued = new VortexTcpServer({
    storage,
    ip: '127.0.0.1',
    port: 0,
    log: silent,
    requestTimeoutMs: 200,
    uploadSlots: slots,
  });
  const queuedPort = await queued.listen();
  try {
    setTimeout(release, 600);
    const p = await downloadPiece({
      ip: '127.0.0.1',
      port: queuedPort,
      taskId: taskA,
      number: 2,
      timeoutMs: 5000,
    });
    const got = await sha256Of(p.body);
    assert.equal(got.crc, storage.getPiece(taskA, 2)!.digest);
  } finally {
    await queued.close();
  }
});

test('a parent whose upload queue is full answers busy: RESOURCE_EXHAUSTED, retryable, at once', async () => {
  const slots = new UploadSlots({ slots: 1, maxWaiting: 0 });
  const release = await slots.acquire('other-task', 0, 1);
  const busy = new VortexTcpServer({ storage, ip: '127.0.0.1', port: 0, log: silent, uploadSlots: slots });
  const busyPort = await busy.listen();
  try {
    const started = performance.now();
    await assert.rejects(
      downloadPiece({ ip: '127.0.0.1', port: busyPort, taskId: taskA, number: 2, timeoutMs: 5000 }),
      (e: unknown) => {
        assert.ok(e instanceof DfError);
        assert.equal(e.code, 'RESOURCE_EXHAUSTED');
        assert.equal(e.retryable, true);
        assert.match(e.message, /busy: 0 requests are waiting for an upload slot/);
        return true;
      },
    );
    assert.ok(performance.now() - started < 2000, 'answered at once, not after a wait');
    release();
    const p = await downloadPiece({
      ip: '127.0.0.1',
      port: busyPort,
      taskId: taskA,
      number: 2,
      timeoutMs: 5000,
    });
    assert.equal(
      (await sha256Of(p.body)).crc,
      storage.getPiece(taskA, 2)!.digest,
      'served once a slot is free',
    );
  } finally {
    await busy.close();
  }
});

/** A fake parent that runs `onConnection` for every connection. */
async function fakeParent(onConnection: (socket: Socket) => void): Promise<{ server: Server; port: number }> {
  const fake = createServer(onConnection);
  fake.listen(0, '127.0.0.1');
  await once(fake, 'listening');
  const address = fake.address();
  return { server: fake, port: typeof address === 'object' && address ? address.port : 0 };
}

function closeServer(s: Server): Promise<void> {
  return new Promise((r) => s.close(() => r()));
}

test('client: a silent parent times out (retryable), bounded by timeoutMs', async () => {
  const sockets: Socket[] = [];
  const fake = await fakeParent((s) => sockets.push(s));
  try {
    const started = Date.now();
    await assert.rejects(
      downloadPiece({ ip: '127.0.0.1', port: fake.port, taskId: taskA, number: 0, timeoutMs: 300 }),
      (e: unknown) => e instanceof DfError && e.code === 'TIMEOUT' && e.retryable,
    );
    assert.ok(Date.now() - started < 2000);
  } finally {
    for (const s of sockets) s.destroy();
    await closeServer(fake.server);
  }
});

test('client: a truncated body fails the iteration; refused and cancelled downloads are DfErrors', async () => {
  const metadata = encodePieceContent({
    number: 0,
    offset: 0n,
    length: 100n,
    digest: 'crc32:1',
    parentId: '',
    trafficType: 1,
    costSecs: 0n,
    createdAt: 1693152000,
  });
  const fake = await fakeParent((s) => {
    s.once('data', () => {
      s.end(
        Buffer.concat([encodeHeader({ id: 0, tag: 1, length: metadata.length }), metadata, Buffer.alloc(50)]),
      );
    });
  });
  try {
    const piece = await downloadPiece({
      ip: '127.0.0.1',
      port: fake.port,
      taskId: taskA,
      number: 0,
      timeoutMs: 2000,
    });
    assert.equal(piece.metadata.length, 100);
    await assert.rejects(
      sha256Of(piece.body),
      (e: unknown) => e instanceof DfError && e.code === 'IO' && e.retryable,
    );
  } finally {
    await closeServer(fake.server);
  }

  await assert.rejects(
    downloadPiece({ ip: '127.0.0.1', port: fake.port, taskId: taskA, number: 0, timeoutMs: 2000 }),
    (e: unknown) => e instanceof DfError && e.code === 'UNAVAILABLE' && e.retryable,
  );

  const controller = new AbortController();
  const pending = downloadPiece({
    ip: '127.0.0.1',
    port,
    taskId: taskB,
    number: 0,
    timeoutMs: 5000,
    signal: controller.signal,
  });
  const piece = await pending;
  controller.abort();
  await assert.rejects(sha256Of(piece.body), (e: unknown) => e instanceof DfError && e.code === 'CANCELLED');

  await assert.rejects(
    new TcpPieceTransport().downloadPiece({
      ip: '127.0.0.1',
      port,
      taskId: 'short',
      number: 0,
      timeoutMs: 1000,
    }),
    (e: unknown) => e instanceof DfError && e.code === 'INVALID_ARGUMENT',
  );
});

test('close() ends open connections', async () => {
  const own = new VortexTcpServer({ storage, ip: '127.0.0.1', port: 0, log: silent });
  const ownPort = await own.listen();
  const socket = connect({ host: '127.0.0.1', port: ownPort });
  socket.on('error', () => {});
  await once(socket, 'connect');
  await new Promise((r) => setTimeout(r, 20));
  const closed = once(socket, 'close');
  await own.close();
  await closed;
  await assert.rejects(
    downloadPiece({ ip: '127.0.0.1', port: ownPort, taskId: taskA, number: 0, timeoutMs: 1000 }),
  );
});
