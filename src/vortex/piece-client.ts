// The TCP Vortex piece client, after dragonfly-client-storage/src/client/tcp.rs: one new connection per piece
// (connect timeout 2 s, TCP_NODELAY, keepalive after 5 s), one request packet, then the parent's PieceContent
// header, its metadata and exactly `metadata.length` raw bytes, or an Error packet.
//
// Upstream bounds only the request and the metadata by download.piece_timeout and then reads "the rest of the
// stream" as the piece. Here the timeout covers every byte, and the body is exactly `metadata.length` bytes: a
// connection that ends sooner is an error, not a short piece.
//
// Ours: with `tls` (storage.client.caCert, upstream's Vortex TCP has no TLS) the connection is TLS, the parent's
// certificate checked against the CA and the parent's IP, and the client certificate presented if configured. A
// handshake that fails is one error naming the cause and the key (tlsFailure below), and the parent is dropped.

import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { once } from 'node:events';
import { BufferPool } from '../core/buffer-pool.js';
import { DfError } from '../core/errors.js';
import { SocketReads } from '../core/socket-reads.js';
import {
  Tag,
  VortexCode,
  contentTagFor,
  encodePacket,
  randomPacketId,
  tagName,
  type DownloadTag,
  type PieceMetadata,
} from './codec.js';
import { FrameReader } from './frame-reader.js';
import { BUSY_PREFIX } from './upload-slots.js';
import type {
  DownloadedPiece,
  PieceKind,
  PieceRequest,
  PieceTransport,
  RemotePiece,
} from './piece-transport.js';

/** client/mod.rs DEFAULT_CONNECT_TIMEOUT. */
export const CONNECT_TIMEOUT_MS = 2_000;
/** client/mod.rs DEFAULT_KEEPALIVE_TIME (Node sets neither the 3 s interval nor the 3 retries). */
export const KEEPALIVE_TIME_MS = 5_000;

/**
 * A piece connection reads into buffers of this size from its transport's pool (core/socket-reads.ts); a TLS
 * connection hands over one record (at most 16 KiB) per read, so its buffers need not be larger.
 */
const READ_BUFFER_BYTES = 256 * 1024;
const TLS_READ_BUFFER_BYTES = 64 * 1024;
/** Read buffers a transport keeps for the next connections (a few per piece in flight). */
const KEPT_READ_BUFFERS = 16;

const DOWNLOAD_TAG: Record<PieceKind, DownloadTag> = {
  standard: Tag.DownloadPiece,
  persistent: Tag.DownloadPersistentPiece,
  'persistent-cache': Tag.DownloadPersistentCachePiece,
};

// Socket errors that mean "this parent, now": another try (or another parent) may work.
const UNAVAILABLE_ERRNO = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'ETIMEDOUT',
  'EPIPE',
  'ECONNABORTED',
  'EADDRNOTAVAIL',
]);

/** The Vortex client's TLS files (storage.client): the CA parents' certificates chain to, and ours if any. */
export interface VortexClientTls {
  caCert: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

export interface TcpPieceClientOptions {
  connectTimeoutMs?: number;
  /** Fetch pieces over TLS (storage.client.caCert); default plaintext, as upstream. */
  tls?: VortexClientTls;
}

/** OpenSSL's verdicts on a certificate chain (X509_V_ERR_*, as Node names them). */
const CERT_VERIFY_CODES = new Set([
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
  'CERT_NOT_YET_VALID',
  'CERT_HAS_EXPIRED',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'INVALID_PURPOSE',
  'INVALID_CA',
]);

/** Whether `e` (or a cause) is a TLS failure: a parent that fails one handshake fails them all. */
export function isTlsFailure(e: unknown): boolean {
  for (let c: unknown = e; c instanceof Error; c = c.cause) {
    const code = (c as NodeJS.ErrnoException).code;
    if (code && (CERT_VERIFY_CODES.has(code) || /^ERR_(SSL|TLS)_/.test(code))) return true;
  }
  return false;
}

/**
 * A failed TLS connection to a parent as one line naming the cause and the key to look at: its certificate not
 * trusted or not naming it, our certificate refused, or no TLS at all on its side. Undefined for other errors.
 */
function tlsFailure(e: unknown, parent: string, secured: boolean): DfError | undefined {
  const err = e as NodeJS.ErrnoException;
  const code = err?.code ?? '';
  // OpenSSL's messages carry file names and line numbers; its `reason` alone is what a person needs.
  const text =
    (err as { reason?: string })?.reason ?? (err instanceof Error ? err.message.split('\n')[0] : String(e));
  const reason = `${code ? `${code}: ` : ''}${text}`;
  let what: string | undefined;
  if (CERT_VERIFY_CODES.has(code)) {
    what = `its TLS certificate is not trusted by storage.client.caCert (${reason})`;
  } else if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    what = `its TLS certificate does not name the address dialled (${reason})`;
  } else if (
    /CERTIFICATE_REQUIRED|UNKNOWN_CA|BAD_CERTIFICATE|CERTIFICATE_UNKNOWN|HANDSHAKE_FAILURE/.test(code)
  ) {
    what =
      `it refused this peer's client certificate (storage.client.cert/key must be signed by the CA in its ` +
      `storage.server.caCert) (${reason})`;
  } else if (/^ERR_(SSL|TLS)_/.test(code) || (!secured && (code === 'ECONNRESET' || code === 'EPIPE'))) {
    what =
      `the TLS handshake failed: this peer fetches pieces over TLS (storage.client.caCert is set), so the ` +
      `parent's Vortex server must serve TLS too (storage.server.cert/key) (${reason})`;
  }
  return what === undefined
    ? undefined
    : new DfError('UNAVAILABLE', `parent ${parent}: ${what}`, { cause: e, retryable: false });
}

/** Error packet → DfError. NotFound is this parent's answer and final for it; Internal may pass; busy will. */
export function errorFromVortex(code: number, message: string, parent: string): DfError {
  const text = `parent ${parent}: ${message}`;
  switch (code) {
    case VortexCode.NotFound:
      return new DfError('PIECE_NOT_FOUND', text);
    case VortexCode.InvalidArgument:
      return new DfError('INVALID_ARGUMENT', text);
    case VortexCode.Internal:
      // A parent whose upload queue is full says so (upload-slots.ts): another parent now, or this one shortly.
      if (message.startsWith(BUSY_PREFIX))
        return new DfError('RESOURCE_EXHAUSTED', text, { retryable: true });
      return new DfError('INTERNAL', text, { retryable: true });
    default:
      return new DfError('INTERNAL', `${text} (vortex error code ${code})`);
  }
}

function toRemotePiece(m: PieceMetadata, parent: string): RemotePiece {
  const max = BigInt(Number.MAX_SAFE_INTEGER);
  if (m.offset > max || m.length > max || m.costSecs > max) {
    throw new DfError('INVALID_ARGUMENT', `parent ${parent}: piece ${m.number} metadata out of range`);
  }
  return {
    number: m.number,
    offset: Number(m.offset),
    length: Number(m.length),
    digest: m.digest,
    parentId: m.parentId,
    trafficType: m.trafficType,
    costSecs: Number(m.costSecs),
    createdAt: new Date(m.createdAt * 1000),
  };
}

function socketError(e: unknown, parent: string): DfError {
  if (e instanceof DfError) return e;
  const err = e as NodeJS.ErrnoException;
  const message = err instanceof Error ? err.message : String(e);
  if (err?.code && UNAVAILABLE_ERRNO.has(err.code)) {
    return new DfError('UNAVAILABLE', `parent ${parent}: ${message}`, { cause: e, retryable: true });
  }
  return new DfError('IO', `parent ${parent}: ${message}`, { cause: e, retryable: true });
}

function validate(request: PieceRequest): void {
  if (!Number.isInteger(request.port) || request.port < 1 || request.port > 65535) {
    throw new DfError('INVALID_ARGUMENT', `invalid parent port ${request.port}`);
  }
  if (!(request.timeoutMs > 0)) {
    throw new DfError('INVALID_ARGUMENT', `piece timeout must be positive, got ${request.timeoutMs}`);
  }
}

export class TcpPieceTransport implements PieceTransport {
  readonly protocol = 'tcp' as const;
  private readonly connectTimeoutMs: number;
  private readonly tls?: VortexClientTls;
  private readonly readBuffers: BufferPool;

  constructor(options: TcpPieceClientOptions = {}) {
    this.connectTimeoutMs = options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS;
    this.tls = options.tls;
    this.readBuffers = new BufferPool(
      options.tls ? TLS_READ_BUFFER_BYTES : READ_BUFFER_BYTES,
      KEPT_READ_BUFFERS,
    );
  }

  async downloadPiece(request: PieceRequest): Promise<DownloadedPiece> {
    validate(request);
    const { ip, port, taskId, number, timeoutMs, signal } = request;
    const parent = `${ip}:${port}`;
    const what = `piece ${number} of task ${taskId}`;
    const downloadTag = DOWNLOAD_TAG[request.kind ?? 'standard'];
    // Encoded first: a bad task id or number fails before any connection is made.
    const packet = encodePacket({ kind: 'download', id: randomPacketId(), tag: downloadTag, taskId, number });
    if (signal?.aborted)
      throw new DfError('CANCELLED', `download of ${what} cancelled`, { cause: signal.reason });

    const reads = new SocketReads(this.readBuffers);
    // The parent's certificate is checked against the CA and `ip` (an IP subjectAltName), as upstream's gRPC
    // clients check their servers' against the address's host.
    const tls = this.tls;
    const socket: Socket = tls
      ? tlsConnect({
          host: ip,
          port,
          ca: tls.caCert,
          cert: tls.cert,
          key: tls.key,
          // tls.connect takes `onread` as net.connect does (Node's docs); @types/node leaves it out of its options.
          ...({ onread: reads.onread } as object),
        })
      : connect({
          host: ip,
          port,
          noDelay: true,
          keepAlive: true,
          keepAliveInitialDelay: KEEPALIVE_TIME_MS,
          onread: reads.onread,
        });
    if (tls) {
      socket.setNoDelay(true);
      socket.setKeepAlive(true, KEEPALIVE_TIME_MS);
    }
    let secured = !tls;
    // Errors reach the reads of the frame reader; without a listener an error before them would crash.
    socket.on('error', () => {});
    let failure: DfError | undefined;
    const fail = (err: DfError): void => {
      failure ??= err;
      socket.destroy(failure);
    };
    const deadline = setTimeout(
      () =>
        fail(
          new DfError('TIMEOUT', `${what} from ${parent} timed out after ${timeoutMs} ms`, {
            retryable: true,
          }),
        ),
      timeoutMs,
    );
    deadline.unref();
    const connectMs = Math.min(this.connectTimeoutMs, timeoutMs);
    const connectTimer = setTimeout(
      () =>
        fail(
          new DfError('TIMEOUT', `connect to ${parent} timed out after ${connectMs} ms`, { retryable: true }),
        ),
      connectMs,
    );
    connectTimer.unref();
    const onAbort = (): void =>
      fail(new DfError('CANCELLED', `download of ${what} cancelled`, { cause: signal?.reason }));
    signal?.addEventListener('abort', onAbort, { once: true });
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      clearTimeout(deadline);
      clearTimeout(connectTimer);
      signal?.removeEventListener('abort', onAbort);
      socket.destroy();
      reads.release();
    };

    try {
      await once(socket, tls ? 'secureConnect' : 'connect');
      secured = true;
      clearTimeout(connectTimer);
      reads.attach(socket);
      socket.write(packet);
      const reader = new FrameReader(reads);
      const frame = await reader.readFrame();
      if (frame === null) {
        throw new DfError('IO', `parent ${parent} closed the connection without answering for ${what}`, {
          retryable: true,
        });
      }
      const { packet: answer } = frame;
      if (answer.kind === 'error') throw errorFromVortex(answer.code, answer.message, parent);
      if (frame.body === undefined || frame.packet.tag !== contentTagFor(downloadTag)) {
        throw new DfError(
          'INTERNAL',
          `parent ${parent} answered ${what} with unexpected tag ${tagName(frame.header.tag)}`,
        );
      }
      if (frame.packet.metadata.number !== number) {
        throw new DfError(
          'INTERNAL',
          `parent ${parent} answered ${what} with piece ${frame.packet.metadata.number}`,
        );
      }
      const metadata = toRemotePiece(frame.packet.metadata, parent);
      const source = frame.body;
      const body = async function* (): AsyncGenerator<Buffer> {
        try {
          for await (const chunk of source) yield chunk;
        } catch (e) {
          throw failure ?? (tls && tlsFailure(e, parent, true)) ?? socketError(e, parent);
        } finally {
          release();
        }
      };
      return { metadata, body: body(), cancel: release };
    } catch (e) {
      release();
      throw failure ?? (tls && tlsFailure(e, parent, secured)) ?? socketError(e, parent);
    }
  }
}

/** Downloads one piece from a parent over TCP Vortex with the default options. */
export function downloadPiece(request: PieceRequest): Promise<DownloadedPiece> {
  return new TcpPieceTransport().downloadPiece(request);
}
