import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { BufferPool } from '../../../src/core/buffer-pool.js';
import { sendFileRange } from '../../../src/core/range-sender.js';

let dir: string;
let path: string;
let file: FileHandle;
/** 1000 bytes, each its index mod 251: a byte out of place shows. */
const data = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 251));

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'range-sender-'));
  path = join(dir, 'content');
  writeFileSync(path, data);
  file = await open(path, 'r');
});

after(async () => {
  await file.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A destination that takes its time: each chunk is copied only when its write completes, 1 ms later. */
function slowSink(highWaterMark = 16): { out: Writable; got: () => Buffer } {
  const parts: Buffer[] = [];
  const out = new Writable({
    highWaterMark,
    write(chunk: Buffer, _enc, cb) {
      setTimeout(() => {
        parts.push(Buffer.from(chunk));
        cb();
      }, 1);
    },
  });
  return { out, got: () => Buffer.concat(parts) };
}

test('sends the exact range through reused buffers, a buffer never refilled under bytes still queued', async () => {
  const pool = new BufferPool(7, 2);
  const sink = slowSink();
  assert.equal(await sendFileRange(file, 13, 900, sink.out, pool), 900);
  await new Promise<void>((resolve) => sink.out.end(resolve));
  // Were a buffer given back before its write completed, the next read would overwrite bytes the sink copies
  // later, and the result would differ.
  assert.deepEqual(sink.got(), data.subarray(13, 913));
  assert.equal(pool.idle, 2, 'buffers go back to the pool, up to what it keeps');
});

test('a file shorter than the range: the bytes there are, and their count', async () => {
  const pool = new BufferPool(64, 4);
  const sink = slowSink(1024);
  assert.equal(await sendFileRange(file, 990, 50, sink.out, pool), 10);
  await new Promise<void>((resolve) => sink.out.end(resolve));
  assert.deepEqual(sink.got(), data.subarray(990));
});

test('a destination destroyed while waiting for drain fails the send, naming why', async () => {
  const pool = new BufferPool(8, 2);
  const out = new Writable({ highWaterMark: 8, write: () => undefined /* never completes */ });
  const sending = sendFileRange(file, 0, 1000, out, pool);
  setTimeout(() => out.destroy(), 5);
  await assert.rejects(sending, /closed before the range was sent/);
});

test('over a real socket, with the reader slower than the writer', async () => {
  const big = Buffer.alloc(8 * 1024 * 1024);
  for (let i = 0; i < big.length; i += 4096) big.writeUInt32LE(i, i);
  const bigPath = join(dir, 'big');
  writeFileSync(bigPath, big);
  const fh = await open(bigPath, 'r');
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const pool = new BufferPool(64 * 1024, 4);
  const sent = new Promise<number>((resolve, reject) => {
    server.once('connection', (socket: Socket) => {
      sendFileRange(fh, 4096, big.length - 4096, socket, pool)
        .then((n) => (socket.end(), resolve(n)))
        .catch(reject);
    });
  });
  const client = connect((server.address() as AddressInfo).port, '127.0.0.1');
  const parts: Buffer[] = [];
  client.on('data', (c: Buffer) => {
    parts.push(c);
    // Pause now and then, so the sender meets backpressure.
    if (parts.length % 16 === 0) {
      client.pause();
      setTimeout(() => client.resume(), 2);
    }
  });
  await once(client, 'end');
  try {
    assert.equal(await sent, big.length - 4096);
    assert.ok(Buffer.concat(parts).equals(big.subarray(4096)));
  } finally {
    client.destroy();
    server.close();
    await fh.close();
  }
});

test('a destination destroyed while the file is read fails the send at once, instead of waiting for a drain', async () => {
  const pool = new BufferPool(8, 2);
  const out = new Writable({ highWaterMark: 1, write: (_c, _e, cb) => setTimeout(cb, 1) });
  // A file whose every read ends after the destination went away (as a child hanging up mid-piece).
  const vanishing = {
    read: async (buf: Buffer, off: number, len: number, pos: number) => {
      const r = await file.read(buf, off, len, pos);
      out.destroy();
      await new Promise((resolve) => setImmediate(resolve)); // its 'close' has been emitted
      return r;
    },
  } as unknown as FileHandle;
  await assert.rejects(
    Promise.race([
      sendFileRange(vanishing, 0, 1000, out, pool),
      new Promise((_r, reject) => setTimeout(() => reject(new Error('hung')), 2000)),
    ]),
    /closed before the range was sent/,
  );
});
