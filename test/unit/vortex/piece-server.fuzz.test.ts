// Fuzz of the Vortex piece server as a peer meets it: a real VortexTcpServer on port 0 over real storage, fed random
// and mutated byte streams over TCP. Every input is also decoded here (FrameReader over the same bytes), and the
// server's answer must be what that decoding implies: the piece for a valid request of a stored piece, Error
// NotFound for another piece, Error InvalidArgument for a malformed or unsupported frame, a close without an answer
// for a stream cut inside a frame. It must never crash or hang, and a valid client is served afterwards.
// Input counts: test/helpers/fuzz.ts (FUZZ_RUNS, FUZZ_SEED), docs/security.md "Fuzzing".

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { DfError } from '../../../src/core/errors.js';
import { Storage } from '../../../src/storage/storage.js';
import {
  Tag,
  VortexCode,
  encodeDownloadPiece,
  encodeHeader,
  encodePacket,
  type Packet,
} from '../../../src/vortex/codec.js';
import { FrameReader } from '../../../src/vortex/frame-reader.js';
import { downloadPiece } from '../../../src/vortex/piece-client.js';
import { VortexTcpServer, type VortexLogger } from '../../../src/vortex/piece-server.js';
import {
  fuzzBytes,
  fuzzParameters,
  fuzzRuns,
  fuzzTestTimeout,
  within,
  withoutStrayErrors,
} from '../../helpers/fuzz.js';

const silent: VortexLogger = { debug() {}, info() {}, warn() {}, error() {} };

const PIECE = 1024;
const LENGTH = 2 * PIECE + 100;
const task = createHash('sha256').update('vortex-fuzz-task').digest('hex');
const content = Buffer.from(Array.from({ length: LENGTH }, (_, i) => (i * 7 + 3) & 0xff));
/** How long the server waits for a request here; a connection left open must be closed after it. */
const REQUEST_TIMEOUT_MS = 300;
/** An answer, or a close, must come within this (a hang otherwise). */
const ANSWER_BOUND_MS = 5_000;

/** CI input counts (times FUZZ_RUNS). */
const RUNS_HALF_CLOSED = 3000;
const RUNS_LEFT_OPEN = 40;

let dir: string;
let storage: Storage;
let server: VortexTcpServer;
let port: number;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vortex-fuzz-'));
  storage = await Storage.open({ dir, keep: true, writeBufferSize: 64 * 1024, readBufferSize: 64 * 1024 });
  await storage.prepareTask(task, { contentLength: LENGTH, pieceLength: PIECE, responseHeader: {} });
  for (let n = 0; n * PIECE < LENGTH; n++) {
    const offset = n * PIECE;
    const length = Math.min(PIECE, LENGTH - offset);
    await storage.writePiece(
      task,
      { number: n, offset, length },
      chunks(content.subarray(offset, offset + length)),
      {
        trafficType: 0,
      },
    );
  }
  server = new VortexTcpServer({
    storage,
    ip: '127.0.0.1',
    port: 0,
    log: silent,
    requestTimeoutMs: REQUEST_TIMEOUT_MS,
  });
  port = await server.listen();
});

after(async () => {
  await server.close();
  storage.close();
  await rm(dir, { recursive: true, force: true });
});

/** Valid inputs the mutations start from: requests of every tag, stored and missing pieces, other packet kinds. */
function seeds(): Buffer[] {
  const request = (tag: 0 | 2 | 4 | 6, number: number, taskId = task): Buffer =>
    encodePacket({ kind: 'download', id: 7, tag, taskId, number });
  const metadata = {
    number: 0,
    offset: 0n,
    length: 3n,
    digest: 'crc32:12345678',
    parentId: 'p',
    trafficType: 1,
    costSecs: 0n,
    createdAt: 0,
  };
  return [
    request(Tag.DownloadPiece, 0),
    request(Tag.DownloadPiece, 1),
    request(Tag.DownloadPiece, 2),
    request(Tag.DownloadPiece, 3),
    request(Tag.DownloadPiece, 0, 'f'.repeat(64)),
    request(Tag.DownloadPersistentPiece, 0),
    request(Tag.DownloadPersistentCachePiece, 1),
    request(Tag.DownloadCachePiece, 0),
    Buffer.concat([request(Tag.DownloadPiece, 0), request(Tag.DownloadPiece, 1)]),
    Buffer.concat([encodePacket({ kind: 'content', id: 1, tag: 1, metadata }), Buffer.from('abc')]),
    encodePacket({ kind: 'error', id: 2, code: 1, message: 'bad' }),
    encodePacket({ kind: 'close', id: 3 }),
    encodePacket({ kind: 'reserved', id: 4, tag: 100 }),
    Buffer.concat([
      encodeHeader({ id: 0, tag: Tag.DownloadPiece, length: 68 }),
      encodeDownloadPiece(task, 0),
    ]),
  ];
}

async function* chunks(bytes: Buffer): AsyncGenerator<Buffer> {
  yield bytes;
}

type Expected =
  | { kind: 'piece'; number: number }
  | { kind: 'error'; code: number }
  /** The stream ended inside a frame (or before one): the server closes without answering. */
  | { kind: 'close' };

/** What the server must answer to `bytes`, from decoding them here as the server's reader would. */
async function expectedAnswer(bytes: Buffer): Promise<Expected> {
  const reader = new FrameReader(chunks(bytes));
  let packet: Packet;
  try {
    const frame = await reader.readFrame();
    if (frame === null) return { kind: 'close' };
    packet = frame.packet;
  } catch (e) {
    assert.ok(e instanceof DfError, `the decoder threw ${String(e)}`);
    if (e.code === 'INVALID_ARGUMENT') return { kind: 'error', code: VortexCode.InvalidArgument };
    assert.equal(e.code, 'IO', e.message);
    return { kind: 'close' };
  }
  if (packet.kind !== 'download' || ![0, 2, 4].includes(packet.tag)) {
    return { kind: 'error', code: VortexCode.InvalidArgument };
  }
  const stored = packet.tag === Tag.DownloadPiece && packet.taskId === task && packet.number * PIECE < LENGTH;
  return stored ? { kind: 'piece', number: packet.number } : { kind: 'error', code: VortexCode.NotFound };
}

/** Sends `bytes` (half-closing unless `leaveOpen`) and collects the answer until the server closes. */
async function exchange(bytes: Buffer, leaveOpen = false): Promise<Buffer> {
  const socket = connect({ host: '127.0.0.1', port });
  socket.on('error', () => {});
  try {
    await once(socket, 'connect');
    const parts: Buffer[] = [];
    socket.on('data', (c: Buffer) => parts.push(c));
    const closed = once(socket, 'close');
    if (leaveOpen) socket.write(bytes);
    else socket.end(bytes);
    await within(closed, ANSWER_BOUND_MS, `the server's answer to ${bytes.toString('hex').slice(0, 200)}`);
    return Buffer.concat(parts);
  } finally {
    socket.destroy();
  }
}

/** Checks an answer against what decoding the input implies. */
async function checkAnswer(input: Buffer, answer: Buffer, expected: Expected): Promise<void> {
  const what = `input ${input.toString('hex').slice(0, 200)}`;
  if (expected.kind === 'close') {
    assert.equal(answer.length, 0, `${what}: a cut stream is closed without an answer`);
    return;
  }
  const frames = new FrameReader(chunks(answer));
  const frame = await frames.readFrame();
  assert.ok(frame, `${what}: no answer, expected ${expected.kind}`);
  if (expected.kind === 'error') {
    assert.equal(frame.packet.kind, 'error', `${what}: ${JSON.stringify(frame.packet)}`);
    if (frame.packet.kind !== 'error') return;
    assert.equal(frame.packet.code, expected.code, `${what}: ${frame.packet.message}`);
    assert.ok(
      frame.packet.message.length > 0 && frame.packet.message.length < 2048,
      `${what}: a short message`,
    );
    assert.doesNotMatch(frame.packet.message, /\n\s+at /, `${what}: no stack trace`);
  } else {
    assert.equal(frame.packet.kind, 'content', what);
    if (frame.packet.kind !== 'content') return;
    const m = frame.packet.metadata;
    assert.equal(m.number, expected.number, what);
    const parts: Buffer[] = [];
    for await (const c of frame.body!) parts.push(c);
    const offset = expected.number * PIECE;
    assert.ok(
      Buffer.concat(parts).equals(content.subarray(offset, offset + Number(m.length))),
      `${what}: piece bytes`,
    );
  }
  assert.equal(await frames.readFrame(), null, `${what}: exactly one answer`);
}

async function assertStillServes(): Promise<void> {
  const piece = await downloadPiece({ ip: '127.0.0.1', port, taskId: task, number: 1, timeoutMs: 5000 });
  const parts: Buffer[] = [];
  for await (const c of piece.body) parts.push(Buffer.from(c)); // a chunk is valid until the next
  assert.ok(Buffer.concat(parts).equals(content.subarray(PIECE, 2 * PIECE)));
}

test(
  `fuzz: ${fuzzRuns(RUNS_HALF_CLOSED)} random and mutated request streams get the answer their bytes call for`,
  { timeout: fuzzTestTimeout(RUNS_HALF_CLOSED, 50) },
  async () => {
    const all = seeds();
    let served = 0;
    await withoutStrayErrors(() =>
      fc.assert(
        fc.asyncProperty(fuzzBytes(all, 200), async (bytes) => {
          const expected = await expectedAnswer(bytes);
          if (expected.kind === 'piece') served++;
          await checkAnswer(bytes, await exchange(bytes), expected);
        }),
        fuzzParameters(RUNS_HALF_CLOSED),
      ),
    );
    assert.ok(served > 0, 'some inputs were valid requests');
    await assertStillServes();
  },
);

test(
  `fuzz: ${fuzzRuns(RUNS_LEFT_OPEN)} request streams from clients that never close are answered or closed in time`,
  { timeout: fuzzTestTimeout(RUNS_LEFT_OPEN, 200) },
  async () => {
    // All at once: each may wait for the request timeout.
    const inputs = fc.sample(fuzzBytes(seeds(), 200), { numRuns: fuzzRuns(RUNS_LEFT_OPEN), seed: 1 });
    await withoutStrayErrors(() =>
      Promise.all(
        inputs.map(async (bytes) => {
          const expected = await expectedAnswer(bytes);
          const answer = await exchange(bytes, true);
          // Without the client's close, a stream cut inside a frame simply waits for the request timeout.
          await checkAnswer(bytes, answer, expected);
        }),
      ),
    );
    await assertStillServes();
  },
);

test('a piece request split into single bytes, and one followed by garbage, are served', async () => {
  const request = encodePacket({ kind: 'download', id: 1, tag: 0, taskId: task, number: 2 });
  const socket = connect({ host: '127.0.0.1', port });
  socket.on('error', () => {});
  await once(socket, 'connect');
  const parts: Buffer[] = [];
  socket.on('data', (c: Buffer) => parts.push(c));
  const closed = once(socket, 'close');
  for (const byte of request) {
    socket.write(Buffer.from([byte]));
    await new Promise((r) => setImmediate(r));
  }
  socket.end(Buffer.alloc(1000, 0xee));
  await within(closed, ANSWER_BOUND_MS, 'byte-by-byte request');
  await checkAnswer(request, Buffer.concat(parts), { kind: 'piece', number: 2 });
});
