// The gRPC server helpers (grpc/server.ts) against connections that stall. Found by the dfdaemon gRPC fuzz
// (test/integration/dfdaemon-grpc.fuzz.test.ts): such connections were held forever, each against the listener's
// connection cap; the HTTP/2 keepalive (upstream's 300 s + 20 s, shortened here) now closes them.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Server } from '@grpc/grpc-js';
import {
  KEEPALIVE,
  bindTcp,
  bindUnixSocket,
  createGrpcServer,
  shutdownGrpcServer,
  type UnixSocketListener,
} from '../../../src/grpc/server.js';
import { DfdaemonDownloadService, StatTaskRequest } from '../../../src/gen/dfdaemon.js';
import { captureGrpcRequest } from '../../helpers/proto-fuzz.js';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
const SETTINGS = Buffer.from('000000040000000000', 'hex');
/** A HEADERS frame announcing 0x8d bytes, cut after a few: the server's HTTP/2 parser waits mid-frame. */
const CUT_HEADERS = Buffer.from('00008d010400000001418b089d5c', 'hex');

const STALLS: Record<string, Buffer> = {
  'no byte at all': Buffer.alloc(0),
  'half a preface': PREFACE.subarray(0, 10),
  'a preface and SETTINGS, then nothing': Buffer.concat([PREFACE, SETTINGS]),
  'a request cut mid-frame': Buffer.concat([PREFACE, SETTINGS, CUT_HEADERS]),
};

/** A real StatTask request (captured before the tests) whose message is cut: a call open, waiting for its body. */
let cutMessage: Buffer;

/** The request up to its DATA frame, and half of that frame: the call is open, its message incomplete. */
function cutInData(request: Buffer): Buffer {
  let at = PREFACE.length;
  while (at + 9 <= request.length) {
    const length = request.readUIntBE(at, 3);
    if (request[at + 3] === 0 /* DATA */) return request.subarray(0, at + 9 + Math.floor(length / 2));
    at += 9 + length;
  }
  throw new Error('no DATA frame in the captured request');
}

let server: Server;
let port: number;
let dir: string;
let socket: UnixSocketListener;

before(async () => {
  const request = await captureGrpcRequest(
    '/dfdaemon.v2.DfdaemonDownload/StatTask',
    Buffer.from(StatTaskRequest.encode({ taskId: 'a'.repeat(64) }).finish()),
  );
  cutMessage = cutInData(request);
  STALLS['a call whose message is cut'] = cutMessage;
  server = createGrpcServer(
    [
      {
        definition: DfdaemonDownloadService,
        implementation: { statTask: (_call: unknown, cb: (e: null, r: object) => void) => cb(null, {}) },
        name: 'dfdaemon.v2.DfdaemonDownload',
      },
    ],
    { keepalive: { timeMs: 300, timeoutMs: 300 } },
  );
  port = await bindTcp(server, '127.0.0.1', 0, {}, { maxConnections: 100 });
  dir = mkdtempSync(join(tmpdir(), 'grpc-server-'));
  socket = await bindUnixSocket(server, join(dir, 's.sock'));
});

after(async () => {
  await shutdownGrpcServer(server, 1000);
  await socket.close();
  rmSync(dir, { recursive: true, force: true });
});

test('the keepalive is upstream’s: a ping every 300 s, 20 s to answer', () => {
  assert.deepEqual(KEEPALIVE, { timeMs: 300_000, timeoutMs: 20_000 });
});

for (const [listener, open] of [
  ['TCP', () => connect(port, '127.0.0.1')],
  ['unix socket', () => connect(join(dir, 's.sock'))],
] as const) {
  for (const what of [...Object.keys(STALLS), 'a call whose message is cut']) {
    for (const halfClose of [false, true]) {
      test(`${listener}: a client that sends ${what}${halfClose ? ' and half-closes' : ''} is cut by the keepalive`, async () => {
        const s = open();
        s.on('error', () => {});
        await once(s, 'connect');
        s.resume();
        const started = Date.now();
        const closed = once(s, 'close');
        const bytes = STALLS[what]!;
        if (halfClose) s.end(bytes);
        else s.write(bytes);
        const timeout = setTimeout(() => s.destroy(new Error('still open')), 5_000);
        await closed;
        clearTimeout(timeout);
        assert.ok(!s.errored, `closed by the server, not by the test (${Date.now() - started} ms)`);
      });
    }
  }
}
