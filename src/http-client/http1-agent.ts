// An HTTP/1.1 client (http and https) for the source path: ranged GETs whose bodies go straight to a piece's file.
//
// Why not undici here: undici reads each socket chunk into a new 64 KiB buffer, copies it into WebAssembly memory
// to parse it, and hands it on through a stream, so a cold 1 GiB download made ~16 000 buffers, promises and
// stream objects, and the garbage collector and that machinery took more CPU than the kernel's copy of the bytes
// (measured reading 1 GiB of 4 MiB ranged answers from nginx on loopback: undici 0.77-1.4 CPU-s, a socket read
// into one reused buffer 0.31-0.33). This agent reads every connection into buffers of its own (net's and tls's
// `onread`), parses the head and the framing itself (http1-response.ts), and gives the body as views of those
// buffers: a chunk is valid until the next one is asked for; the socket does not read again before that. http and
// https (TLS with the backend's trusted certificates, SNI and the identity check against the URL's host).
//
// Connections are kept alive per host and port and reused one request at a time (no pipelining); a request that
// finds its kept connection closed by the server before any byte of the answer is sent again on a new one, once
// (GET and HEAD are idempotent).

import net from 'node:net';
import tls from 'node:tls';
import { validateHeaderName, validateHeaderValue } from 'node:http';
import { ReadBuffers } from '../core/read-buffers.js';
import {
  bodyFraming,
  ChunkedDecoder,
  keepAliveHintMs,
  keepsAlive,
  MAX_HEAD_BYTES,
  parseResponseHead,
  ResponseParseError,
  type BodyFraming,
  type ResponseHead,
} from './http1-response.js';

/** Bytes a plain connection reads at once into a buffer of its own. */
const READ_BUFFER_BYTES = 256 * 1024;

/** A TLS connection hands over one record (at most 16 KiB) per read; its buffers need not be larger than this. */
const TLS_READ_BUFFER_BYTES = 64 * 1024;

/** Read buffers a connection keeps for reuse beyond the ones holding views. */
const SPARE_READ_BUFFERS = 2;

/** TCP keep-alive probes start after a connection has been quiet this long (undici's default too). */
const TCP_KEEPALIVE_DELAY_MS = 60_000;

/** A server's `Keep-Alive: timeout` hint is shortened by this much, so we never send into a closing socket. */
const KEEP_ALIVE_MARGIN_MS = 1000;

/** How https connections check the server (the http backend's `ca` and `insecureSkipVerify`). */
export interface Http1TlsOptions {
  /** Trusted certificates (PEM); absent: Node's roots. */
  ca?: Array<string | Buffer>;
  rejectUnauthorized: boolean;
}

export interface Http1AgentOptions {
  connectTimeoutMs?: number;
  /** For https URLs; absent: Node's defaults (the system roots, certificates checked). */
  tls?: Http1TlsOptions;
  /** How long an idle connection is kept, unless the server asks for less. */
  keepAliveTimeoutMs: number;
  /**
   * The address to connect to for a host (the source address policy: checked, resolved once); absent: the host
   * as it is (net's own lookup).
   */
  resolveHost?: (host: string, port: number) => Promise<string>;
}

export interface Http1RequestOptions {
  method: 'GET' | 'HEAD';
  /** Request header fields; `host` defaults to the URL's. Names and values are checked (no CR/LF injection). */
  headers: Record<string, string>;
  signal?: AbortSignal;
  /** From the request's last byte written to the head's end. */
  headersTimeoutMs?: number;
  /** Longest wait for body bytes while the reader is asking for them. */
  bodyTimeoutMs?: number;
}

export interface Http1Response {
  statusCode: number;
  statusText: string;
  headers: Record<string, string | string[]>;
  body: Http1Body;
}

/** A failure of the connection or the server, with a code call-scope.ts turns into words. */
export class Http1Error extends Error {
  constructor(
    readonly code:
      | 'HTTP1_CONNECT_TIMEOUT'
      | 'HTTP1_HEADERS_TIMEOUT'
      | 'HTTP1_BODY_TIMEOUT'
      | 'HTTP1_CLOSED'
      | 'HTTP1_HEAD_TOO_LARGE'
      | 'HTTP1_AGENT_CLOSED',
    message: string,
  ) {
    super(message);
    this.name = 'Http1Error';
  }
}

export class Http1Agent {
  private readonly options: Http1AgentOptions;
  private readonly idle = new Map<string, Connection[]>();
  private readonly active = new Set<Connection>();
  private closed = false;
  private drained: Promise<void> | undefined;
  private onDrained: (() => void) | undefined;

  constructor(options: Http1AgentOptions) {
    this.options = options;
  }

  async request(url: string, o: Http1RequestOptions): Promise<Http1Response> {
    if (this.closed) throw new Http1Error('HTTP1_AGENT_CLOSED', 'the HTTP agent is closed');
    const u = new URL(url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') {
      throw new TypeError(`the HTTP/1.1 agent speaks http: and https:, not ${u.protocol}`);
    }
    const head = requestHead(o.method, u, o.headers);
    o.signal?.throwIfAborted();
    const key = `${u.protocol}//${u.hostname}:${defaultPort(u)}`;
    const kept = this.takeIdle(key);
    if (kept) {
      try {
        return await kept.exchange(head, o);
      } catch (e) {
        // A kept connection the server closed meanwhile fails before any byte of the answer: ask again on a
        // new one. Anything else (or a new connection failing) is the answer.
        if (!(e instanceof StaleConnectionError)) throw e;
      }
    }
    const conn = await this.connect(key, u, o.signal);
    try {
      return await conn.exchange(head, o);
    } catch (e) {
      throw e instanceof StaleConnectionError ? e.cause : e;
    }
  }

  /** Stops taking requests, closes idle connections, and resolves when the requests in flight are done. */
  close(): Promise<void> {
    this.closed = true;
    for (const list of this.idle.values()) for (const c of list) c.destroy();
    this.idle.clear();
    if (this.active.size === 0) return Promise.resolve();
    this.drained ??= new Promise((resolve) => (this.onDrained = resolve));
    return this.drained;
  }

  /** Ends every connection now; requests in flight fail. */
  destroy(): void {
    void this.close();
    for (const c of [...this.active])
      c.destroy(new Http1Error('HTTP1_AGENT_CLOSED', 'the HTTP agent was closed'));
  }

  /** Connections open (idle and busy); for tests. */
  get connectionCount(): number {
    let n = this.active.size;
    for (const list of this.idle.values()) n += list.length;
    return n;
  }

  private takeIdle(key: string): Connection | undefined {
    const list = this.idle.get(key);
    while (list && list.length > 0) {
      const c = list.pop()!;
      if (list.length === 0) this.idle.delete(key);
      if (c.usable) {
        c.leaveIdle();
        this.active.add(c);
        return c;
      }
      c.destroy();
    }
    return undefined;
  }

  private async connect(key: string, u: URL, signal: AbortSignal | undefined): Promise<Connection> {
    const port = defaultPort(u);
    // URL keeps an IPv6 literal's brackets; net wants the bare address.
    const hostname = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
    const host = this.options.resolveHost ? await this.options.resolveHost(hostname, port) : hostname;
    signal?.throwIfAborted();
    // TLS checks the certificate against the URL's host and sends it as SNI (not an IP literal), whatever
    // address the connection goes to.
    const secure =
      u.protocol === 'https:'
        ? { ...this.options.tls, servername: net.isIP(hostname) ? undefined : hostname, hostname }
        : undefined;
    const conn = new Connection(
      key,
      host,
      port,
      secure,
      this.options.connectTimeoutMs,
      (c, reusable, hintMs) => this.release(c, reusable, hintMs),
    );
    this.active.add(conn);
    try {
      await conn.connected(signal);
    } catch (e) {
      this.release(conn, false, undefined);
      throw e;
    }
    return conn;
  }

  /** A connection whose response is done: kept for the next request, or ended. */
  private release(c: Connection, reusable: boolean, hintMs: number | undefined): void {
    this.active.delete(c);
    if (!reusable || this.closed) c.destroy();
    else {
      const ms = hintMs === undefined ? this.options.keepAliveTimeoutMs : hintMs - KEEP_ALIVE_MARGIN_MS;
      if (ms <= 0) c.destroy();
      else {
        c.enterIdle(ms, () => this.forget(c));
        const list = this.idle.get(c.key);
        if (list) list.push(c);
        else this.idle.set(c.key, [c]);
      }
    }
    if (this.active.size === 0 && this.onDrained) {
      const done = this.onDrained;
      this.onDrained = undefined;
      done();
    }
  }

  /** An idle connection that timed out or that the server closed. */
  private forget(c: Connection): void {
    const list = this.idle.get(c.key);
    const at = list?.indexOf(c) ?? -1;
    if (list && at !== -1) {
      list.splice(at, 1);
      if (list.length === 0) this.idle.delete(c.key);
    }
    this.active.delete(c);
  }
}

/** A kept connection failed before any byte of the answer came: the request may be sent again. */
class StaleConnectionError extends Error {
  constructor(override readonly cause: Error) {
    super(cause.message);
  }
}

const enum Phase {
  Connecting,
  Idle,
  Head,
  Body,
  Done,
}

/**
 * One connection and the exchange on it. Its socket reads into buffers of its own; body bytes go out as views of
 * them, and the socket is paused from the read that produced them until the reader asks for more.
 */
class Connection {
  readonly key: string;
  private readonly socket: net.Socket;
  /** The buffers of this connection's own that the socket reads into (core/read-buffers.ts). */
  private readonly buffers: ReadBuffers;
  private readonly onRelease: (c: Connection, reusable: boolean, hintMs: number | undefined) => void;
  private phase = Phase.Connecting;
  private failure: Error | undefined;
  private timer: NodeJS.Timeout | undefined;
  private idleDone: (() => void) | undefined;
  /** Exchanges made on this connection; the first on a new connection is never retried. */
  private uses = 0;

  // The exchange in progress.
  private method = 'GET';
  private headParts: Buffer[] = [];
  private headBytes = 0;
  private headWaiter: { resolve: (r: Http1Response) => void; reject: (e: Error) => void } | undefined;
  private framing: BodyFraming = { kind: 'none' };
  private lengthLeft = 0;
  private chunked: ChunkedDecoder | undefined;
  private reusable = false;
  private hintMs: number | undefined;
  private bodyComplete = false;
  /** Views of the read buffers from the last reads, not all handed to the reader yet (`viewAt` is the next). */
  private views: Buffer[] = [];
  private viewAt = 0;
  private bodyWaiter:
    { resolve: (r: IteratorResult<Buffer>) => void; reject: (e: Error) => void } | undefined;
  private bodyTimeoutMs: number | undefined;
  private signal: AbortSignal | undefined;
  private readonly onAbort = () => this.destroy(abortError(this.signal));
  private answered = false;
  /** The event that says the connection is ready for a request. */
  private connectEvent: 'connect' | 'secureConnect' = 'connect';

  constructor(
    key: string,
    host: string,
    port: number,
    secure: (Partial<Http1TlsOptions> & { servername?: string; hostname: string }) | undefined,
    connectTimeoutMs: number | undefined,
    onRelease: (c: Connection, reusable: boolean, hintMs: number | undefined) => void,
  ) {
    this.key = key;
    this.onRelease = onRelease;
    const bufferSize = secure ? TLS_READ_BUFFER_BYTES : READ_BUFFER_BYTES;
    this.buffers = new ReadBuffers(() => Buffer.allocUnsafe(bufferSize), SPARE_READ_BUFFERS);
    const onread = {
      buffer: () => this.buffers.next(),
      callback: (n: number, buf: Buffer) => this.onRead(n, buf),
    };
    if (secure) {
      const { hostname, ...options } = secure;
      // tls.connect takes `onread` as net.connect does (Node's docs); @types/node leaves it out of its options.
      const connectOptions: tls.ConnectionOptions & { onread: typeof onread } = {
        ...options,
        host,
        port,
        ALPNProtocols: ['http/1.1'],
        // The certificate is for the URL's host, also when the connection goes to an address resolved for it.
        checkServerIdentity: (_host, cert) => tls.checkServerIdentity(hostname, cert),
        onread,
      };
      this.socket = tls.connect(connectOptions);
      this.socket.setNoDelay(true);
      this.socket.setKeepAlive(true, TCP_KEEPALIVE_DELAY_MS);
      this.connectEvent = 'secureConnect';
    } else {
      this.socket = net.connect({
        host,
        port,
        noDelay: true,
        keepAlive: true,
        keepAliveInitialDelay: TCP_KEEPALIVE_DELAY_MS,
        onread,
      });
    }
    if (connectTimeoutMs !== undefined) {
      this.arm(
        connectTimeoutMs,
        () => new Http1Error('HTTP1_CONNECT_TIMEOUT', `connect timeout (${connectTimeoutMs} ms)`),
      );
    }
    this.socket.on('end', () =>
      this.fail(new Http1Error('HTTP1_CLOSED', 'the server closed the connection')),
    );
    this.socket.on('error', (e) => this.fail(e));
    this.socket.on('close', () => this.fail(new Http1Error('HTTP1_CLOSED', 'the connection closed')));
  }

  /** Whether an idle connection may take a request. */
  get usable(): boolean {
    return this.phase === Phase.Idle && this.failure === undefined && !this.socket.destroyed;
  }

  connected(signal: AbortSignal | undefined): Promise<void> {
    return new Promise((resolve, reject) => {
      const onAbort = () => reject(abortError(signal));
      signal?.addEventListener('abort', onAbort, { once: true });
      const settle = (e?: Error) => {
        signal?.removeEventListener('abort', onAbort);
        this.socket.off(this.connectEvent, onConnect);
        this.socket.off('error', onError);
        this.socket.off('close', onClose);
        this.disarm();
        if (e) reject(e);
        else {
          this.phase = Phase.Idle;
          resolve();
        }
      };
      const onConnect = () => settle();
      const onError = (e: Error) => settle(this.failure ?? e);
      const onClose = () => settle(this.failure ?? new Http1Error('HTTP1_CLOSED', 'the connection closed'));
      this.socket.once(this.connectEvent, onConnect);
      this.socket.once('error', onError);
      this.socket.once('close', onClose);
    });
  }

  /** Sends the request and resolves with the response once its head has come. */
  exchange(head: string, o: Http1RequestOptions): Promise<Http1Response> {
    this.uses++;
    this.method = o.method;
    this.phase = Phase.Head;
    this.headParts = [];
    this.headBytes = 0;
    this.views = [];
    this.viewAt = 0;
    this.buffers.recycle();
    this.bodyComplete = false;
    this.answered = false;
    this.bodyTimeoutMs = o.bodyTimeoutMs;
    this.signal = o.signal;
    o.signal?.addEventListener('abort', this.onAbort, { once: true });
    return new Promise((resolve, reject) => {
      this.headWaiter = { resolve, reject };
      if (o.headersTimeoutMs !== undefined) {
        const ms = o.headersTimeoutMs;
        this.arm(ms, () => new Http1Error('HTTP1_HEADERS_TIMEOUT', `no response head within ${ms} ms`));
      }
      this.socket.write(head, 'latin1');
      this.resume();
    });
  }

  leaveIdle(): void {
    this.disarm();
    this.idleDone = undefined;
    this.socket.ref();
  }

  enterIdle(ms: number, onGone: () => void): void {
    this.phase = Phase.Idle;
    this.idleDone = onGone;
    this.socket.unref();
    this.arm(ms, () => new Http1Error('HTTP1_CLOSED', 'idle connection timed out'));
    // Read while idle, so that the server closing the connection is seen before a request is sent on it.
    this.resume();
  }

  destroy(error?: Error): void {
    if (error) this.fail(error);
    else this.socket.destroy();
  }

  /** The body's next chunk, a view of the read buffer valid until the next call. */
  next(): Promise<IteratorResult<Buffer>> {
    if (this.viewAt < this.views.length) {
      const view = this.views[this.viewAt++]!;
      return Promise.resolve({ value: view, done: false });
    }
    this.views = [];
    this.viewAt = 0;
    this.buffers.recycle();
    if (this.bodyComplete) {
      this.finish();
      return Promise.resolve({ value: undefined, done: true });
    }
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.bodyWaiter = { resolve, reject };
      if (this.bodyTimeoutMs !== undefined) {
        const ms = this.bodyTimeoutMs;
        this.arm(ms, () => new Http1Error('HTTP1_BODY_TIMEOUT', `no body bytes within ${ms} ms`));
      }
      this.resume();
    });
  }

  /** The reader stopped before the end: the rest of the body is not read, so the connection cannot be reused. */
  abandon(): void {
    if (this.phase === Phase.Body && !this.bodyComplete) {
      this.fail(new Http1Error('HTTP1_CLOSED', 'the reader stopped before the end of the body'));
    } else if (this.phase === Phase.Body) this.finish();
  }

  private onRead(n: number, buf: Buffer): boolean {
    const viewsBefore = this.views.length;
    try {
      return this.consume(n, buf);
    } catch (e) {
      this.fail(e as Error);
      return false;
    } finally {
      // The buffer goes round again unless views of it are out.
      this.buffers.filled(buf, this.views.length > viewsBefore);
    }
  }

  /** Handles `n` bytes just read into `buf`; false pauses the socket (views of `buf` are out). */
  private consume(n: number, buf: Buffer): boolean {
    let at = 0;
    if (this.phase === Phase.Head) {
      at = this.readHead(n, buf);
      if (at < 0) return true;
    }
    if (this.phase !== Phase.Body) {
      // Bytes nobody asked for: an idle connection spoke, or the answer ran on past its end.
      throw new ResponseParseError('bytes after the end of the response');
    }
    if (at < n) this.readBody(buf, at, n);
    if (this.views.length > this.viewAt && this.bodyWaiter) {
      const waiter = this.bodyWaiter;
      this.bodyWaiter = undefined;
      this.disarm();
      waiter.resolve({ value: this.views[this.viewAt++]!, done: false });
    } else if (this.bodyComplete && this.bodyWaiter) {
      const waiter = this.bodyWaiter;
      this.bodyWaiter = undefined;
      this.disarm();
      this.finish();
      waiter.resolve({ value: undefined, done: true });
      return true;
    }
    // Views of `buf` are out (or may be): no read may overwrite them before the reader asks again.
    return this.views.length === 0 && !this.bodyComplete;
  }

  /** Gathers the head; returns where the body starts in `buf`, or -1 when the head is not complete yet. */
  private readHead(n: number, buf: Buffer): number {
    let from = 0;
    for (;;) {
      const before = this.headBytes;
      this.headParts.push(Buffer.from(buf.subarray(from, n)));
      this.headBytes += n - from;
      const all = this.headParts.length === 1 ? this.headParts[0]! : Buffer.concat(this.headParts);
      this.headParts = [all];
      const end = all.indexOf('\r\n\r\n', Math.max(0, before - 3), 'latin1');
      if ((end === -1 ? this.headBytes : end) > MAX_HEAD_BYTES) {
        throw new Http1Error('HTTP1_HEAD_TOO_LARGE', `response head larger than ${MAX_HEAD_BYTES} bytes`);
      }
      if (end === -1) return -1;
      const head = parseResponseHead(all.toString('latin1', 0, end));
      const bodyAt = from + (end + 4 - before);
      this.headParts = [];
      this.headBytes = 0;
      if (head.statusCode >= 100 && head.statusCode < 200) {
        if (head.statusCode === 101) throw new ResponseParseError('unexpected 101 Switching Protocols');
        // An interim answer (100 Continue, 103 Early Hints): the final one follows.
        if (bodyAt >= n) return -1;
        from = bodyAt;
        continue;
      }
      this.startBody(head);
      return bodyAt;
    }
  }

  private startBody(head: ResponseHead): void {
    this.disarm();
    this.framing = bodyFraming(this.method, head);
    this.reusable =
      keepsAlive(head) &&
      this.framing.kind !== 'close' &&
      !(this.framing.kind === 'chunked' && head.headers['content-length'] !== undefined);
    this.hintMs = keepAliveHintMs(head);
    this.lengthLeft = this.framing.kind === 'length' ? this.framing.length : 0;
    this.chunked = this.framing.kind === 'chunked' ? new ChunkedDecoder() : undefined;
    this.bodyComplete =
      this.framing.kind === 'none' || (this.framing.kind === 'length' && this.lengthLeft === 0);
    this.phase = Phase.Body;
    this.answered = true;
    const waiter = this.headWaiter;
    this.headWaiter = undefined;
    waiter?.resolve({
      statusCode: head.statusCode,
      statusText: head.statusText,
      headers: head.headers,
      body: new Http1Body(this),
    });
  }

  private readBody(buf: Buffer, from: number, n: number): void {
    if (this.bodyComplete) throw new ResponseParseError('bytes after the end of the response');
    switch (this.framing.kind) {
      case 'length': {
        const take = Math.min(this.lengthLeft, n - from);
        this.views.push(buf.subarray(from, from + take));
        this.lengthLeft -= take;
        if (this.lengthLeft === 0) {
          this.bodyComplete = true;
          if (from + take < n) this.reusable = false; // more than Content-Length: never reuse
        }
        break;
      }
      case 'chunked': {
        const end = this.chunked!.feed(buf, from, n, (view) => this.views.push(view));
        if (this.chunked!.done) {
          this.bodyComplete = true;
          if (end < n) this.reusable = false;
        }
        break;
      }
      case 'close':
        this.views.push(buf.subarray(from, n));
        break;
      case 'none':
        throw new ResponseParseError('bytes after the end of the response');
    }
  }

  /** The body was read to its end: the connection goes back to the agent. */
  private finish(): void {
    if (this.phase !== Phase.Body) return;
    this.phase = Phase.Done;
    this.signal?.removeEventListener('abort', this.onAbort);
    this.signal = undefined;
    this.onRelease(this, this.reusable && this.failure === undefined, this.hintMs);
  }

  /** The connection failed or ended: whoever waits hears why, and the socket is gone. */
  private fail(error: Error): void {
    const closeDelimitedEnd =
      this.phase === Phase.Body &&
      this.framing.kind === 'close' &&
      error instanceof Http1Error &&
      error.code === 'HTTP1_CLOSED' &&
      this.failure === undefined;
    if (closeDelimitedEnd) {
      // A body that runs to the close has ended.
      this.bodyComplete = true;
      this.reusable = false;
      if (this.bodyWaiter && this.viewAt >= this.views.length) {
        const waiter = this.bodyWaiter;
        this.bodyWaiter = undefined;
        this.finish();
        waiter.resolve({ value: undefined, done: true });
      }
      this.socket.destroy();
      return;
    }
    if (this.failure) return;
    this.failure = error;
    this.disarm();
    this.socket.destroy();
    this.signal?.removeEventListener('abort', this.onAbort);
    if (this.headWaiter) {
      const waiter = this.headWaiter;
      this.headWaiter = undefined;
      // Nothing of the answer came on a connection that served before: the server closed it while idle.
      const stale = !this.answered && this.headBytes === 0 && this.uses > 1 && isConnectionLoss(error);
      waiter.reject(stale ? new StaleConnectionError(error) : error);
    }
    if (this.bodyWaiter) {
      const waiter = this.bodyWaiter;
      this.bodyWaiter = undefined;
      waiter.reject(error);
    }
    if (this.phase === Phase.Body && this.bodyComplete && this.viewAt >= this.views.length) this.finish();
    else if (this.phase === Phase.Idle || this.phase === Phase.Connecting) this.idleDone?.();
    if (this.phase === Phase.Head || (this.phase === Phase.Body && !this.bodyComplete)) {
      this.phase = Phase.Done;
      this.onRelease(this, false, undefined);
    }
  }

  private resume(): void {
    if (!this.socket.destroyed) this.socket.resume();
  }

  private arm(ms: number, error: () => Error): void {
    this.disarm();
    this.timer = setTimeout(() => this.fail(error()), ms);
    this.timer.unref();
  }

  private disarm(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/**
 * A response body: async-iterable once; each chunk is a view of the connection's read buffer, valid until the
 * next chunk is asked for. Stopping early ends the connection (its rest is never read).
 */
export class Http1Body implements AsyncIterable<Buffer> {
  private iterated = false;
  constructor(private readonly conn: Connection) {}

  [Symbol.asyncIterator](): AsyncIterator<Buffer> {
    if (this.iterated) throw new TypeError('an HTTP response body can be read once');
    this.iterated = true;
    return {
      next: () => this.conn.next(),
      return: () => {
        this.conn.abandon();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }

  /**
   * Reads and drops the rest of the body so the connection can be reused, when it is at most `limit` bytes;
   * otherwise ends the connection. Never throws.
   */
  async dump({ limit }: { limit: number }): Promise<void> {
    if (this.iterated) return;
    let seen = 0;
    const it = this[Symbol.asyncIterator]();
    try {
      for (;;) {
        const r = await it.next();
        if (r.done) return;
        seen += r.value.length;
        if (seen > limit) break;
      }
    } catch {
      return;
    }
    await it.return!();
  }
}

function defaultPort(u: URL): number {
  return Number(u.port || (u.protocol === 'https:' ? '443' : '80'));
}

/** The request head: request line, Host, the caller's fields (checked), the blank line. */
function requestHead(method: string, u: URL, headers: Record<string, string>): string {
  let head = `${method} ${u.pathname}${u.search} HTTP/1.1\r\n`;
  if (!Object.keys(headers).some((name) => name.toLowerCase() === 'host')) head += `host: ${u.host}\r\n`;
  for (const [name, value] of Object.entries(headers)) {
    validateHeaderName(name);
    validateHeaderValue(name, value);
    head += `${name}: ${value}\r\n`;
  }
  return `${head}\r\n`;
}

function abortError(signal: AbortSignal | undefined): Error {
  const reason: unknown = signal?.reason;
  return reason instanceof Error ? reason : new DOMException('This operation was aborted', 'AbortError');
}

/** The server closed or reset the connection (not a timeout, a parse error or our own abort). */
function isConnectionLoss(e: Error): boolean {
  const code = (e as { code?: unknown }).code;
  return code === 'HTTP1_CLOSED' || code === 'ECONNRESET' || code === 'EPIPE';
}
