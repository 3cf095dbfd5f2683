// A gRPC client over node:http2 for the CLIs' few calls to dfdaemon's unix socket. grpc-js is the right client
// for a long-lived process, but loading its 66 files costs a one-shot dfget more than its whole download of a
// cached file (docs/benchmarks.md, "Start-up"); this one is one file over Node's own HTTP/2, which does the
// framing, HPACK and flow control. It follows PROTOCOL-HTTP2.md: a POST with `te: trailers` and `grpc-timeout`,
// length-prefixed messages (message-framing.ts), and the status in the trailers (or in the headers of a
// trailers-only answer). Errors have grpc-js's shape (code, details, metadata with get()), so one describeError
// serves both clients.

import {
  connect as connectHttp2,
  constants,
  type ClientHttp2Session,
  type ClientHttp2Stream,
  type IncomingHttpHeaders,
} from 'node:http2';
import { GrpcCode, grpcCodeName } from '../core/errors.js';
import { frameMessage, MessageDecoder } from './message-framing.js';
import { PendingConnection } from './pending-connection.js';

/** The metadata of an answer (headers and trailers), as grpc-js's Metadata.get: `-bin` values decoded. */
export class CallMetadata {
  private readonly map = new Map<string, (string | Buffer)[]>();

  constructor(...headers: (IncomingHttpHeaders | undefined)[]) {
    for (const h of headers) {
      for (const [key, value] of Object.entries(h ?? {})) {
        if (key.startsWith(':') || value === undefined) continue;
        const values = Array.isArray(value) ? value : String(value).split(',');
        const decoded = values.map((v) =>
          key.endsWith('-bin') ? Buffer.from(v.trim(), 'base64') : v.trim(),
        );
        this.map.set(key, [...(this.map.get(key) ?? []), ...decoded]);
      }
    }
  }

  get(key: string): (string | Buffer)[] {
    return this.map.get(key.toLowerCase()) ?? [];
  }
}

/** A call's failure: a status from the server, or one this client gave (transport, deadline, cancel). */
export class GrpcCallError extends Error {
  constructor(
    readonly code: number,
    readonly details: string,
    readonly metadata: CallMetadata = new CallMetadata(),
    /** The connection failed or broke: no server answered this call. */
    readonly transport = false,
  ) {
    super(`${code} ${grpcCodeName(code) ?? 'UNKNOWN'}: ${details}`);
  }
}

/** Why a connection could not be made: an errno (ENOENT, ECONNREFUSED…), CLOSED_AT_ONCE or TIMEOUT. */
export class ConnectFailure extends Error {
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

export interface ConnectOptions {
  /** How long to wait for the server's first SETTINGS. */
  timeoutMs: number;
  /** The HTTP/2 receive window, per stream and for the connection. */
  windowBytes: number;
  /** A connection to this socket opened earlier, to speak on instead of a new one. */
  pending?: PendingConnection;
}

/** Connects to a gRPC server on a unix socket; resolves once the server has spoken (its SETTINGS). */
export function connectUnix(socketPath: string, o: ConnectOptions): Promise<GrpcHttp2Client> {
  const pending = o.pending ?? new PendingConnection(socketPath);
  if (pending.failure !== undefined) {
    pending.destroy();
    return Promise.reject(new ConnectFailure(pending.failure, pending.failure));
  }
  return new Promise((resolve, reject) => {
    const session = connectHttp2('http://localhost', {
      createConnection: () => pending.socket,
      settings: { initialWindowSize: o.windowBytes },
    });
    let settled = false;
    const fail = (reason: string, message: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      session.destroy();
      reject(new ConnectFailure(reason, message));
    };
    const timer = setTimeout(() => fail('TIMEOUT', `no answer within ${o.timeoutMs / 1000}s`), o.timeoutMs);
    session.once('error', (e: NodeJS.ErrnoException) => fail(e.code ?? 'ERROR', e.message));
    // A server that accepts and closes before its SETTINGS refuses us (dfdaemon's connection cap does that).
    session.once('close', () => fail('CLOSED_AT_ONCE', 'closed at once'));
    session.once('remoteSettings', () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      session.setLocalWindowSize(o.windowBytes);
      resolve(new GrpcHttp2Client(session));
    });
  });
}

export interface CallOptions {
  /** Request metadata (ASCII values). */
  metadata?: Record<string, string>;
  /** Epoch milliseconds after which the call fails with DEADLINE_EXCEEDED. */
  deadline?: number;
}

export class GrpcHttp2Client {
  constructor(private readonly session: ClientHttp2Session) {
    // Errors reach the calls through their streams; without a listener an error would end the process.
    session.on('error', () => undefined);
  }

  /** A server-streaming call: iterate its messages; the iteration throws the call's error status. */
  serverStream(path: string, request: Buffer, o: CallOptions = {}): ServerStreamCall {
    return new ServerStreamCall(this.session, path, request, o);
  }

  /** A unary call: exactly one message back. */
  async unary(path: string, request: Buffer, o: CallOptions = {}): Promise<Buffer> {
    const answers: Buffer[] = [];
    for await (const m of this.serverStream(path, request, o)) answers.push(m);
    if (answers.length === 1) return answers[0]!;
    throw new GrpcCallError(
      GrpcCode.UNIMPLEMENTED,
      answers.length === 0 ? 'No message received' : 'Too many responses received',
    );
  }

  close(): void {
    this.session.close();
  }
}

/** Messages buffered before the stream is paused: HTTP/2 flow control then holds the server back. */
const HIGH_WATER = 8;

/** HTTP statuses to gRPC codes when a proxy or a non-gRPC server answered (PROTOCOL-HTTP2.md, http-grpc-status). */
function codeOfHttpStatus(status: number): number {
  if (status === 400) return GrpcCode.INTERNAL;
  if (status === 401) return GrpcCode.UNAUTHENTICATED;
  if (status === 403) return GrpcCode.PERMISSION_DENIED;
  if (status === 404) return GrpcCode.UNIMPLEMENTED;
  if ([429, 502, 503, 504].includes(status)) return GrpcCode.UNAVAILABLE;
  return GrpcCode.UNKNOWN;
}

/** grpc-timeout: at most 8 digits and a unit. */
function grpcTimeout(ms: number): string {
  const m = Math.max(1, Math.ceil(ms));
  if (m < 1e8) return `${m}m`;
  const s = Math.ceil(m / 1000);
  return s < 1e8 ? `${s}S` : `${Math.min(Math.ceil(s / 3600), 99_999_999)}H`;
}

function percentDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** One server-streaming call; an async iterator of its messages. */
export class ServerStreamCall implements AsyncIterableIterator<Buffer> {
  private readonly stream: ClientHttp2Stream;
  private readonly decoder = new MessageDecoder();
  private readonly queue: Buffer[] = [];
  private headers?: IncomingHttpHeaders;
  private trailers?: IncomingHttpHeaders;
  private streamError?: Error;
  /** Set once the call is over: null for OK, else why not. */
  private outcome?: GrpcCallError | null;
  private wake?: () => void;
  private readonly timer?: NodeJS.Timeout;

  constructor(
    private readonly session: ClientHttp2Session,
    path: string,
    request: Buffer,
    o: CallOptions,
  ) {
    const headers: Record<string, string> = {
      ...o.metadata,
      ':method': 'POST',
      ':path': path,
      'content-type': 'application/grpc',
      te: 'trailers',
    };
    if (o.deadline !== undefined) {
      const left = o.deadline - Date.now();
      headers['grpc-timeout'] = grpcTimeout(left);
      this.timer = setTimeout(
        () => this.abandon(new GrpcCallError(GrpcCode.DEADLINE_EXCEEDED, 'Deadline exceeded')),
        Math.max(0, left),
      );
    }
    this.stream = session.request(headers);
    this.stream.on('response', (h) => (this.headers = h));
    this.stream.on('trailers', (h) => (this.trailers = h));
    this.stream.on('data', (chunk: Buffer) => this.onData(chunk));
    this.stream.on('error', (e) => (this.streamError = e));
    this.stream.on('close', () => this.finish(this.statusOnClose()));
    this.stream.end(frameMessage(request));
  }

  private onData(chunk: Buffer): void {
    if (this.outcome !== undefined) return;
    try {
      this.queue.push(...this.decoder.push(chunk));
    } catch (e) {
      this.abandon(new GrpcCallError(GrpcCode.INTERNAL, (e as Error).message));
      return;
    }
    if (this.queue.length >= HIGH_WATER) this.stream.pause();
    this.wake?.();
  }

  /** The call's status once the stream closed, from what the server sent (or did not). */
  private statusOnClose(): GrpcCallError | null {
    const h = this.trailers ?? this.headers;
    const status = h?.['grpc-status'];
    if (status !== undefined) {
      const code = Number(status);
      if (code === GrpcCode.OK && this.decoder.idle) return null;
      if (code === GrpcCode.OK) return new GrpcCallError(GrpcCode.INTERNAL, 'stream ended inside a message');
      const message = h?.['grpc-message'];
      const details = percentDecode(typeof message === 'string' ? message : '');
      return new GrpcCallError(code, details, new CallMetadata(this.headers, this.trailers));
    }
    if (this.streamError || this.session.destroyed) {
      // The connection broke (the server stopped or crashed): grpc-js's words for it.
      return new GrpcCallError(GrpcCode.UNAVAILABLE, 'Connection dropped', undefined, true);
    }
    const rst = this.stream.rstCode;
    if (rst === constants.NGHTTP2_REFUSED_STREAM)
      return new GrpcCallError(GrpcCode.UNAVAILABLE, 'Stream refused by server', undefined, true);
    if (rst === constants.NGHTTP2_CANCEL) return new GrpcCallError(GrpcCode.CANCELLED, 'Call cancelled');
    if (rst === constants.NGHTTP2_ENHANCE_YOUR_CALM)
      return new GrpcCallError(GrpcCode.RESOURCE_EXHAUSTED, 'Bandwidth exhausted or memory limit exceeded');
    if (rst !== undefined && rst !== constants.NGHTTP2_NO_ERROR)
      return new GrpcCallError(GrpcCode.INTERNAL, `Received RST_STREAM with code ${rst}`);
    const httpStatus = Number(this.headers?.[':status'] ?? 0);
    if (httpStatus !== 200 && httpStatus !== 0)
      return new GrpcCallError(codeOfHttpStatus(httpStatus), `Received HTTP status code ${httpStatus}`);
    return new GrpcCallError(GrpcCode.UNKNOWN, 'No status received');
  }

  private finish(outcome: GrpcCallError | null): void {
    if (this.outcome !== undefined) return;
    this.outcome = outcome;
    clearTimeout(this.timer);
    this.wake?.();
  }

  /** Ends the call from this side with `error` (deadline, cancel, a malformed answer). */
  private abandon(error: GrpcCallError): void {
    this.finish(error);
    this.queue.length = 0;
    if (!this.stream.closed) this.stream.close(constants.NGHTTP2_CANCEL);
  }

  /** Cancels the call: the server sees RST_STREAM(CANCEL); the iteration ends with CANCELLED. */
  cancel(): void {
    if (this.outcome === undefined)
      this.abandon(new GrpcCallError(GrpcCode.CANCELLED, 'Cancelled on client'));
  }

  async next(): Promise<IteratorResult<Buffer>> {
    for (;;) {
      const m = this.queue.shift();
      if (m !== undefined) {
        if (this.queue.length === 0 && this.stream.isPaused()) this.stream.resume();
        return { value: m, done: false };
      }
      if (this.outcome === null) return { value: undefined, done: true };
      if (this.outcome) throw this.outcome;
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = undefined;
    }
  }

  /** A `break` out of the loop cancels the call. */
  async return(): Promise<IteratorResult<Buffer>> {
    this.cancel();
    return { value: undefined, done: true };
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}
