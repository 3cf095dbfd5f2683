// The caller's deadline on the upload port's long-lived streams (src/grpc/stream-deadline.ts). The Rust client
// opens SyncPieces and SyncHost with a 10 s grpc-timeout and, as its own servers (tonic) do, means it for the start
// of the answer only; grpc-js ended both streams at the deadline, so a Rust child lost every piece our parent got
// after 10 s (found by bench:upstream:swarm, issue 13). A grpc-js client enforces its deadline itself, so these
// tests speak HTTP/2 directly, as the Rust client's transport does: the header, no client-side timer.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { calculatePieceLength } from '../../src/core/piece.js';
import { DEFAULT_FILTERED_QUERY_PARAMS, taskIdFromUrl } from '../../src/core/task-id.js';
import { Host } from '../../src/gen/common.js';
import { SyncHostRequest, SyncPiecesRequest, SyncPiecesResponse } from '../../src/gen/dfdaemon.js';
import { dfget, startDaemon, stopDaemon, tempDir, type DaemonHandle } from '../helpers/daemon.js';
import { Origin } from '../helpers/origin.js';

const MiB = 1024 * 1024;
/** What the Rust client sends is 10 s; a short one keeps the test short. */
const GRPC_TIMEOUT = '1000m';
const GRPC_TIMEOUT_MS = 1000;

interface RawCall {
  messages: Buffer[];
  /** grpc-status of the trailers (or of trailers-only headers); undefined while the stream runs. */
  status(): string | undefined;
  /** The response headers came (a trailers-only answer carries its grpc-status in them). */
  responded: Promise<void>;
  ended: Promise<void>;
  cancel(): void;
}

/** One server-streaming call on `session` with a grpc-timeout header and no deadline of our own. */
function rawCall(session: http2.ClientHttp2Session, path: string, body: Uint8Array): RawCall {
  const stream = session.request({
    ':method': 'POST',
    ':path': path,
    'content-type': 'application/grpc',
    te: 'trailers',
    'grpc-timeout': GRPC_TIMEOUT,
  });
  const head = Buffer.alloc(5);
  head.writeUInt32BE(body.length, 1);
  stream.end(Buffer.concat([head, body]));
  const messages: Buffer[] = [];
  let buf = Buffer.alloc(0);
  let status: string | undefined;
  const responded = new Promise<void>((resolve) =>
    stream.on('response', (h) => {
      if (h['grpc-status'] !== undefined) status = String(h['grpc-status']);
      resolve();
    }),
  );
  stream.on('trailers', (t) => (status = String(t['grpc-status'])));
  stream.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    while (buf.length >= 5 && buf.length >= 5 + buf.readUInt32BE(1)) {
      const n = buf.readUInt32BE(1);
      messages.push(buf.subarray(5, 5 + n));
      buf = buf.subarray(5 + n);
    }
  });
  const ended = new Promise<void>((resolve) => stream.on('close', () => resolve()));
  return {
    messages,
    status: () => status,
    responded,
    ended,
    cancel: () => stream.close(http2.constants.NGHTTP2_CANCEL),
  };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

describe(
  'upload streams outlive the caller’s grpc-timeout (the Rust client’s 10 s)',
  { timeout: 60_000 },
  () => {
    const origin = new Origin();
    const out = tempDir('dft-stream-deadline-');
    let d: DaemonHandle;
    let session: http2.ClientHttp2Session;

    before(async () => {
      await origin.start();
      d = await startDaemon();
      session = http2.connect(`http://127.0.0.1:${d.uploadPort}`);
    });

    after(async () => {
      session?.destroy();
      if (d) await stopDaemon(d);
      await origin.stop();
      rmSync(out, { recursive: true, force: true });
    });

    test('SyncHost keeps sending our host past the deadline, until the child cancels', async () => {
      const call = rawCall(
        session,
        '/dfdaemon.v2.DfdaemonUpload/SyncHost',
        SyncHostRequest.encode({ hostId: 'child-host', peerId: 'child-peer' }).finish(),
      );
      await sleep(GRPC_TIMEOUT_MS * 2.5);
      assert.equal(call.status(), undefined, 'the stream was ended (DEADLINE_EXCEEDED is 4)');
      assert.ok(call.messages.length >= 3, `${call.messages.length} host messages in 2.5 s`);
      assert.equal(Host.decode(call.messages.at(-1)!).port, d.uploadPort);
      call.cancel();
      await call.ended;
    });

    test('SyncPieces announces a piece our download stores after the deadline, then ends with OK', async () => {
      const size = 3 * 4 * MiB;
      const pieceLength = calculatePieceLength(size);
      const lastStart = 2 * pieceLength;
      // The origin holds the last piece until the child's deadline has passed.
      const url = origin.add('/late-last-piece.bin', {
        size,
        seed: 7,
        beforeAnswer: (req) =>
          req.range?.startsWith(`bytes=${lastStart}-`) ? sleep(GRPC_TIMEOUT_MS * 2) : undefined,
      });
      const taskId = taskIdFromUrl({ url, filteredQueryParams: DEFAULT_FILTERED_QUERY_PARAMS });
      const download = dfget(d, url, join(out, 'late.bin'));
      const request = SyncPiecesRequest.encode({
        hostId: 'child-host',
        taskId,
        interestedPieceNumbers: [0, 1, 2],
      }).finish();
      // SyncPieces of a task the parent does not know yet is NOT_FOUND (5): ask again until dfget registered it.
      let call = rawCall(session, '/dfdaemon.v2.DfdaemonUpload/SyncPieces', request);
      const started = Date.now();
      for (;;) {
        await call.responded;
        if (call.status() !== '5') break;
        assert.ok(Date.now() - started < 20_000, 'the task never showed up');
        await sleep(50);
        call = rawCall(session, '/dfdaemon.v2.DfdaemonUpload/SyncPieces', request);
      }
      const asked = Date.now();
      await call.ended;
      assert.equal(call.status(), '0', 'SyncPieces ended with an error (DEADLINE_EXCEEDED is 4)');
      assert.ok(Date.now() - asked > GRPC_TIMEOUT_MS, 'the last piece came before the deadline: no test');
      assert.deepEqual(call.messages.map((m) => SyncPiecesResponse.decode(m).number).sort(), [0, 1, 2]);
      assert.equal((await download).code, 0);
    });
  },
);
