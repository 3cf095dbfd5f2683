// Shared by the proxy certificate tests: a TLS server on port 0 that serves leaves the way the proxy does,
// a client that verifies against a CA, the openssl CLI, and a small DER reader.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import type { LeafCertificates } from '../../../src/proxy/certificates.js';

export const log = {
  infos: [] as string[],
  warns: [] as string[],
  info(_obj: object, msg: string): void {
    this.infos.push(msg);
  },
  warn(_obj: object, msg: string): void {
    this.warns.push(msg);
  },
  reset(): void {
    this.infos.length = 0;
    this.warns.length = 0;
  },
};

export interface TlsServer {
  port: number;
  close(): Promise<void>;
}

/**
 * A server that answers "hello" over TLS. With `connectHost` it serves that host's leaf to clients that send no
 * SNI, as the proxy does with the CONNECT host; with SNI it serves the name asked for (SNICallback).
 */
export async function startTlsServer(leaves: LeafCertificates, connectHost?: string): Promise<TlsServer> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((raw) => {
    sockets.add(raw);
    raw.on('close', () => sockets.delete(raw));
    raw.on('error', () => {});
    void (async () => {
      const options: tls.TLSSocketOptions = { isServer: true, SNICallback: leaves.sniCallback };
      if (connectHost) options.secureContext = await leaves.secureContextFor(connectHost);
      const socket = new tls.TLSSocket(raw, options);
      socket.on('error', () => raw.destroy());
      socket.on('secure', () => socket.end('hello'));
    })().catch(() => raw.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** The standard way: `tls.createServer` with SNICallback only. */
export async function startSniServer(leaves: LeafCertificates): Promise<TlsServer> {
  const server = tls.createServer({ SNICallback: leaves.sniCallback }, (socket) => socket.end('hello'));
  server.on('tlsClientError', () => {});
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Connects with `ca` as the only trust anchor; resolves with what the server said, rejects on a TLS error. */
export function fetchHello(port: number, ca: string, servername?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca: [ca], servername });
    let body = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (body += d));
    socket.on('end', () => resolve(body));
    socket.on('error', reject);
    socket.setTimeout(5000, () => socket.destroy(new Error('timed out')));
  });
}

export function openssl(args: string[], cwd: string): string {
  return execFileSync('openssl', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** `openssl verify -CAfile ca leaf` in `dir`; returns its output ("leaf.pem: OK"). */
export function opensslVerify(dir: string, caPem: string, leafPem: string, host?: string): string {
  fs.writeFileSync(path.join(dir, 'verify-ca.pem'), caPem);
  fs.writeFileSync(path.join(dir, 'leaf.pem'), leafPem);
  const args = ['verify', '-CAfile', 'verify-ca.pem', '-purpose', 'sslserver'];
  if (host) args.push(net.isIP(host) ? '-verify_ip' : '-verify_hostname', host);
  return openssl([...args, 'leaf.pem'], dir).trim();
}

/** The DER bytes of a PEM certificate. */
export function pemToDer(pem: string): Buffer {
  const b64 = pem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, '');
  return Buffer.from(b64, 'base64');
}

/** The elements (tag and full encoding) of the DER SEQUENCE or SET `buf` holds. Definite lengths only. */
export function derChildren(buf: Buffer): Array<{ tag: number; bytes: Buffer }> {
  const read = (at: number): { tag: number; start: number; end: number } => {
    const tag = buf[at]!;
    let len = buf[at + 1]!;
    let start = at + 2;
    if (len & 0x80) {
      const n = len & 0x7f;
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + buf[at + 2 + i]!;
      start += n;
    }
    return { tag, start, end: start + len };
  };
  const outer = read(0);
  const out: Array<{ tag: number; bytes: Buffer }> = [];
  for (let at = outer.start; at < outer.end;) {
    const el = read(at);
    out.push({ tag: el.tag, bytes: buf.subarray(at, el.end) });
    at = el.end;
  }
  return out;
}

/** The issuer and subject Names of a certificate, as encoded. */
export function rawNames(pem: string): { issuer: Buffer; subject: Buffer } {
  const tbs = derChildren(derChildren(pemToDer(pem))[0]!.bytes);
  // TBSCertificate: [0] version, serialNumber, signature, issuer, validity, subject, ...
  const fields = tbs[0]!.tag === 0xa0 ? tbs.slice(1) : tbs;
  return { issuer: fields[2]!.bytes, subject: fields[4]!.bytes };
}
