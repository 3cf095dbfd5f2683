// The TCP Vortex piece server, after dragonfly-client-storage/src/server/tcp.rs: one request per connection
// (upstream's client opens a new connection for every piece and its server handles exactly one), answered with
// PieceContent header + metadata and then the piece's raw bytes streamed from the content file, or with an Error
// packet. The connection is ended after the answer.
//
// Where upstream waits without bound for a request and allocates whatever length a header announces, this server
// bounds the wait (requestTimeoutMs), the transfer (idleTimeoutMs without progress) and every length, and answers
// a malformed request with Error(InvalidArgument) instead of dropping the connection silently.
//
// Ours: with `tls` (storage.server.cert/key; upstream's Vortex TCP has no TLS) every connection is TLS, and with a
// CA (storage.server.caCert) the child must present a certificate signed by it. A child that gets it wrong is told
// why in an Error packet rather than cut off: a plaintext request (the first bytes are no TLS record) is answered
// in plaintext, a refused client certificate inside TLS; neither gets a piece.

import { createServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import { once } from 'node:events';
import type { Readable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import type { FileHandle } from 'node:fs/promises';
import { DfError } from '../core/errors.js';
import type { ArrivingPiece, PieceRecord, Storage } from '../storage/storage.js';
import { sendFileRange } from '../core/range-sender.js';
import {
  Tag,
  VortexCode,
  contentTagFor,
  encodeHeader,
  encodePacket,
  encodePieceContent,
  randomPacketId,
  tagName,
  type DownloadTag,
} from './codec.js';
import { FrameReader, readableChunks } from './frame-reader.js';
import type { PieceKind } from './piece-transport.js';
import { UploadBusy, type UploadSlots } from './upload-slots.js';

/** server/mod.rs DEFAULT_KEEPALIVE_TIME. */
export const KEEPALIVE_TIME_MS = 5_000;
/** A conforming client writes its 74-byte request at once; this only ends connections that never do. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
/** Longest stretch without any progress while the answer is written (upstream's QUIC idle timeout). */
export const DEFAULT_IDLE_TIMEOUT_MS = 60_000;
/** server/tcp.rs listen(1024). */
const LISTEN_BACKLOG = 1024;
/** common.v2.TrafficType.REMOTE_PEER: what upstream's server always sends. */
const TRAFFIC_TYPE_REMOTE_PEER = 1;

const SERVED_KINDS: Partial<Record<number, PieceKind>> = {
  [Tag.DownloadPiece]: 'standard',
  [Tag.DownloadPersistentPiece]: 'persistent',
  [Tag.DownloadPersistentCachePiece]: 'persistent-cache',
};

/**
 * Where persistent cache pieces come from (storage/persistent-cache-store.ts): a piece only once its digest is known
 * and its content file is still what was stored; otherwise a DfError the child hears as an Error packet.
 */
export interface PersistentCachePieces {
  servablePiece(taskId: string, number: number): Promise<PieceRecord>;
  readonly content: Pick<Storage['content'], 'openFile' | 'readBuffers'>;
  readonly metadata: { uploadStarted(taskId: string): void; uploadEnded(taskId: string, ok: boolean): void };
}

export interface UploadLimiter {
  /** Resolves when `bytes` may be sent (upload bandwidth limit, taken per piece as upstream does). */
  acquire(bytes: number): Promise<void>;
}

export interface VortexLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface VortexTcpServerOptions {
  storage: Storage;
  /** Persistent cache tasks (dfcache); absent: their pieces are not found here. */
  persistentCache?: PersistentCachePieces;
  /** Persistent tasks (dfstore), kept alike; absent: their pieces are not found here. */
  persistent?: PersistentCachePieces;
  ip: string;
  /** 0 picks a free port; listen() returns the one bound. */
  port: number;
  uploadLimiter?: UploadLimiter;
  /** Piece bodies sent at once, and which waiting request goes next (upload-slots.ts); absent: no queue. */
  uploadSlots?: UploadSlots;
  /** A piece was sent whole to a child, in `ms` (announcement control times its releases by it). */
  onPieceServed?: (taskId: string, number: number, ms: number, length: number) => void;
  log: VortexLogger;
  requestTimeoutMs?: number;
  idleTimeoutMs?: number;
  /**
   * storage.server.maxConnections: connections served at once. One more is answered at once with an Error packet
   * ("too many connections", code Internal, which a child retries later instead of dropping this parent) and
   * closed. Default: no cap.
   */
  maxConnections?: number;
  /** A connection was refused for the cap. */
  onRefused?: () => void;
  /** Serve over TLS (storage.server.cert/key); with `caCert`, require client certificates signed by it. */
  tls?: VortexServerTls;
}

/** The Vortex server's TLS files (storage.server). */
export interface VortexServerTls {
  cert: Buffer;
  key: Buffer;
  caCert?: Buffer;
}

/**
 * Whether the first bytes of a connection are a TLS handshake record: content type 22, major version 3. A Vortex
 * request starts with a random packet id and a tag; a request tag is never 3, so two bytes tell them apart.
 */
export function looksLikeTls(first: Buffer): boolean {
  return first[0] === 0x16 && (first.length < 2 || first[1] === 0x03);
}

/** How long a refused connection may stay open for its Error packet to be read. */
const REFUSED_LINGER_MS = 1_000;

/** Aborts when the socket closes: a request waiting for an upload slot gives its place up. */
function closedSignal(socket: Socket): AbortSignal {
  const controller = new AbortController();
  socket.once('close', () => controller.abort(new DfError('CANCELLED', 'the child closed the connection')));
  return controller.signal;
}

/** Bytes read from the content file at a time for a piece relayed while it arrives. */
const RELAY_READ_CHUNK = 256 * 1024;

/** A piece still arriving (cut-through) rather than stored: only it can be waited on. */
function isArriving(p: PieceRecord | ArrivingPiece): p is ArrivingPiece {
  return 'waitBeyond' in p;
}

/** The Vortex metadata of an arriving piece: what its own parent told us, as a stored piece's record would. */
function arrivingRecord(p: ArrivingPiece): PieceRecord {
  const now = new Date();
  return {
    taskId: p.taskId,
    number: p.number,
    offset: p.offset,
    length: p.length,
    digest: p.digest,
    parentId: p.parentId,
    trafficType: TRAFFIC_TYPE_REMOTE_PEER,
    costMs: 0,
    createdAt: now,
    updatedAt: now,
    finishedAt: now,
  };
}

/** A piece answer could not be given; `code` goes into the Error packet. */
class PieceUnavailable extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

export class VortexTcpServer {
  private readonly storage: Storage;
  private readonly persistentCache?: PersistentCachePieces;
  private readonly persistent?: PersistentCachePieces;
  private readonly ip: string;
  private readonly port: number;
  private readonly uploadLimiter?: UploadLimiter;
  private readonly onPieceServed?: (taskId: string, number: number, ms: number, length: number) => void;
  private readonly uploadSlots?: UploadSlots;
  private readonly log: VortexLogger;
  private readonly requestTimeoutMs: number;
  private readonly idleTimeoutMs: number;
  private readonly sockets = new Set<Socket>();
  private readonly maxConnections: number;
  private readonly onRefused?: () => void;
  /** Connections refused for the cap, and when that was last logged (once a second at most). */
  private refused = 0;
  private refusedLoggedAt = 0;
  private server?: Server;
  private closing = false;
  private readonly tls?: VortexServerTls;
  private tlsServer?: TlsServer;
  /** Connections handed to the TLS server, by remote address and port, until their handshake ends. */
  private readonly handshaking = new Map<string, { raw: Socket; then: (socket: Socket) => void }>();

  constructor(options: VortexTcpServerOptions) {
    this.storage = options.storage;
    this.persistentCache = options.persistentCache;
    this.persistent = options.persistent;
    this.ip = options.ip;
    this.port = options.port;
    this.uploadLimiter = options.uploadLimiter;
    this.onPieceServed = options.onPieceServed;
    this.uploadSlots = options.uploadSlots;
    this.log = options.log;
    this.requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    this.maxConnections = options.maxConnections ?? Infinity;
    this.onRefused = options.onRefused;
    this.tls = options.tls;
    if (!Number.isInteger(this.port) || this.port < 0 || this.port > 65535) {
      throw new DfError('INVALID_CONFIG', `storage.server.tcpPort must be 0..65535, got ${this.port}`);
    }
  }

  /** Starts listening; resolves with the bound port. */
  async listen(): Promise<number> {
    if (this.server) throw new DfError('INTERNAL', 'vortex tcp server already started');
    // allowHalfOpen: a client that shuts down its sending side after the request still gets the whole answer.
    const server = createServer({ allowHalfOpen: true, noDelay: true }, (socket) => this.accept(socket));
    this.server = server;
    if (this.tls) this.tlsServer = this.createTlsServer(this.tls);
    server.on('error', (e) => this.log.error({ err: e }, 'vortex tcp server error'));
    server.listen({ host: this.ip, port: this.port, backlog: LISTEN_BACKLOG });
    await once(server, 'listening');
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : this.port;
    this.log.info({ ip: this.ip, port }, 'vortex tcp server listening');
    return port;
  }

  /** Stops accepting and ends every connection now (a peer whose transfer is cut retries elsewhere). */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    const server = this.server;
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    if (server?.listening) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private accept(socket: Socket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    if (this.sockets.size >= this.maxConnections) {
      this.refuse(socket);
      return;
    }
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    // Errors surface in the frame reader or the pipeline; this keeps one between pulls from crashing.
    socket.on('error', (e) =>
      this.log.debug({ err: e, remote: socket.remoteAddress }, 'vortex connection error'),
    );
    socket.setKeepAlive(true, KEEPALIVE_TIME_MS);
    // Bounds the request, and with TLS the handshake before it.
    this.expire(socket, this.requestTimeoutMs);
    this.secure(socket, (s) =>
      this.handle(s).catch((e: unknown) => {
        this.log.warn({ err: e, remote: s.remoteAddress }, 'vortex connection failed');
        s.destroy();
      }),
    );
  }

  /** Ends `socket` after `ms` without activity. */
  private expire(socket: Socket, ms: number): void {
    socket.setTimeout(ms);
    socket.on('timeout', () =>
      socket.destroy(new DfError('TIMEOUT', 'vortex connection timed out', { retryable: true })),
    );
  }

  /**
   * Calls `then` with the connection to speak Vortex on: the socket itself without TLS; with TLS, the TLS socket
   * once the handshake is done and the client certificate (if one is required) passed. A plaintext request to a
   * TLS server and a refused certificate are answered with an Error packet that says so.
   */
  private secure(socket: Socket, then: (s: Socket) => void): void {
    const tlsServer = this.tlsServer;
    if (!tlsServer) {
      then(socket);
      return;
    }
    socket.once('data', (first: Buffer) => {
      socket.pause();
      socket.unshift(first);
      if (!looksLikeTls(first)) {
        this.log.debug({ remote: socket.remoteAddress }, 'plaintext vortex request refused: TLS required');
        this.reject(
          socket,
          VortexCode.InvalidArgument,
          'this Vortex server accepts TLS only (its storage.server.cert/key are set): fetch pieces over TLS by ' +
            'setting storage.client.caCert to the CA that signed its certificate',
        );
        return;
      }
      const key = `${socket.remoteAddress}:${socket.remotePort}`;
      this.handshaking.set(key, { raw: socket, then });
      socket.once('close', () => this.handshaking.delete(key));
      tlsServer.emit('connection', socket);
    });
  }

  private createTlsServer(tls: VortexServerTls): TlsServer {
    // rejectUnauthorized stays off so that a refused client certificate is answered with a reason (secured())
    // instead of a reset; a client without a certificate of the CA never gets past that check.
    const server = createTlsServer({
      cert: tls.cert,
      key: tls.key,
      ca: tls.caCert,
      requestCert: !!tls.caCert,
      rejectUnauthorized: false,
      allowHalfOpen: true,
      handshakeTimeout: this.requestTimeoutMs,
      minVersion: 'TLSv1.2',
    });
    server.on('secureConnection', (s: TLSSocket) => this.secured(s));
    server.on('tlsClientError', (err: Error, s: TLSSocket) => {
      this.log.debug({ err, remote: s.remoteAddress }, 'vortex tls handshake failed');
      s.destroy();
    });
    return server;
  }

  private secured(s: TLSSocket): void {
    const key = `${s.remoteAddress}:${s.remotePort}`;
    const pending = this.handshaking.get(key);
    this.handshaking.delete(key);
    if (!pending || this.closing) {
      s.destroy();
      return;
    }
    s.on('error', (e) => this.log.debug({ err: e, remote: s.remoteAddress }, 'vortex connection error'));
    // From now on the TLS socket carries the traffic: its timer, not the raw socket's, sees it.
    pending.raw.setTimeout(0);
    this.expire(s, this.requestTimeoutMs);
    if (this.tls?.caCert && !s.authorized) {
      const why = !s.getPeerX509Certificate()
        ? 'none presented'
        : s.authorizationError
          ? String(s.authorizationError)
          : 'not verified';
      this.log.warn({ remote: s.remoteAddress, why }, 'vortex client certificate refused');
      this.reject(
        s,
        VortexCode.InvalidArgument,
        `client certificate refused (${why}): this Vortex server requires a client certificate signed by ` +
          `its storage.server.caCert; set storage.client.cert/key to one`,
      );
      return;
    }
    pending.then(s);
  }

  private async handle(socket: Socket): Promise<void> {
    const remote = `${socket.remoteAddress}:${socket.remotePort}`;
    const reader = new FrameReader(readableChunks(socket));
    let frame;
    try {
      frame = await reader.readFrame();
    } catch (e) {
      if (e instanceof DfError && e.code === 'INVALID_ARGUMENT') {
        this.log.debug({ remote, err: e.message }, 'malformed vortex request');
        this.reject(socket, VortexCode.InvalidArgument, e.message);
      } else {
        socket.destroy();
      }
      return;
    }
    if (frame === null) {
      socket.destroy();
      return;
    }
    // One request per connection: whatever else arrives is read and dropped, so the peer's close is seen.
    socket.resume();
    // The request came: the request timeout is over. The wait for an upload slot may be long on a slow link (a
    // fresh piece, one holder, many children: 10 s cut off queued children, who then never asked this parent for
    // the piece again and stalled a 32-peer swarm); the child's piece timeout bounds it, and keepalive finds a
    // dead child.
    socket.setTimeout(0);

    const { packet } = frame;
    const kind = packet.kind === 'download' ? SERVED_KINDS[packet.tag] : undefined;
    if (packet.kind !== 'download' || kind === undefined) {
      this.reject(socket, VortexCode.InvalidArgument, `unsupported tag: ${tagName(frame.header.tag)}`);
      return;
    }

    const { taskId, number } = packet;
    const pieceId = `${taskId}-${number}`;
    let piece: PieceRecord | ArrivingPiece;
    let release: (() => void) | undefined;
    try {
      piece = await this.lookup(kind, taskId, number, pieceId);
      const queuedAt = performance.now();
      release = await this.uploadSlots?.acquire(taskId, number, piece.length, closedSignal(socket));
      const waitedMs = performance.now() - queuedAt;
      if (waitedMs >= 1000)
        this.log.debug({ remote, pieceId, waitedMs }, 'vortex piece request waited for a slot');
      // A piece that was arriving may have been stored while the request waited: send it from storage.
      if (isArriving(piece)) piece = this.storage.getPiece(taskId, number) ?? piece;
      await this.uploadLimiter?.acquire(piece.length);
    } catch (e) {
      release?.();
      if (socket.destroyed) return;
      const failure =
        e instanceof PieceUnavailable
          ? e
          : e instanceof UploadBusy
            ? new PieceUnavailable(VortexCode.Internal, e.message)
            : new PieceUnavailable(VortexCode.Internal, `failed to get piece: ${String(e)}`);
      this.log.debug({ remote, pieceId, err: failure.message }, 'vortex piece request refused');
      this.reject(socket, failure.code, failure.message);
      return;
    }
    try {
      await this.send(socket, remote, packet.tag as DownloadTag, piece, pieceId, kind);
    } finally {
      release?.();
    }
  }

  /**
   * Writes the piece's metadata and body to the child; failures end the connection. An arriving piece (cut-through)
   * is sent with the digest its own parent announced, its bytes as they reach the content file.
   */
  private async send(
    socket: Socket,
    remote: string,
    tag: DownloadTag,
    served: PieceRecord | ArrivingPiece,
    pieceId: string,
    kind: PieceKind,
  ): Promise<void> {
    if (socket.destroyed) return;
    const arriving = isArriving(served) ? served : undefined;
    const piece = arriving ? arrivingRecord(arriving) : (served as PieceRecord);
    const { taskId, number } = piece;
    const cached = this.persistentStore(kind);
    const contentStore = cached?.content ?? this.storage.content;
    const uploads = cached
      ? {
          started: () => cached.metadata.uploadStarted(taskId),
          failed: () => cached.metadata.uploadEnded(taskId, false),
          finished: () => cached.metadata.uploadEnded(taskId, true),
        }
      : {
          started: () => this.storage.metadata.uploadTaskStarted(taskId),
          failed: () => this.storage.metadata.uploadTaskFailed(taskId),
          finished: () => this.storage.metadata.uploadTaskFinished(taskId),
        };

    // The content file is opened before anything is written, so a storage failure can still be an Error packet.
    let content: Readable | undefined;
    let file: FileHandle | undefined;
    try {
      if (arriving) {
        content = await this.storage.readArriving(arriving, RELAY_READ_CHUNK, closedSignal(socket));
      } else if (piece.length > 0) {
        file = await contentStore.openFile(taskId);
      }
    } catch (e) {
      content?.destroy();
      this.log.warn({ remote, pieceId, err: e }, 'failed to open piece content');
      this.reject(
        socket,
        VortexCode.Internal,
        `failed to get piece ${pieceId} content: ${(e as Error).message}`,
      );
      return;
    }

    const metadata = encodePieceContent({
      number: piece.number,
      offset: BigInt(piece.offset),
      length: BigInt(piece.length),
      digest: piece.digest,
      parentId: piece.parentId ?? '',
      trafficType: TRAFFIC_TYPE_REMOTE_PEER,
      costSecs: BigInt(Math.max(0, Math.floor(piece.costMs / 1000))),
      createdAt: Math.floor(piece.createdAt.getTime() / 1000),
    });
    const header = encodeHeader({
      id: randomPacketId(),
      tag: contentTagFor(tag),
      length: metadata.length,
    });
    socket.setTimeout(this.idleTimeoutMs);
    socket.write(Buffer.concat([header, metadata]));
    if (!content && !file) {
      socket.end();
      return;
    }
    // The bytes flow file → socket with backpressure, and the socket is ended when the piece is sent. The task
    // counts as uploading meanwhile, so GC never evicts a task a child is reading.
    uploads.started();
    const started = performance.now();
    let bytesSent = piece.length;
    try {
      if (file) {
        bytesSent = await sendFileRange(file, piece.offset, piece.length, socket, contentStore.readBuffers);
        // Done when the kernel has the last byte, as pipeline's was: the serve time paces uploads and releases.
        socket.end();
        await finished(socket, { readable: false });
      } else {
        await pipeline(content!, socket);
      }
    } catch (e) {
      uploads.failed();
      this.log.debug({ remote, pieceId, err: e }, 'vortex piece upload interrupted');
      socket.destroy();
      return;
    } finally {
      await file?.close().catch(() => undefined);
    }
    uploads.finished();
    if (arriving) {
      // Its time measures the parent it came from, not our uplink: no serve-time sample (upload-pace.ts).
      this.log.debug({ remote, pieceId, length: piece.length }, 'vortex piece relayed while arriving');
      return;
    }
    if (bytesSent !== piece.length) {
      // The peer sees a short body and fails the piece; the content file is shorter than its metadata says.
      this.log.warn(
        { pieceId, sent: bytesSent, length: piece.length },
        'piece content shorter than recorded',
      );
      return;
    }
    this.onPieceServed?.(taskId, number, performance.now() - started, piece.length);
    this.log.debug({ remote, pieceId, length: piece.length }, 'vortex piece uploaded');
  }

  /** Where the pieces of a persistent or persistent cache task are kept; undefined for standard tasks. */
  private persistentStore(kind: PieceKind): PersistentCachePieces | undefined {
    if (kind === 'persistent-cache') return this.persistentCache;
    if (kind === 'persistent') return this.persistent;
    return undefined;
  }

  private async lookup(
    kind: PieceKind,
    taskId: string,
    number: number,
    pieceId: string,
  ): Promise<PieceRecord | ArrivingPiece> {
    const persistentStore = this.persistentStore(kind);
    if (persistentStore) {
      try {
        return await persistentStore.servablePiece(taskId, number);
      } catch (e) {
        const code = (e as DfError).code;
        throw new PieceUnavailable(
          code === 'PIECE_NOT_FOUND' || code === 'TASK_NOT_FOUND' ? VortexCode.NotFound : VortexCode.Internal,
          (e as Error).message,
        );
      }
    }
    const piece =
      kind === 'standard'
        ? (this.storage.getPiece(taskId, number) ?? this.storage.arriving.get(taskId, number))
        : undefined;
    if (!piece) throw new PieceUnavailable(VortexCode.NotFound, `piece ${pieceId} not found`);
    return piece;
  }

  /**
   * Over the cap: an Error packet, then the connection is closed once the child has read it (its request, if any,
   * is read and dropped, so closing does not reset the connection under the answer), after REFUSED_LINGER_MS at
   * the latest. Logged once a second at most.
   */
  private refuse(socket: Socket): void {
    this.onRefused?.();
    this.refused++;
    const now = Date.now();
    if (now - this.refusedLoggedAt >= 1000) {
      this.refusedLoggedAt = now;
      this.log.warn(
        { refusedTotal: this.refused, maxConnections: this.maxConnections },
        'vortex connection refused: storage.server.maxConnections reached',
      );
    }
    socket.on('error', () => undefined);
    const timer = setTimeout(() => socket.destroy(), REFUSED_LINGER_MS);
    timer.unref();
    socket.once('close', () => clearTimeout(timer));
    // With TLS the answer goes inside it, after a handshake the linger bounds too.
    this.secure(socket, (s) =>
      this.reject(
        s,
        VortexCode.Internal,
        `too many connections (storage.server.maxConnections ${this.maxConnections}); try again later`,
      ),
    );
  }

  /** Answers with one Error packet and ends the connection. */
  private reject(socket: Socket, code: number, message: string): void {
    if (socket.destroyed) return;
    socket.resume();
    socket.end(encodePacket({ kind: 'error', id: randomPacketId(), code, message }));
  }
}
