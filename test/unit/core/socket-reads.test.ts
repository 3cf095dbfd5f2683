// The socket reader of the Vortex client (core/socket-reads.ts) against real servers on loopback, plain and TLS:
// every byte arrives in order although the reader's buffers are used again; a chunk stays intact while the reader
// holds it (the socket pauses) though the server keeps sending; the end and an error reach the reader; a reader
// waiting when the owner releases is told the connection closed; every buffer goes back to the pool.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync, rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { connect as tlsConnect, createServer as createTlsServer } from 'node:tls';
import { BufferPool } from '../../../src/core/buffer-pool.js';
import { DfError } from '../../../src/core/errors.js';
import { SocketReads } from '../../../src/core/socket-reads.js';
import { tempDir } from '../../helpers/daemon.js';
import { TestCa } from '../../helpers/pki.js';

/** Bytes whose every position is recognisable: a wrong or reordered byte fails the comparison. */
function pattern(length: number): Buffer {
  const b = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) b[i] = (i ^ (i >>> 8) ^ (i >>> 16)) & 0xff;
  return b;
}

/** Writes `bytes` in pieces of varied sizes, then ends. */
async function send(socket: Socket, bytes: Buffer): Promise<void> {
  const sizes = [1, 7, 4096, 65_536, 300_000, 13];
  let at = 0;
  for (let i = 0; at < bytes.length; i++) {
    const n = Math.min(sizes[i % sizes.length]!, bytes.length - at);
    if (!socket.write(bytes.subarray(at, at + n))) await once(socket, 'drain');
    at += n;
  }
  socket.end();
}

async function listen(server: Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as { port: number }).port;
}

/** Reads everything, copying each chunk before asking for the next (the contract). */
async function readAll(reads: SocketReads): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of reads) parts.push(Buffer.from(chunk));
  return Buffer.concat(parts);
}

describe('SocketReads', () => {
  const servers: Server[] = [];
  after(() => {
    for (const s of servers) s.close();
  });

  async function plainServer(onSocket: (s: Socket) => void): Promise<number> {
    const server = createServer((s) => {
      s.on('error', () => {}); // a client that goes away resets the server's side
      onSocket(s);
    });
    servers.push(server);
    return listen(server);
  }

  function plainClient(port: number, reads: SocketReads): Promise<Socket> {
    const socket = connect({ host: '127.0.0.1', port, onread: reads.onread });
    socket.on('error', () => {});
    return once(socket, 'connect').then(() => {
      reads.attach(socket);
      return socket;
    });
  }

  test('every byte in order through a few pooled buffers; all of them back in the pool at release', async () => {
    const bytes = pattern(8 * 1024 * 1024 + 3);
    const port = await plainServer((s) => void send(s, bytes));
    const pool = new BufferPool(64 * 1024, 64);
    const reads = new SocketReads(pool);
    await plainClient(port, reads);
    const got = await readAll(reads);
    assert.equal(got.length, bytes.length);
    assert.ok(got.equals(bytes), 'the bytes arrived intact and in order');
    reads.release();
    // A paused socket reads into at most a couple of buffers before the reader asks again.
    assert.ok(pool.idle >= 1 && pool.idle <= 4, `buffers used: ${pool.idle}`);
  });

  test('a chunk stays intact while the reader holds it, though the server keeps sending', async () => {
    const bytes = pattern(4 * 1024 * 1024);
    const port = await plainServer((s) => void send(s, bytes));
    const reads = new SocketReads(new BufferPool(16 * 1024, 4));
    await plainClient(port, reads);
    const it = reads[Symbol.asyncIterator]();
    const first = (await it.next()).value as Buffer;
    const copy = Buffer.from(first);
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(first.equals(copy), 'no read overwrote the chunk the reader holds');
    const rest: Buffer[] = [copy];
    for (let r = await it.next(); !r.done; r = await it.next()) rest.push(Buffer.from(r.value));
    assert.ok(Buffer.concat(rest).equals(bytes));
    reads.release();
  });

  test('an error on the socket reaches the reader; release wakes a waiting reader', async () => {
    const bytes = pattern(1024 * 1024);
    const port = await plainServer((s) => void send(s, bytes));
    const reads = new SocketReads(new BufferPool(64 * 1024, 4));
    const socket = await plainClient(port, reads);
    const it = reads[Symbol.asyncIterator]();
    assert.equal((await it.next()).done, false);
    socket.destroy(new Error('the link broke'));
    await assert.rejects(it.next(), /the link broke/);
    reads.release();

    // A server that says nothing: the reader waits until its owner releases the reads.
    const silent = await plainServer(() => {});
    const idle = new SocketReads(new BufferPool(64 * 1024, 4));
    await plainClient(silent, idle);
    const waiting = idle.next();
    idle.release();
    await assert.rejects(
      waiting,
      (e: unknown) => e instanceof DfError && /connection closed/.test(e.message),
    );
  });

  describe('over TLS', () => {
    const dir = tempDir('dft-socket-reads-');
    let ca: TestCa;
    let cert: Buffer;
    let key: Buffer;
    before(async () => {
      ca = await TestCa.create(dir, 'reads');
      const pem = await ca.issue('server', { ips: ['127.0.0.1'] });
      cert = readFileSync(pem.cert);
      key = readFileSync(pem.key);
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    test('records arrive in order although several come before a pause holds', async () => {
      const bytes = pattern(3 * 1024 * 1024 + 11);
      const server = createTlsServer({ cert, key }, (s) => void send(s, bytes));
      servers.push(server);
      const port = await listen(server);
      const pool = new BufferPool(64 * 1024, 16);
      const reads = new SocketReads(pool);
      const socket = tlsConnect({
        host: '127.0.0.1',
        port,
        ca: readFileSync(ca.certPath),
        ...({ onread: reads.onread } as object),
      });
      socket.on('error', () => {});
      await once(socket, 'secureConnect');
      reads.attach(socket);
      const got = await readAll(reads);
      assert.ok(got.equals(bytes), 'every record intact and in order');
      reads.release();
      assert.ok(pool.idle >= 1);
    });
  });
});
