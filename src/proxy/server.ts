// dfdaemon's HTTP proxy (upstream dragonfly-client/src/proxy/mod.rs) on proxy.server.{ip,port}, HTTP/1.1:
// - absolute-form requests (`GET http://host/path`) are proxied: GETs matching a rule (or carrying
//   X-Dragonfly-Use-P2P: true) go through P2P, everything else is forwarded to the origin;
// - origin-form requests (`GET /v2/...`) are registry-mirror requests, sent to the registry named by
//   X-Dragonfly-Registry, containerd's `ns` parameter, or proxy.registryMirror.addr, then routed the same way;
// - CONNECT is always intercepted: TLS is terminated with a leaf certificate for the requested host, and the
//   requests inside the tunnel are handled as https:// requests to that host.

import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import type { Duplex } from 'node:stream';
import type { ProxyConfig, ProxyRule } from '../config/dfdaemon.js';
import type { Caller } from '../core/caller.js';
import { DfError, toDfError } from '../core/errors.js';
import { SourceAddressPolicy } from '../backend/address-policy.js';
import { Priority, SchedulingPolicy, TaskType, type Download } from '../gen/common.js';
import { checkBasicAuth } from './basic-auth.js';
import { Forwarder, ForwardError } from './forward.js';
import * as hdr from './headers.js';
import { ifRangeMatches, parseRange, type RangeAnswer } from './range.js';
import { mirrorUpstream, mirrorUrl } from './registry-mirror.js';
import { RequestRate } from './request-rate.js';
import { HEADER_RULE, ProxyRules, downloadUrl } from './rules.js';
import { downloadErrorAnswer, sendError, streamSession, type P2PDownloader } from './p2p.js';

/** Times a P2P answer starts again when the origin changed before any byte went out (see serveP2P). */
const SOURCE_CHANGED_RETRIES = 1;

/**
 * How long an intercepted CONNECT tunnel may take to complete its TLS handshake (Node's tls.Server default is 120 s;
 * a client sends its ClientHello as soon as it reads the 200).
 */
export const TLS_HANDSHAKE_TIMEOUT_MS = 30_000;

/** Upstream's MIN_PIECE_LENGTH: X-Dragonfly-Piece-Length below it is refused. */
const MIN_PIECE_LENGTH = 4 * 1024 * 1024;

export interface ProxyMetrics {
  /** proxy_request_total */
  request(): void;
  /** proxy_request_failure_total */
  failure(): void;
  /** proxy_request_via_dfdaemon_total */
  viaDfdaemon(): void;
}

export interface LeafCertificateSource {
  secureContextFor(host: string): Promise<SecureContext>;
}

export interface ProxyServerOptions {
  config: ProxyConfig;
  /** host.ip, sent back as X-Dragonfly-Server-IP. */
  serverIp: string;
  downloader: P2PDownloader;
  /** Leaf certificates for CONNECT interception. */
  certificates: LeafCertificateSource;
  /** download.concurrentPieceCount, sent with each Download as upstream does. */
  concurrentPieceCount: number;
  /** Extra CA certificates (PEM) trusted for HTTPS origins, e.g. proxy.registryMirror.cert. */
  ca?: string[];
  /**
   * Where a client that is not on this host (not loopback) may make the proxy connect, by P2P or forwarding
   * (security.allowedPrivateSources); absent: no loopback, link-local or private address.
   */
  sourcePolicy?: SourceAddressPolicy;
  metrics?: ProxyMetrics;
  /**
   * Connections held at once (proxy.server.maxConnections, as lowered to fit the open-file limit); one more is
   * closed as soon as it is accepted. Default: no cap.
   */
  maxConnections?: number;
  onConnectionRefused?: () => void;
  /** How long a CONNECT tunnel may take to complete its TLS handshake; TLS_HANDSHAKE_TIMEOUT_MS by default. */
  tlsHandshakeTimeoutMs?: number;
  /**
   * The local user behind a client connection (dfdaemon: /proc/net/tcp, see daemon/local-caller.ts), asked only
   * for X-Dragonfly-Output-Path. Without it such requests are refused.
   */
  callerOf?: (socket: Socket) => Promise<Caller>;
  log: {
    info(o: object, m: string): void;
    warn(o: object, m: string): void;
    debug(o: object, m: string): void;
  };
}

export class ProxyServer {
  private readonly o: ProxyServerOptions;
  /** Also parses the requests inside intercepted CONNECT tunnels, so they share its timeouts and close(). */
  private readonly server: Server;
  /** The authority (host, and port unless 443) each intercepted TLS socket was CONNECTed to. */
  private readonly tunnels = new WeakMap<Socket, string>();
  /** The address of the client of each intercepted TLS socket (its CONNECT's). */
  private readonly tunnelClients = new WeakMap<Socket, string | undefined>();
  private readonly sourcePolicy: SourceAddressPolicy;
  private readonly rules: ProxyRules;
  private readonly rate: RequestRate;
  private readonly forwarder: Forwarder;
  /**
   * This proxy's Via entry, on what it forwards and on the P2P download's source requests. A request that comes
   * back with it is a loop (X-Dragonfly-Registry, ns or registryMirror.addr naming this proxy) and is refused:
   * otherwise one request became an endless chain of new connections.
   */
  private readonly via = `1.1 dfdaemon-${randomBytes(4).toString('hex')}`;

  constructor(o: ProxyServerOptions) {
    this.o = o;
    this.rules = new ProxyRules(o.config.rules);
    this.rate = new RequestRate(o.config.server.requestRateLimit);
    this.sourcePolicy = o.sourcePolicy ?? SourceAddressPolicy.denyPrivate();
    this.forwarder = new Forwarder({ ca: o.ca, via: this.via, sourcePolicy: this.sourcePolicy });
    const handler = (req: IncomingMessage, res: ServerResponse) => void this.handle(req, res);
    // requestTimeout 0: an upload through the proxy may take longer than Node's default 5 minutes. It would also
    // turn headersTimeout off (Node defaults it to min(60 s, requestTimeout)): a connection, or a tunnel, that
    // never sends a whole request head would be kept forever.
    this.server = createServer(
      { requestTimeout: 0, headersTimeout: 60_000, keepAliveTimeout: 60_000 },
      handler,
    );
    if (o.maxConnections !== undefined) {
      this.server.maxConnections = o.maxConnections;
      this.server.on('drop', () => o.onConnectionRefused?.());
    }
    // No 'clientError' listener: Node's own answers a malformed request with 400, an oversized head with 431 and a
    // header timeout with 408 before closing (a listener that only destroyed the socket sent nothing at all).
    this.server.on('connect', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      // Not a CONNECT inside an intercepted tunnel.
      if (this.tunnels.has(req.socket)) socket.destroy();
      else void this.intercept(req, socket as Socket, head);
    });
  }

  /** Starts listening; resolves with the bound port. */
  async listen(ip: string, port: number): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, ip, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    // Once listening, an error is a failed accept (EMFILE, ECONNABORTED): transient, and must not end the daemon.
    this.server.on('error', (e) => this.o.log.debug({ err: e.message }, 'proxy accept failed'));
    return (this.server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await closed;
    await this.forwarder.close();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const m = this.o.metrics;
    m?.request();
    res.on('finish', () => {
      if (res.statusCode >= 400) m?.failure();
    });
    try {
      if (!this.rate.tryAcquire()) {
        sendError(res, 'proxy', 429, 'proxy request rate limit (proxy.server.requestRateLimit) exceeded');
        return;
      }
      if (hdr.hasVia(req.headers, this.via)) {
        sendError(res, 'proxy', 508, 'forwarding loop: this request already went through this proxy');
        return;
      }
      if (!this.authorized(req, res)) return;
      let url: URL;
      try {
        url = this.targetUrl(req);
      } catch (e) {
        sendError(res, 'proxy', 400, `bad request target "${req.url}": ${(e as Error).message}`);
        return;
      }
      if (!this.isLocalClient(req)) {
        // A client on another host: the target must be an address remote callers may reach (no loopback
        // services of this machine, no private network, no metadata service), unless allowed by config.
        try {
          await this.sourcePolicy.checkUrl(url.href);
        } catch (e) {
          if (!(e instanceof DfError) || e.code !== 'PERMISSION_DENIED') throw e;
          this.o.log.warn({ client: this.clientAddress(req), url: url.origin }, e.message);
          sendError(res, 'proxy', 403, e.message);
          return;
        }
      }
      const rule = req.method === 'GET' ? this.p2pRule(req, url) : undefined;
      const range = rule ? parseRange(hdr.single(req.headers, 'range'), Number.MAX_SAFE_INTEGER) : undefined;
      if (rule && range?.kind !== 'unsupported') {
        await this.viaP2P(req, res, url, rule);
        return;
      }
      await this.forward(req, res, url);
    } catch (e) {
      this.o.log.warn({ url: req.url, err: (e as Error).message }, 'proxy request failed');
      sendError(res, 'proxy', 500, (e as Error).message);
    }
  }

  private authorized(req: IncomingMessage, res: ServerResponse): boolean {
    const auth = this.o.config.server.basicAuth;
    // A tunnel exists only after its CONNECT passed the check; clients send credentials on the CONNECT alone.
    if (!auth || this.tunnels.has(req.socket)) return true;
    const result = checkBasicAuth(req.headers, auth);
    if (result === 'ok') return true;
    if (result === 'malformed') {
      sendError(res, 'proxy', 400, 'malformed basic auth credentials');
    } else {
      sendError(res, 'proxy', 401, 'proxy authentication required (proxy.server.basicAuth)', {
        'www-authenticate': 'Basic realm="dfdaemon"',
        'proxy-authenticate': 'Basic realm="dfdaemon"',
      });
    }
    return false;
  }

  /** The absolute URL a request is for: in a tunnel, as a proxy request, or as a registry-mirror request. */
  private targetUrl(req: IncomingMessage): URL {
    const raw = req.url ?? '/';
    const tunnel = this.tunnels.get(req.socket);
    if (tunnel !== undefined) {
      // Origin-form only: anything else (`*`, a URL) glued to the authority would name another host.
      if (!raw.startsWith('/')) throw new Error('expected a path inside a CONNECT tunnel');
      return new URL(`https://${tunnel}${raw}`);
    }
    if (/^https?:\/\//i.test(raw)) {
      const url = new URL(raw);
      // RFC 9110 §4.2.4: userinfo is an error. It was never sent on, only kept in the task URL, the logs and the
      // scheduler's announce.
      if (url.username || url.password) throw new Error('credentials in the URL are not accepted');
      return url;
    }
    if (!raw.startsWith('/')) throw new Error('expected an absolute URL or a path');
    const base = mirrorUpstream(raw, req.headers, this.o.config.registryMirror.addr);
    return mirrorUrl(base, raw);
  }

  /** The client's address: the TCP peer, or for a request inside a tunnel, the client that sent the CONNECT. */
  private clientAddress(req: IncomingMessage): string | undefined {
    return this.tunnels.has(req.socket) ? this.tunnelClients.get(req.socket) : req.socket.remoteAddress;
  }

  /** A client on this host (loopback): it may reach what dfdaemon reaches, as it could by itself. */
  private isLocalClient(req: IncomingMessage): boolean {
    return isLoopback(this.clientAddress(req));
  }

  private p2pRule(req: IncomingMessage, url: URL): ProxyRule | undefined {
    return this.rules.match(url) ?? (hdr.useP2P(req.headers) ? HEADER_RULE : undefined);
  }

  private async forward(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    this.o.log.debug({ method: req.method, url: url.href }, 'proxy forwards request');
    try {
      await this.forwarder.forward(req, res, url, { remoteCaller: !this.isLocalClient(req) });
    } catch (e) {
      if (e instanceof ForwardError) {
        this.o.log.warn({ url: url.origin, err: e.message }, 'proxy cannot reach origin');
        sendError(res, 'proxy', 502, e.message);
      } else throw e;
    }
  }

  private async viaP2P(req: IncomingMessage, res: ServerResponse, url: URL, rule: ProxyRule): Promise<void> {
    this.o.metrics?.viaDfdaemon();
    let download: Download;
    try {
      download = this.makeDownload(req, url, rule);
    } catch (e) {
      const denied = e instanceof DfError && e.code === 'PERMISSION_DENIED';
      sendError(res, 'proxy', denied ? 403 : 400, (e as Error).message);
      return;
    }
    const abort = new AbortController();
    const onClose = () => {
      if (!res.writableFinished) abort.abort(new DfError('CANCELLED', 'the proxy client went away'));
    };
    res.on('close', onClose);
    try {
      for (let attempt = 0; ; attempt++) {
        // A copy each time: a session narrows its Download to the selected range.
        const again = await this.serveP2P(
          req,
          res,
          { ...download },
          abort.signal,
          attempt < SOURCE_CHANGED_RETRIES,
        );
        if (!again) return;
      }
    } finally {
      res.off('close', onClose);
    }
  }

  /**
   * One attempt at a P2P answer. True when it should be made once more: the origin changed under the download
   * (SOURCE_CHANGED) before any byte of this answer went out, and dfdaemon dropped the task, so the next attempt
   * serves the new version whole. After the headers went out the connection is cut instead: the client has a
   * prefix of the old version under the old ETag, never bytes of two versions.
   */
  private async serveP2P(
    req: IncomingMessage,
    res: ServerResponse,
    download: Download,
    signal: AbortSignal,
    mayRetry: boolean,
  ): Promise<boolean> {
    let session;
    try {
      const caller: Caller =
        download.outputPath === undefined
          ? { kind: 'internal' }
          : this.o.callerOf
            ? await this.o.callerOf(req.socket)
            : { kind: 'unidentified', why: 'no caller lookup configured', via: 'the proxy' };
      session = await this.o.downloader.open(download, signal, caller, {
        remoteCaller: !this.isLocalClient(req),
      });
    } catch (e) {
      const err = toDfError(e);
      const a = downloadErrorAnswer(err);
      this.o.log.warn({ url: download.url, err: err.message }, 'proxy download failed to start');
      sendError(res, a.type, a.status, err.message, a.headers);
      return false;
    }
    try {
      const ifRange = hdr.single(req.headers, 'if-range');
      const rangeHeader =
        ifRange === undefined || ifRangeMatches(ifRange, session.responseHeader)
          ? hdr.single(req.headers, 'range')
          : undefined;
      const range: RangeAnswer = parseRange(rangeHeader, session.contentLength);
      if (range.kind === 'unsatisfiable') {
        sendError(res, 'proxy', 416, `range ${req.headers.range} is outside ${session.contentLength} bytes`, {
          'content-range': `bytes */${session.contentLength}`,
        });
        return false;
      }
      const selected = range.kind === 'range' ? { start: range.start, length: range.length } : undefined;
      if (selected) session.selectRange(selected);
      if (download.prefetch && selected) this.o.downloader.prefetch(download);
      this.o.log.info(
        { taskId: session.taskId, url: download.url, range: selected },
        'proxy serves request through P2P',
      );
      // X-Dragonfly-Output-Path: the file is written before the answer, so a failure to write it is the answer
      // (writing it completes the task, known digests checked). Otherwise the task completes — and its known
      // digest is checked — before the last piece goes out.
      const toOutput = download.outputPath !== undefined && !selected;
      if (toOutput) await session.writeOutput();
      await streamSession(res, session, {
        serverIp: this.o.serverIp,
        range: selected,
        beforeLastPiece: toOutput ? undefined : () => session.finish(),
      });
      return false;
    } catch (e) {
      const err = toDfError(e);
      if (signal.aborted) {
        this.o.log.info({ taskId: session.taskId }, 'proxy client went away');
        res.destroy();
        return false;
      }
      session.fail(err);
      if (err.code === 'SOURCE_CHANGED' && mayRetry && !res.headersSent) {
        this.o.log.info({ taskId: session.taskId, err: err.message }, 'proxy download starts again');
        return true;
      }
      this.o.log.warn({ taskId: session.taskId, err: err.message }, 'proxy download failed');
      const a = downloadErrorAnswer(err);
      sendError(res, a.type, a.status, err.message, a.headers);
      return false;
    } finally {
      session.release();
    }
  }

  /** The Download for a P2P-routed request (upstream make_download_task_request). */
  private makeDownload(req: IncomingMessage, url: URL, rule: ProxyRule): Download {
    const h = req.headers;
    const pieceLength = hdr.pieceLengthHeader(h);
    if (pieceLength !== undefined && pieceLength < MIN_PIECE_LENGTH) {
      throw new Error(`X-Dragonfly-Piece-Length ${pieceLength} is less than the minimum ${MIN_PIECE_LENGTH}`);
    }
    const hasRange = h.range !== undefined;
    const outputPath = hdr.single(h, hdr.H.outputPath);
    if (outputPath !== undefined && !isLoopback(req.socket.remoteAddress)) {
      // dfdaemon usually runs as root: a remote client must not create files on this host (upstream accepts it).
      throw new DfError(
        'PERMISSION_DENIED',
        'X-Dragonfly-Output-Path is accepted only from clients on this host (loopback)',
      );
    }
    return {
      url: downloadUrl(url, rule),
      type: TaskType.STANDARD,
      tag: hdr.single(h, hdr.H.tag),
      application: hdr.single(h, hdr.H.application),
      priority: hdr.priority(h) as Priority,
      filteredQueryParams: hdr.filteredQueryParams(h, rule.filteredQueryParams),
      requestHeader: { ...hdr.requestHeaderMap(h), via: hdr.appendVia(h.via, this.via) },
      pieceLength,
      outputPath,
      disableBackToSource: this.o.config.disableBackToSource,
      needBackToSource: false,
      schedulingPolicy:
        hdr.schedulingPolicy(h, rule.schedulingPolicy) === 'always'
          ? SchedulingPolicy.ALWAYS
          : SchedulingPolicy.AUTO,
      certificateChain: [],
      prefetch: hasRange && (hdr.prefetchHeader(h) ?? this.o.config.prefetch),
      isPrefetch: false,
      needPieceContent: false,
      forceHardLink: hdr.forceHardLink(h),
      contentForCalculatingTaskId: hdr.single(h, hdr.H.contentForCalculatingTaskId),
      remoteIp: req.socket.remoteAddress,
      concurrentPieceCount: this.o.concurrentPieceCount,
      overwrite: false,
      enableTaskIdBasedBlobDigest: hdr.enableTaskIdBasedBlobDigest(
        h,
        this.o.config.registryMirror.enableTaskIDBasedBlobDigest,
      ),
      metadataOnly: false,
    };
  }

  /** CONNECT: answer 200, then terminate TLS with a leaf certificate for the host and parse what comes inside. */
  private async intercept(req: IncomingMessage, socket: Socket, head: Buffer): Promise<void> {
    socket.on('error', () => socket.destroy());
    // What the client sends while the CONNECT is checked (a ClientHello sent early, or its end: a client that
    // sends CONNECT and leaves at once) is read here; an end read here would never reach the TLS socket.
    const early: Buffer[] = head.length > 0 ? [head] : [];
    let ended = false;
    const onEarlyData = (c: Buffer) => early.push(c);
    const onEarlyEnd = () => (ended = true);
    socket.on('data', onEarlyData);
    socket.once('end', onEarlyEnd);
    this.o.metrics?.request();
    const refuse = (status: number, reason: string, extra = '') => {
      this.o.metrics?.failure();
      // Destroyed once written: the http server no longer tracks a CONNECT socket, and end() alone left it
      // half-open for as long as the client kept its side (close() waited for it).
      socket.end(
        `HTTP/1.1 ${status} ${reason}\r\n${hdr.H.errorType}: proxy\r\n${extra}Content-Length: 0\r\nConnection: close\r\n\r\n`,
        () => socket.destroy(),
      );
    };
    if (!this.rate.tryAcquire()) return refuse(429, 'Too Many Requests');
    const auth = this.o.config.server.basicAuth;
    if (auth) {
      const result = checkBasicAuth(req.headers, auth);
      if (result === 'malformed') return refuse(400, 'Bad Request');
      if (result !== 'ok') {
        return refuse(407, 'Proxy Authentication Required', 'Proxy-Authenticate: Basic realm="dfdaemon"\r\n');
      }
    }
    const target = req.url ?? '';
    let host: string;
    /** host[:port] as the URL normalizes it: no userinfo, no trailing slash, no default port 443. */
    let authority: string;
    let u: URL;
    try {
      u = new URL(`https://${target}`);
      if (!u.hostname || u.pathname !== '/' || u.search) throw new Error('not host:port');
      host = u.hostname.replace(/^\[|\]$/g, '');
      authority = u.host;
    } catch {
      return refuse(400, 'Bad Request');
    }
    if (!isLoopback(socket.remoteAddress)) {
      // A client on another host may tunnel only to addresses remote callers may reach (the requests inside are
      // checked again, with the connection the proxy makes).
      try {
        await this.sourcePolicy.resolve(host, u.port || 443);
      } catch (e) {
        if (e instanceof DfError && e.code === 'PERMISSION_DENIED') {
          this.o.log.warn({ client: socket.remoteAddress, target }, e.message);
          return refuse(403, 'Forbidden');
        }
        // A host that does not resolve: the requests inside the tunnel fail with 502, as for a local client.
      }
    }
    let context: SecureContext;
    try {
      context = await this.o.certificates.secureContextFor(host);
    } catch (e) {
      this.o.log.warn({ host, err: (e as Error).message }, 'no certificate for CONNECT host');
      return refuse(502, 'Bad Gateway');
    }
    socket.off('data', onEarlyData);
    socket.off('end', onEarlyEnd);
    socket.pause();
    // close() came while the certificate was being made (the server no longer tracks this socket), or the client
    // is gone: end it here.
    if (!this.server.listening || ended) return void socket.destroy();
    socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (early.length > 0) socket.unshift(Buffer.concat(early));
    const tls = new TLSSocket(socket, {
      isServer: true,
      secureContext: context,
      ALPNProtocols: ['http/1.1', 'http/1.0'],
    });
    tls.on('error', (e) => {
      this.o.log.debug({ host, err: e.message }, 'intercepted TLS connection failed');
      tls.destroy();
    });
    // Until its TLS handshake is done a tunnel is no HTTP connection yet: a client that went away after the 200
    // (half-closed; server sockets are half-open) or never started TLS was held until the server's periodic
    // headers-timeout check, about 90 s (found by the proxy fuzz). It is let go at its end, or after the timeout.
    let secured = false;
    const handshake = setTimeout(
      () => tls.destroy(),
      this.o.tlsHandshakeTimeoutMs ?? TLS_HANDSHAKE_TIMEOUT_MS,
    );
    handshake.unref();
    tls.once('secure', () => {
      secured = true;
      clearTimeout(handshake);
    });
    tls.once('end', () => {
      if (!secured) tls.destroy();
    });
    tls.once('close', () => clearTimeout(handshake));
    this.tunnels.set(tls, authority);
    this.tunnelClients.set(tls, socket.remoteAddress);
    // The server tracks it as a connection: headersTimeout, keep-alive timeout and closeAllConnections apply.
    this.server.emit('connection', tls);
  }
}

/** Whether a peer address is this host's loopback (IPv4 127/8, ::1, or IPv4-mapped loopback). */
export function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address;
  return v4.startsWith('127.') || address === '::1';
}
