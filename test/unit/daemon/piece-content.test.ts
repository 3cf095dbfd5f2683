// Piece content to transfer-mode clients (src/daemon/grpc/piece-content.ts): the shared byte budget, the message
// encoded by hand around the content, the service definition that lets DownloadTask take encoded messages, and the
// sender over a real gRPC stream.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { credentials, Server, ServerCredentials, type ServerWritableStream } from '@grpc/grpc-js';
import { BaseServerInterceptingCall } from '@grpc/grpc-js/build/src/server-interceptors.js';
import {
  ByteBudget,
  encodePieceResponseHead,
  PieceContentSender,
} from '../../../src/daemon/grpc/piece-content.js';
import {
  acceptFramedResponses,
  FRAME_PREFIX_BYTES,
  framedMessage,
  passFramedResponses,
} from '../../../src/grpc/framed-responses.js';
import {
  DfdaemonDownloadClient,
  DfdaemonDownloadService,
  DownloadTaskResponse,
} from '../../../src/gen/dfdaemon.js';

const tick = () => new Promise((r) => setImmediate(r));

test('ByteBudget grants in order, never beyond its capacity, and gives an oversized request the whole budget', async () => {
  const budget = new ByteBudget(10);
  const never = new AbortController().signal;
  const a = await budget.acquire(6, never);
  const order: string[] = [];
  const b = budget.acquire(6, never).then((r) => (order.push('b'), r));
  // c would fit now (6 + 3 <= 10) but b asked first: no overtaking.
  const c = budget.acquire(3, never).then((r) => (order.push('c'), r));
  await tick();
  assert.deepEqual(order, []);
  assert.equal(budget.used, 6);
  a();
  a(); // idempotent
  const rb = await b;
  const rc = await c;
  assert.deepEqual(order, ['b', 'c']);
  assert.equal(budget.used, 9);
  rb();
  rc();
  assert.equal(budget.used, 0);
  // Larger than the whole budget: granted alone, as the whole budget.
  const big = await budget.acquire(1000, never);
  assert.equal(budget.used, 10);
  const small = budget.acquire(1, never);
  await tick();
  assert.equal(budget.used, 10);
  big();
  (await small)();
  assert.equal(budget.used, 0);
});

test('ByteBudget: a waiting request whose signal aborts leaves the queue and lets the next one through', async () => {
  const budget = new ByteBudget(4);
  const never = new AbortController().signal;
  const held = await budget.acquire(3, never);
  const ac = new AbortController();
  const waiting = budget.acquire(4, ac.signal);
  const next = budget.acquire(1, never);
  await tick();
  ac.abort(new Error('client went away'));
  await assert.rejects(waiting, /client went away/);
  const r = await next;
  assert.equal(budget.used, 4);
  r();
  held();
  assert.equal(budget.used, 0);
  await assert.rejects(budget.acquire(1, ac.signal), /client went away/);
  assert.throws(() => new ByteBudget(0), /positive/);
});

test('a piece message encoded around its content decodes as DownloadTaskResponse, for small and large parts', () => {
  const ids = { hostId: 'h'.repeat(64), taskId: 't'.repeat(64), peerId: '127.0.0.1-host-' + 'p'.repeat(36) };
  for (const length of [0, 1, 127, 128, 16_383, 16_384, 512 * 1024, 4 * 1024 * 1024 + 3]) {
    const piece = {
      number: 7,
      parentId: 'parent',
      offset: 2 ** 40 + 5,
      length,
      digest: 'crc32:123',
      trafficType: 2,
      cost: { seconds: 1, nanos: 5 },
      createdAt: new Date(1_700_000_000_000),
    };
    const head = encodePieceResponseHead(ids, piece, length);
    const content = Buffer.alloc(length, 0xab);
    const decoded = DownloadTaskResponse.decode(Buffer.concat([head, content]));
    assert.equal(decoded.hostId, ids.hostId);
    assert.equal(decoded.taskId, ids.taskId);
    assert.equal(decoded.peerId, ids.peerId);
    const p = decoded.downloadPieceFinishedResponse?.piece;
    assert.ok(p, `piece of ${length}`);
    assert.equal(p.number, 7);
    assert.equal(p.parentId, 'parent');
    assert.equal(p.offset, 2 ** 40 + 5);
    assert.equal(p.length, length);
    assert.equal(p.digest, 'crc32:123');
    assert.equal(p.trafficType, 2);
    assert.deepEqual(p.cost, { seconds: 1, nanos: 5 });
    assert.equal(p.createdAt?.getTime(), 1_700_000_000_000);
    assert.equal(p.content?.length, length);
    assert.ok(Buffer.from(p.content!).equals(content));
  }
});

test('acceptFramedResponses: DownloadTask passes a Buffer through, a framed one without its prefix, and still encodes messages; others unchanged', () => {
  const def = acceptFramedResponses(DfdaemonDownloadService, 'downloadTask');
  const raw = Buffer.from([1, 2, 3]);
  assert.equal(def.downloadTask.responseSerialize(raw as never), raw);
  const frame = framedMessage(Buffer.from([9, 9, 9, 9, 9, 1, 2, 3]));
  assert.deepEqual([...frame.subarray(0, FRAME_PREFIX_BYTES)], [0, 0, 0, 0, 3]);
  assert.deepEqual([...def.downloadTask.responseSerialize(frame as never)], [1, 2, 3]);
  const msg = { hostId: 'h', taskId: 't', peerId: 'p' };
  assert.deepEqual(
    def.downloadTask.responseSerialize(msg),
    DfdaemonDownloadService.downloadTask.responseSerialize(msg),
  );
  assert.equal(def.statTask, DfdaemonDownloadService.statTask);
  assert.equal(
    DfdaemonDownloadService.downloadTask.responseSerialize === def.downloadTask.responseSerialize,
    false,
  );
});

// scripts/gen.mjs patches ts-proto's decoders: a bytes field is a view of the message buffer. A copy there cost
// dfget a second copy of every byte in --transfer-from-dfdaemon (and the garbage that made V8 collect).
test('a decoded piece content is a view of the message buffer, not a copy', () => {
  const ids = { hostId: 'h', taskId: 't', peerId: 'p' };
  const piece = {
    number: 0,
    parentId: '',
    offset: 0,
    length: 4,
    digest: '',
    trafficType: 0,
    cost: undefined,
    createdAt: undefined,
  };
  const message = Buffer.concat([encodePieceResponseHead(ids, piece, 4), Buffer.from([1, 2, 3, 4])]);
  const content = DownloadTaskResponse.decode(message).downloadPieceFinishedResponse!.piece!.content!;
  assert.ok(Buffer.isBuffer(content));
  assert.equal(content.buffer, message.buffer);
  assert.deepEqual([...content], [1, 2, 3, 4]);
});

// PieceContentSender over a real gRPC stream: the parts of a piece arrive whole and in order, and a stream reads no
// part before grpc-js has taken the one before (reading one part ahead was tried for issue 12: it cost dfdaemon
// ~1.4 CPU-s more per cold GiB in --transfer-from-dfdaemon, measured A/B, and was dropped). The sender uses one
// pooled frame again for every part: a part that reached the client wrong would show a buffer reused too early.
// With passFramedResponses the frames go to HTTP/2 as they are (grpc-js frames none itself: counted; this fails if
// a grpc-js update moves the method grpc/framed-responses.ts replaces);
// without it, grpc-js's serializer gets the message without its prefix and frames a copy.
for (const passThrough of [true, false]) {
  test(`PieceContentSender: parts arrive in order over a real gRPC stream, none read before the last was taken (${passThrough ? 'frames passed through' : "grpc-js's framing"})`, async () => {
    await sendPieceOverGrpc(passThrough);
  });
}

async function sendPieceOverGrpc(passThrough: boolean): Promise<void> {
  const chunk = 64 * 1024;
  const content = Buffer.alloc(10 * chunk + 123);
  for (let i = 0; i < content.length; i++) content[i] = (i * 7 + (i >> 12)) & 0xff;
  const sender = new PieceContentSender({ capacity: 8 * chunk, chunkSize: chunk });
  let reading = 0;
  let written = 0;
  let maxAhead = 0;
  const reader = {
    async read(offset: number, target: Buffer) {
      reading++;
      maxAhead = Math.max(maxAhead, reading - written);
      await new Promise((r) => setImmediate(r));
      content.copy(target, 0, offset, offset + target.length);
    },
  };
  const server = new Server(
    passThrough
      ? { interceptors: [passFramedResponses(new Set(['/dfdaemon.v2.DfdaemonDownload/DownloadTask']))] }
      : {},
  );
  server.addService(acceptFramedResponses(DfdaemonDownloadService, 'downloadTask'), {
    downloadTask: (call: ServerWritableStream<unknown, DownloadTaskResponse>) => {
      const ids = { hostId: 'h', taskId: 't', peerId: 'p' };
      const piece = {
        number: 3,
        parentId: '',
        offset: 0,
        length: content.length,
        digest: '',
        trafficType: 0,
        cost: undefined,
        createdAt: undefined,
      };
      const written0 = call.write.bind(call);
      call.write = ((m: unknown, cb?: (e?: Error | null) => void) =>
        written0(m as DownloadTaskResponse, (e?: Error | null) => {
          written++;
          cb?.(e);
        })) as typeof call.write;
      const signal = new AbortController().signal;
      sender.send(call, ids, piece, reader, true, signal).then(
        () => call.end(),
        (e: Error) => call.destroy(e),
      );
    },
  } as never);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (e, p) =>
      e ? reject(e) : resolve(p),
    ),
  );
  const client = new DfdaemonDownloadClient(`127.0.0.1:${port}`, credentials.createInsecure());
  // grpc-js frames each message in a new buffer in its base call's serializeMessage: count the parts it framed.
  const proto = BaseServerInterceptingCall.prototype as unknown as { serializeMessage(v: unknown): Buffer };
  const serializeMessage = proto.serializeMessage;
  let grpcFrames = 0;
  proto.serializeMessage = function (this: unknown, v: unknown) {
    if (Buffer.isBuffer(v)) grpcFrames++;
    return serializeMessage.call(this, v);
  };
  try {
    const got: Buffer[] = [];
    const offsets: number[] = [];
    const call = client.downloadTask({} as never);
    for await (const res of call as AsyncIterable<DownloadTaskResponse>) {
      const p = res.downloadPieceFinishedResponse!.piece!;
      assert.equal(p.number, 3);
      offsets.push(p.offset);
      got.push(Buffer.from(p.content!));
    }
    assert.deepEqual(
      offsets,
      Array.from({ length: 11 }, (_, i) => i * chunk),
    );
    assert.ok(Buffer.concat(got).equals(content));
    assert.ok(maxAhead <= 1, `read ${maxAhead} parts ahead of the writes`);
    assert.equal(sender.budget.used, 0);
    if (passThrough) assert.equal(grpcFrames, 0, 'grpc-js framed no part itself');
    else assert.ok(grpcFrames >= 10, `grpc-js framed ${grpcFrames} parts`);
  } finally {
    proto.serializeMessage = serializeMessage;
    client.close();
    server.forceShutdown();
  }
}
