// grpc/http2-client.ts, dfget's gRPC client over node:http2, against real servers: the daemon's own grpc-js
// server helpers (helpers/grpc-stream-server.ts) for statuses, trailers, large messages, deadlines, cancels and a
// server killed mid-stream; a raw node:http2 server for what grpc-js never sends (compressed messages, messages
// cut at every byte, no status); plain sockets for the ways a connection fails.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { rmSync } from 'node:fs';
import { createServer as createHttp2Server, type Http2Server, type ServerHttp2Stream } from 'node:http2';
import { createServer as createNetServer, type Server as NetServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Server } from '@grpc/grpc-js';
import { GrpcCode } from '../../../src/core/errors.js';
import { DownloadTaskRequest, DownloadTaskResponse } from '../../../src/gen/dfdaemon.js';
import { describeError, isTransportFailure } from '../../../src/cli/common.js';
import { shutdownGrpcServer, type UnixSocketListener } from '../../../src/grpc/server.js';
import {
  ConnectFailure,
  connectUnix,
  GrpcCallError,
  type GrpcHttp2Client,
} from '../../../src/grpc/http2-client.js';
import { frameMessage } from '../../../src/grpc/message-framing.js';
import { stopByPid } from '../../helpers/child-process.js';
import { tempDir } from '../../helpers/daemon.js';
import { testDownload } from '../../helpers/download.js';
import {
  LARGE_PIECE,
  LARGE_PIECES,
  largeContent,
  startStreamServer,
} from '../../helpers/grpc-stream-server.js';

const PATH = '/dfdaemon.v2.DfdaemonDownload/DownloadTask';
const OPTIONS = { timeoutMs: 5000, windowBytes: 4 * 1024 * 1024 };
const dir = tempDir('dft-h2c-');

function request(url: string, outputPath?: string): Buffer {
  return Buffer.from(
    DownloadTaskRequest.encode({
      download: testDownload(url, { outputPath }),
    }).finish(),
  );
}

async function collect(it: AsyncIterable<Buffer>): Promise<DownloadTaskResponse[]> {
  const out: DownloadTaskResponse[] = [];
  for await (const m of it) out.push(DownloadTaskResponse.decode(m));
  return out;
}

async function collectRaw(it: AsyncIterable<Buffer>): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const m of it) out.push(m);
  return out;
}

async function callError(p: Promise<unknown>): Promise<GrpcCallError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof GrpcCallError, String(e));
    return e;
  }
  assert.fail('the call succeeded');
}

after(() => rmSync(dir, { recursive: true, force: true }));

describe('against a grpc-js server', () => {
  const socketPath = join(dir, 'grpc.sock');
  let server: Server;
  let listener: UnixSocketListener;
  let client: GrpcHttp2Client;
  let cancelled = 0;

  before(async () => {
    ({ server, listener } = await startStreamServer(socketPath, () => cancelled++));
    client = await connectUnix(socketPath, OPTIONS);
  });

  after(async () => {
    client.close();
    await shutdownGrpcServer(server, 1000);
    await listener.close();
  });

  test('a call carries its message and metadata; the answer decodes', async () => {
    const [res] = await collect(
      client.serverStream(PATH, request('test:echo', '/out/x'), { metadata: { 'x-test': 'meta' } }),
    );
    assert.equal(res?.taskId, 'meta');
    assert.equal(res?.peerId, '/out/x');
    assert.equal(res?.downloadTaskStartedResponse?.contentLength, 1024);
  });

  test('messages larger than the HTTP/2 window and frames arrive whole, in order', async () => {
    const answers = await collect(client.serverStream(PATH, request('test:large')));
    assert.equal(answers.length, LARGE_PIECES);
    answers.forEach((a, n) => {
      const content = a.downloadPieceFinishedResponse?.piece?.content;
      assert.equal(content?.length, LARGE_PIECE);
      assert.ok(Buffer.from(content!).equals(largeContent(n, LARGE_PIECE)), `piece ${n} content`);
    });
  });

  test('an error status without messages: code, percent-decoded message, binary details', async () => {
    const e = await callError(collect(client.serverStream(PATH, request('test:error-before'))));
    assert.equal(e.code, GrpcCode.INTERNAL);
    assert.equal(e.details, 'backend error: 404 Not Found — ünïcode, 100% sure');
    const details = e.metadata.get('grpc-status-details-bin')[0];
    assert.ok(Buffer.isBuffer(details));
    assert.deepEqual(JSON.parse(details.toString()), { status_code: 404, message: 'gone' });
    assert.equal(describeError(e), 'backend error: origin answered 404: gone');
    assert.equal(isTransportFailure(e), false);
  });

  test('an error status after a message: the message first, then the error', async () => {
    const seen: Buffer[] = [];
    const e = await callError(
      (async () => {
        for await (const m of client.serverStream(PATH, request('test:error-after'))) seen.push(m);
      })(),
    );
    assert.equal(seen.length, 1);
    assert.equal(e.code, GrpcCode.ABORTED);
    assert.equal(e.details, 'the source changed');
  });

  test('a deadline ends the call with DEADLINE_EXCEEDED', async () => {
    const call = client.serverStream(PATH, request('test:forever'), { deadline: Date.now() + 300 });
    const e = await callError(collect(call));
    assert.equal(e.code, GrpcCode.DEADLINE_EXCEEDED);
    assert.equal(describeError(e), 'timed out (see --timeout)');
  });

  test('leaving the loop cancels the call on the server', async () => {
    const before = cancelled;
    for await (const _ of client.serverStream(PATH, request('test:forever'))) break;
    for (let i = 0; i < 50 && cancelled === before; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(cancelled, before + 1);
  });

  test('cancel() ends the iteration with CANCELLED', async () => {
    const call = client.serverStream(PATH, request('test:forever'));
    await call.next();
    call.cancel();
    const e = await callError(call.next());
    assert.equal(e.code, GrpcCode.CANCELLED);
  });

  test('a unary call takes exactly one message', async () => {
    assert.ok((await client.unary(PATH, request('test:echo'))).length > 0);
    const two = await callError(client.unary(PATH, request('test:two')));
    assert.deepEqual([two.code, two.details], [GrpcCode.UNIMPLEMENTED, 'Too many responses received']);
    const none = await callError(client.unary(PATH, request('test:none')));
    assert.deepEqual([none.code, none.details], [GrpcCode.UNIMPLEMENTED, 'No message received']);
    const missing = await callError(client.unary('/dfdaemon.v2.DfdaemonDownload/Nope', request('x')));
    assert.equal(missing.code, GrpcCode.UNIMPLEMENTED);
  });

  test('many calls at once on one connection', async () => {
    const all = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        collect(client.serverStream(PATH, request('test:echo'), { metadata: { 'x-test': `${i}` } })),
      ),
    );
    assert.deepEqual(
      all.map((a) => a[0]?.taskId),
      Array.from({ length: 20 }, (_, i) => `${i}`),
    );
  });
});

test('a server killed mid-stream: UNAVAILABLE, a transport failure', async () => {
  const socketPath = join(dir, 'killed.sock');
  const script = fileURLToPath(new URL('../../helpers/grpc-stream-server.js', import.meta.url));
  const child = spawn(process.execPath, [script, socketPath], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await once(child.stdout!, 'data');
    const client = await connectUnix(socketPath, OPTIONS);
    const call = client.serverStream(PATH, request('test:forever'));
    const first = await call.next();
    assert.equal(first.done, false);
    child.kill('SIGKILL');
    const e = await callError(collect(call));
    assert.equal(e.code, GrpcCode.UNAVAILABLE);
    assert.ok(e.transport);
    assert.ok(isTransportFailure(e));
    client.close();
  } finally {
    await stopByPid(child, 1000);
  }
});

describe('against a raw HTTP/2 server', () => {
  const socketPath = join(dir, 'raw.sock');
  let server: Http2Server;
  let client: GrpcHttp2Client;
  /** What the raw server does for a path. */
  const answers: Record<string, (s: ServerHttp2Stream) => void> = {
    // Two messages in one DATA write, then one message written a byte at a time.
    '/split': (s) => {
      s.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      s.on('wantTrailers', () => s.sendTrailers({ 'grpc-status': '0' }));
      s.write(Buffer.concat([frameMessage(Buffer.from('one')), frameMessage(Buffer.alloc(0))]));
      const third = frameMessage(Buffer.from('three'));
      const writeByte = (i: number) => {
        if (i === third.length) return void s.end();
        s.write(third.subarray(i, i + 1), () => setImmediate(() => writeByte(i + 1)));
      };
      writeByte(0);
    },
    '/compressed': (s) => {
      s.respond({ ':status': 200, 'content-type': 'application/grpc' });
      const framed = frameMessage(Buffer.from('x'));
      framed[0] = 1;
      s.write(framed);
    },
    '/no-status': (s) => {
      s.respond({ ':status': 200, 'content-type': 'application/grpc' });
      s.end(frameMessage(Buffer.from('x')));
    },
    '/cut-message': (s) => {
      s.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      s.on('wantTrailers', () => s.sendTrailers({ 'grpc-status': '0' }));
      s.end(frameMessage(Buffer.from('whole')).subarray(0, 7));
    },
    '/http-404': (s) => {
      s.respond({ ':status': 404 });
      s.end();
    },
  };

  before(async () => {
    server = createHttp2Server();
    server.on('stream', (s, headers) => {
      s.on('error', () => undefined);
      s.resume();
      answers[headers[':path'] as string]!(s);
    });
    server.listen(socketPath);
    await once(server, 'listening');
    client = await connectUnix(socketPath, OPTIONS);
  });

  after(async () => {
    client.close();
    await new Promise((r) => server.close(r));
  });

  test('messages split across DATA frames, several in one frame, and an empty one', async () => {
    const got: string[] = [];
    for await (const m of client.serverStream('/split', Buffer.from('req'))) got.push(m.toString());
    assert.deepEqual(got, ['one', '', 'three']);
  });

  test('a compressed message (none was negotiated) is an INTERNAL error naming it', async () => {
    const e = await callError(collect(client.serverStream('/compressed', Buffer.from('req'))));
    assert.equal(e.code, GrpcCode.INTERNAL);
    assert.match(e.details, /compressed message, but no compression was negotiated/);
  });

  test('a stream that ends without grpc-status is UNKNOWN', async () => {
    const e = await callError(
      (async () => void (await collectRaw(client.serverStream('/no-status', Buffer.from('r')))))(),
    );
    assert.deepEqual([e.code, e.details], [GrpcCode.UNKNOWN, 'No status received']);
  });

  test('a status OK that cuts a message short is INTERNAL', async () => {
    const e = await callError(
      (async () => void (await collectRaw(client.serverStream('/cut-message', Buffer.from('r')))))(),
    );
    assert.equal(e.code, GrpcCode.INTERNAL);
  });

  test('an HTTP status other than 200 maps as the gRPC spec says', async () => {
    const e = await callError(client.unary('/http-404', Buffer.from('r')));
    assert.deepEqual([e.code, e.details], [GrpcCode.UNIMPLEMENTED, 'Received HTTP status code 404']);
  });
});

describe('connecting', () => {
  const servers: NetServer[] = [];
  after(() => servers.forEach((s) => s.close()));

  async function listen(name: string, onConnection: (s: import('node:net').Socket) => void): Promise<string> {
    const path = join(dir, name);
    const s = createNetServer(onConnection);
    servers.push(s);
    s.listen(path);
    await once(s, 'listening');
    return path;
  }

  async function failure(path: string, timeoutMs = 5000): Promise<string> {
    try {
      (await connectUnix(path, { ...OPTIONS, timeoutMs })).close();
    } catch (e) {
      assert.ok(e instanceof ConnectFailure, String(e));
      return e.reason;
    }
    assert.fail('connected');
  }

  test('no socket file: ENOENT', async () => {
    assert.equal(await failure(join(dir, 'absent.sock')), 'ENOENT');
  });

  test('a server that closes at once: CLOSED_AT_ONCE', async () => {
    const path = await listen('closes.sock', (s) => s.destroy());
    assert.match(await failure(path), /^(CLOSED_AT_ONCE|ECONNRESET)$/);
  });

  test('a server that accepts and says nothing: TIMEOUT', async () => {
    const held: import('node:net').Socket[] = [];
    const path = await listen('silent.sock', (s) => void held.push(s));
    assert.equal(await failure(path, 200), 'TIMEOUT');
    held.forEach((s) => s.destroy());
  });
});
