// A ProxyServer on loopback with a fake P2P downloader (content from a Buffer, pieces in any order), a real CA for
// CONNECT interception, and small raw-socket and HTTP clients: hostile inputs without a daemon.

import fs from 'node:fs';
import {
  createServer,
  request,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import tls from 'node:tls';
import type { ProxyConfig } from '../../../src/config/dfdaemon.js';
import { DfError } from '../../../src/core/errors.js';
import type { Download } from '../../../src/gen/common.js';
import { LeafCertificates, loadOrCreateProxyCa, type ProxyCa } from '../../../src/proxy/certificates.js';
import type { P2PDownloader, P2PPiece, P2PSession } from '../../../src/proxy/p2p.js';
import { ProxyServer, type LeafCertificateSource } from '../../../src/proxy/server.js';

export const quietLog = { info() {}, warn() {}, debug() {} };

export function proxyConfig(
  o: { basicAuth?: { username: string; password: string }; mirror?: string } = {},
): ProxyConfig {
  return {
    server: { ip: '127.0.0.1', port: 0, requestRateLimit: 0, maxConnections: 2048, basicAuth: o.basicAuth },
    rules: [{ regex: 'p2p/', useTLS: false, filteredQueryParams: [], schedulingPolicy: 'auto' }],
    registryMirror: { addr: o.mirror ?? 'http://127.0.0.1:1', enableTaskIDBasedBlobDigest: false },
    disableBackToSource: false,
    prefetch: false,
    prefetchBandwidthLimit: 1e9,
    readBufferSize: 65536,
  };
}

export interface FakeOptions {
  pieceLength?: number;
  /** The order pieces are delivered in (default: ascending). */
  order?: (pieces: P2PPiece[]) => P2PPiece[];
  /** Delay before each piece, ms. */
  delayMs?: number;
  openError?: Error;
  /** Reads of stored bytes come back this many bytes short (a truncated content file). */
  shortReadBy?: number;
  /** The download fails with this error when piece `failAt.piece` would come. */
  failAt?: { piece: number; error: Error };
  responseHeader?: Record<string, string>;
  /** Writing X-Dragonfly-Output-Path fails with this error. */
  outputError?: Error;
}

/** A P2PDownloader over `content` that records what it was asked. */
export class FakeDownloader implements P2PDownloader {
  readonly opened: Download[] = [];
  released = 0;
  readonly failed: DfError[] = [];
  readonly outputsWritten: string[] = [];

  constructor(
    private readonly content: Buffer,
    private readonly o: FakeOptions = {},
  ) {}

  async open(download: Download, signal: AbortSignal): Promise<P2PSession> {
    this.opened.push(download);
    if (this.o.openError) throw this.o.openError;
    const { content, o } = this;
    const pieceLength = o.pieceLength ?? 4;
    let pieces = Array.from({ length: Math.ceil(content.length / pieceLength) }, (_, i) => ({
      number: i,
      offset: i * pieceLength,
      length: Math.min(pieceLength, content.length - i * pieceLength),
    }));
    return {
      taskId: 'f'.repeat(64),
      contentLength: content.length,
      pieceLength,
      responseHeader: o.responseHeader ?? {},
      isFinished: false,
      selectRange: (r) => {
        pieces = pieces.filter((p) => p.offset < r.start + r.length && p.offset + p.length > r.start);
      },
      async *pieces() {
        for (const p of o.order ? o.order(pieces) : pieces) {
          if (o.delayMs) await new Promise((r) => setTimeout(r, o.delayMs));
          if (signal.aborted) throw signal.reason;
          if (o.failAt?.piece === p.number) throw o.failAt.error;
          yield p;
        }
      },
      send: async (offset, length, out) => {
        // A real send reads the content file first, which completes on another turn of the event loop.
        await new Promise((resolve) => setImmediate(resolve));
        const bytes = content.subarray(offset, offset + Math.max(0, length - (o.shortReadBy ?? 0)));
        if (!out.write(bytes)) await once(out, 'drain');
        return bytes.length;
      },
      writeOutput: async () => {
        if (o.outputError) throw o.outputError;
        this.outputsWritten.push(download.outputPath!);
      },
      finish: async () => {},
      fail: (e) => void this.failed.push(e),
      release: () => void this.released++,
    };
  }

  prefetch(): void {}
}

export interface Proxy {
  server: ProxyServer;
  port: number;
  ca: ProxyCa;
  close(): Promise<void>;
}

export async function startProxy(
  o: {
    config?: ProxyConfig;
    downloader?: P2PDownloader;
    /** Wraps the CA's leaf certificates (e.g. to slow them down). */
    certificates?: (leaves: LeafCertificateSource) => LeafCertificateSource;
    tlsHandshakeTimeoutMs?: number;
  } = {},
): Promise<Proxy> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'proxy-unit-'));
  const ca = await loadOrCreateProxyCa({ dir, log: quietLog });
  const server = new ProxyServer({
    config: o.config ?? proxyConfig(),
    serverIp: '127.0.0.1',
    downloader: o.downloader ?? new FakeDownloader(Buffer.from('0123456789')),
    certificates: o.certificates ? o.certificates(new LeafCertificates(ca)) : new LeafCertificates(ca),
    concurrentPieceCount: 4,
    tlsHandshakeTimeoutMs: o.tlsHandshakeTimeoutMs,
    log: quietLog,
  });
  const port = await server.listen('127.0.0.1', 0);
  return {
    server,
    port,
    ca,
    close: async () => {
      await server.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface Origin {
  port: number;
  requests: { method: string; url: string; headers: IncomingHttpHeaders }[];
  close(): Promise<void>;
}

export async function startOrigin(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<Origin> {
  const requests: Origin['requests'] = [];
  const s = createServer((req, res) => {
    requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    handler(req, res);
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return {
    port: (s.address() as AddressInfo).port,
    requests,
    close: () => {
      s.closeAllConnections();
      return new Promise<void>((r) => s.close(() => r()));
    },
  };
}

export interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** One request to the proxy (absolute-form when `target` is a URL). */
export function get(port: number, target: string, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const r = request({ host: '127.0.0.1', port, path: target, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
      );
      res.on('error', reject);
    });
    r.on('error', reject);
    r.end();
  });
}

/** A CONNECT to the proxy; resolves with the raw socket once the proxy answered 200, else rejects with the answer. */
export async function connectTunnel(port: number, target: string, extraHeaders = ''): Promise<net.Socket> {
  const sock = net.connect(port, '127.0.0.1');
  sock.on('error', () => {});
  await new Promise((r) => sock.once('connect', r));
  sock.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n${extraHeaders}\r\n`);
  const head = await new Promise<string>((r) => sock.once('data', (d: Buffer) => r(d.toString('latin1'))));
  if (!head.startsWith('HTTP/1.1 200')) {
    sock.destroy();
    throw new Error(head.split('\r\n')[0]);
  }
  return sock;
}

/** TLS over a CONNECT tunnel, trusting the proxy's CA. */
export async function tunnelTls(sock: net.Socket, ca: ProxyCa, servername?: string): Promise<tls.TLSSocket> {
  const t = tls.connect({ socket: sock, servername, ca: ca.certPem, rejectUnauthorized: false });
  t.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    t.once('secureConnect', () => resolve());
    t.once('error', reject);
  });
  return t;
}

/** Writes `text` and collects what comes back until the peer closes or `waitMs` passes. */
/** A connected socket to the proxy (errors ignored: tests look at what was read). */
export async function connectTo(port: number): Promise<net.Socket> {
  const sock = net.connect(port, '127.0.0.1');
  sock.on('error', () => {});
  await new Promise((r) => sock.once('connect', r));
  return sock;
}

export function exchange(sock: net.Socket, text: string, waitMs = 1000): Promise<string> {
  return new Promise((resolve) => {
    let out = '';
    const onData = (d: Buffer) => (out += d.toString('latin1'));
    sock.on('data', onData);
    const done = () => {
      clearTimeout(t);
      sock.off('data', onData);
      resolve(out);
    };
    const t = setTimeout(done, waitMs);
    sock.once('close', done);
    sock.write(text);
  });
}
