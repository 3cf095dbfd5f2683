// Cut-through relay (storage.server.cutThrough): a parent that is still receiving a piece from its own parent
// answers a child's request for it with the Vortex header it got (length, digest) and the bytes as they arrive.
// Three hops of real servers: an upstream Vortex server this test scripts byte by byte (slow, dying, corrupt),
// a relaying parent (real storage, piece path and Vortex server) and a child (real storage and piece path, or a
// plain Vortex client as an upstream child is). A holder with the piece stored is "elsewhere".

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { createHash } from 'node:crypto';
import { rmSync } from 'node:fs';
import { BackendFactory } from '../../../src/backend/factory.js';
import { pieceDigest } from '../../../src/core/digest.js';
import { DfError } from '../../../src/core/errors.js';
import { DaemonMetrics } from '../../../src/daemon/metrics.js';
import { PiecePath, type PieceParent } from '../../../src/daemon/piece-path.js';
import { Storage } from '../../../src/storage/storage.js';
import {
  Tag,
  contentTagFor,
  encodeHeader,
  encodePacket,
  encodePieceContent,
} from '../../../src/vortex/codec.js';
import { FrameReader } from '../../../src/vortex/frame-reader.js';
import { TcpPieceTransport } from '../../../src/vortex/piece-client.js';
import { VortexTcpServer } from '../../../src/vortex/piece-server.js';
import { tempDir } from '../../helpers/daemon.js';

const PIECE = 1024 * 1024;
const CHUNK = 64 * 1024;
const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const DATA = Buffer.alloc(PIECE);
for (let i = 0; i < PIECE; i++) DATA[i] = (i * 131 + (i >>> 9)) & 0xff;
const DIGEST = pieceDigest(DATA);
const spec = { number: 0, offset: 0, length: PIECE };

let taskSeq = 0;
const newTaskId = (): string =>
  createHash('sha256').update(`cut-through-${process.pid}-${taskSeq++}`).digest('hex');

/** Pieces from parents only: no source is ever asked. */
function parentBackends(): BackendFactory {
  return new BackendFactory({
    maxRetries: 0,
    requestHeader: {},
    enableCacheTemporaryRedirect: false,
    cacheTemporaryRedirectTTLMs: 0,
  });
}

function piecePath(storage: Storage, backends: BackendFactory, relay: boolean): PiecePath {
  return new PiecePath({
    storage,
    backends,
    metrics: new DaemonMetrics({ gitVersion: 't', gitCommit: '', buildTime: '' }),
    pieceTimeoutMs: 10_000,
    maxRetries: 0,
    downloadPiece: (r) => new TcpPieceTransport().downloadPiece(r),
    relay,
    log: quiet,
  });
}

/** A peer: storage, a piece path that relays what it receives, and a Vortex server for its children. */
class Peer {
  readonly dir = tempDir('dft-relay-');
  storage!: Storage;
  path!: PiecePath;
  server!: VortexTcpServer;
  port = 0;
  private backends!: BackendFactory;

  async start(): Promise<this> {
    this.storage = await Storage.open({
      dir: this.dir,
      keep: true,
      writeBufferSize: CHUNK,
      readBufferSize: CHUNK,
    });
    this.backends = parentBackends();
    this.path = piecePath(this.storage, this.backends, true);
    this.server = new VortexTcpServer({ storage: this.storage, ip: '127.0.0.1', port: 0, log: quiet });
    this.port = await this.server.listen();
    return this;
  }

  async prepare(taskId: string): Promise<void> {
    await this.storage.prepareTask(taskId, { contentLength: PIECE, pieceLength: PIECE, responseHeader: {} });
  }

  /** This peer as a parent of others. */
  as(parentId: string): PieceParent {
    return { parentId, hostId: parentId, ip: '127.0.0.1', tcpPort: this.port };
  }

  async stop(): Promise<void> {
    await this.server.close();
    await this.backends.close();
    this.storage.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * An upstream parent whose body the test writes: it answers every request with the header (length PIECE, digest
 * DIGEST) and hands the socket to the test's `body`.
 */
class ScriptedParent {
  private server!: Server;
  port = 0;
  body: (socket: Socket) => void = () => undefined;
  readonly sockets = new Set<Socket>();

  async start(): Promise<this> {
    this.server = createServer((s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
      s.on('error', () => undefined);
      s.once('data', () => {
        const metadata = encodePieceContent({
          number: 0,
          offset: 0n,
          length: BigInt(PIECE),
          digest: DIGEST,
          parentId: 'upstream-parent',
          trafficType: 1,
          costSecs: 0n,
          createdAt: 1_700_000_000,
        });
        s.write(
          Buffer.concat([
            encodeHeader({ id: 1, tag: contentTagFor(Tag.DownloadPiece), length: metadata.length }),
            metadata,
          ]),
        );
        this.body(s);
      });
    });
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    this.port = (this.server.address() as { port: number }).port;
    return this;
  }

  get parent(): PieceParent {
    return { parentId: 'upstream-parent', hostId: 'upstream', ip: '127.0.0.1', tcpPort: this.port };
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

/** Sends `data` up to `upTo` bytes now; the returned function sends the rest (then `end`s or not). */
function sendPart(s: Socket, data: Buffer, upTo: number): (opts?: { end?: boolean }) => void {
  s.write(data.subarray(0, upTo));
  return ({ end = true } = {}) => {
    if (end) s.end(data.subarray(upTo));
    else s.write(data.subarray(upTo));
  };
}

/** Resolves once the child's copy of the piece has some bytes in its content file (it is receiving). */
async function receiving(child: Storage, taskId: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    const p = child.arriving.get(taskId, 0);
    if (p) {
      await p.waitBeyond(0, AbortSignal.timeout(5000));
      return;
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error('the child never started receiving the piece');
}

let upstream: ScriptedParent;
let relay: Peer;
let child: Peer;
let holder: Peer;

before(async () => {
  [upstream, relay, child, holder] = await Promise.all([
    new ScriptedParent().start(),
    new Peer().start(),
    new Peer().start(),
    new Peer().start(),
  ]);
});

after(async () => {
  await Promise.all([upstream.stop(), relay.stop(), child.stop(), holder.stop()]);
});

test('a child gets a piece from a parent still receiving it: bytes right once the parent finishes', async () => {
  const taskId = newTaskId();
  await Promise.all([relay.prepare(taskId), child.prepare(taskId)]);
  let rest!: (o?: { end?: boolean }) => void;
  upstream.body = (s) => (rest = sendPart(s, DATA, PIECE / 2));
  const atRelay = relay.path.fromParent(taskId, spec, upstream.parent, AbortSignal.timeout(10_000));
  // The relaying parent announces nothing it cannot serve: wait until it is receiving.
  await receiving(relay.storage, taskId);
  const atChild = child.path.fromParent(taskId, spec, relay.as('relay'), AbortSignal.timeout(10_000));
  await receiving(child.storage, taskId);
  assert.equal(
    relay.storage.getPiece(taskId, 0),
    undefined,
    'the child receives before the parent has it whole',
  );
  rest();
  const [r, c] = await Promise.all([atRelay, atChild]);
  assert.equal(r.digest, DIGEST);
  assert.equal(c.digest, DIGEST);
  assert.deepEqual(await child.storage.content.readPieceBuffer(taskId, 0, PIECE), DATA);
  assert.equal(relay.storage.arriving.list(taskId).length, 0);
});

test('an upstream-style child (a plain Vortex client reading to the end) receives a relayed piece', async () => {
  const taskId = newTaskId();
  await relay.prepare(taskId);
  let rest!: (o?: { end?: boolean }) => void;
  upstream.body = (s) => (rest = sendPart(s, DATA, PIECE / 4));
  const atRelay = relay.path.fromParent(taskId, spec, upstream.parent, AbortSignal.timeout(10_000));
  await receiving(relay.storage, taskId);
  // The request an upstream client sends; the answer is read to the end of the connection, as it does.
  const socket = connect({ host: '127.0.0.1', port: relay.port });
  await once(socket, 'connect');
  socket.write(encodePacket({ kind: 'download', id: 7, tag: Tag.DownloadPiece, taskId, number: 0 }));
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  const ended = once(socket, 'end');
  await new Promise((r) => setTimeout(r, 100));
  rest();
  await atRelay;
  await ended;
  socket.destroy();
  const frame = await new FrameReader(
    (async function* () {
      yield Buffer.concat(chunks);
    })(),
  ).readFrame();
  assert.ok(frame && frame.packet.kind === 'content', 'a PieceContent answer');
  assert.equal(frame.packet.metadata.digest, DIGEST);
  assert.equal(frame.packet.metadata.length, BigInt(PIECE));
  const body: Buffer[] = [];
  for await (const c of frame.body!) body.push(c);
  assert.deepEqual(Buffer.concat(body), DATA);
});

test('a relaying parent that dies mid-piece: the child stores nothing, then gets the piece elsewhere', async () => {
  const taskId = newTaskId();
  const dying = await new Peer().start();
  await Promise.all([dying.prepare(taskId), child.prepare(taskId), holder.prepare(taskId)]);
  await holder.storage.writePiece(
    taskId,
    spec,
    (async function* () {
      yield DATA;
    })(),
    { trafficType: 0 },
  );
  upstream.body = (s) => sendPart(s, DATA, PIECE / 2);
  const atRelay = dying.path.fromParent(taskId, spec, upstream.parent, AbortSignal.timeout(10_000));
  await receiving(dying.storage, taskId);
  const atChild = child.path.fromParent(taskId, spec, dying.as('dying'), AbortSignal.timeout(10_000));
  await receiving(child.storage, taskId);
  // The relaying parent goes away: its piece server and its own download stop at once.
  const relayFailed = assert.rejects(atRelay);
  const childFailed = assert.rejects(atChild, (e: DfError) => e instanceof DfError && e.retryable);
  await dying.server.close();
  for (const s of upstream.sockets) s.destroy();
  await relayFailed;
  await dying.stop();
  await childFailed;
  assert.equal(child.storage.getPiece(taskId, 0), undefined, 'no piece recorded from the broken relay');
  assert.equal(child.storage.arriving.list(taskId).length, 0);
  const again = await child.path.fromParent(taskId, spec, holder.as('holder'), AbortSignal.timeout(10_000));
  assert.equal(again.digest, DIGEST);
  assert.deepEqual(await child.storage.content.readPieceBuffer(taskId, 0, PIECE), DATA);
});

test('a relaying parent whose upstream sends corrupt bytes: neither it nor the child stores the piece', async () => {
  const taskId = newTaskId();
  await Promise.all([relay.prepare(taskId), child.prepare(taskId)]);
  const corrupt = Buffer.from(DATA);
  corrupt[PIECE - 1000] ^= 0xff;
  let rest!: (o?: { end?: boolean }) => void;
  upstream.body = (s) => (rest = sendPart(s, corrupt, PIECE / 2));
  const atRelay = relay.path.fromParent(taskId, spec, upstream.parent, AbortSignal.timeout(10_000));
  await receiving(relay.storage, taskId);
  const atChild = child.path.fromParent(taskId, spec, relay.as('relay'), AbortSignal.timeout(10_000));
  await receiving(child.storage, taskId);
  const relayFailed = assert.rejects(atRelay, (e: DfError) => e.code === 'DIGEST_MISMATCH');
  // The relaying parent held the last byte back until its check, which failed: the child's body is cut short.
  const childFailed = assert.rejects(atChild, (e: DfError) => e instanceof DfError && e.retryable);
  rest();
  await relayFailed;
  await childFailed;
  assert.equal(relay.storage.getPiece(taskId, 0), undefined);
  assert.equal(child.storage.getPiece(taskId, 0), undefined);
});

test('a piece that is neither stored nor arriving is not found; with cut-through off nothing is relayed', async () => {
  const taskId = newTaskId();
  await relay.prepare(taskId);
  await assert.rejects(
    child.path.fromParent(taskId, spec, relay.as('relay'), AbortSignal.timeout(10_000)),
    (e: DfError) => e.code === 'PIECE_NOT_FOUND',
  );
  let rest!: (o?: { end?: boolean }) => void;
  upstream.body = (s) => (rest = sendPart(s, DATA, PIECE / 2));
  const backends = parentBackends();
  const off = piecePath(relay.storage, backends, false);
  const atRelay = off.fromParent(taskId, spec, upstream.parent, AbortSignal.timeout(10_000));
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(relay.storage.arriving.list(taskId).length, 0, 'not listed for relay');
  rest();
  await atRelay;
  await backends.close();
});
