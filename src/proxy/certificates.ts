// Leaf certificates for the hosts the proxy intercepts: for each CONNECT host, a certificate with that name,
// signed by the proxy CA (proxy-ca.ts), so that a client that trusts the CA accepts the proxy as the host.
//
// Upstream (dragonfly-client-util/src/tls/mod.rs) keeps the issued certificates in an LRU of 1000 hosts and
// generates a new key pair for every host. Here one ECDSA P-256 key pair serves every leaf of a LeafCertificates:
// a leaf's key never leaves this process and only proves that it talks for the CA, so per-host keys would add no
// security, while generating one costs more than signing the certificate. Concurrent requests for one host share one
// signing; hosts are checked against hostname/IP syntax first, since they come from clients.

import { generateKeyPair } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import { promisify } from 'node:util';
import { DfError } from '../core/errors.js';
import { BACKDATE_MS, randomSerialNumber, type ProxyCa } from './proxy-ca.js';
import {
  authorityKeyIdentifier,
  basicConstraints,
  createCertificate,
  encodeName,
  keyIdentifier,
  KEY_USAGE,
  keyUsage,
  serverAuthUsage,
  subjectAltName,
  subjectKeyIdentifier,
} from './certificate-der.js';

export { loadOrCreateProxyCa, type ProxyCa, type ProxyCaOptions, type ProxyCaLogger } from './proxy-ca.js';

const generateKeyPairAsync = promisify(generateKeyPair);

const DAY_MS = 24 * 3600 * 1000;
/** Upstream's certificate cache capacity (DEFAULT_CERTS_CACHE_CAPACITY). */
export const DEFAULT_LEAF_CACHE_CAPACITY = 1000;
/** Leaves live a year: below the 825 days Apple clients accept for certificates from user-trusted CAs. */
const LEAF_VALIDITY_MS = 365 * DAY_MS;
/** A cached leaf this close to its end is issued anew. */
const LEAF_RENEW_BEFORE_MS = DAY_MS;
/** RFC 1035: 253 characters for a name in text form, 63 per label. */
const MAX_HOST_LENGTH = 253;
const DNS_LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;
/** RFC 5280's upper bound for a commonName; longer names go in the SAN only. */
const MAX_COMMON_NAME_LENGTH = 64;

export interface LeafCertificate {
  /** The host as normalised: lower case, no trailing dot, IPv6 without brackets. */
  readonly host: string;
  /** The leaf certificate, PEM. */
  readonly cert: string;
  /** The leaf's private key, PEM (PKCS#8); the same for every leaf of one LeafCertificates. */
  readonly key: string;
  readonly notAfter: Date;
  readonly secureContext: tls.SecureContext;
}

export interface LeafCertificatesOptions {
  /** How many hosts' certificates are kept (least recently used go first); default 1000. */
  capacity?: number;
  /** Milliseconds since the epoch; injected by tests. */
  now?: () => number;
}

interface LeafKey {
  spki: Buffer;
  pem: string;
  /** The subjectKeyIdentifier extension, DER. */
  subjectKeyId: Buffer;
}

export class LeafCertificates {
  private readonly capacity: number;
  private readonly now: () => number;
  /** Insertion order is recency: a hit is moved to the end, the first entry is the least recently used. */
  private readonly cache = new Map<string, LeafCertificate>();
  private readonly pending = new Map<string, Promise<LeafCertificate>>();
  private leafKey?: Promise<LeafKey>;
  /** The authorityKeyIdentifier extension, DER. */
  private readonly authorityKeyId?: Buffer;

  constructor(
    private readonly ca: ProxyCa,
    options: LeafCertificatesOptions = {},
  ) {
    const capacity = options.capacity ?? DEFAULT_LEAF_CACHE_CAPACITY;
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new DfError(
        'INVALID_ARGUMENT',
        `leaf certificate cache capacity must be a positive integer, not ${capacity}`,
      );
    }
    this.capacity = capacity;
    this.now = options.now ?? Date.now;
    // Only with the CA's own key id: a computed one that differs from what the CA says makes OpenSSL reject.
    const caKeyId = ca.signer.keyId;
    if (caKeyId) this.authorityKeyId = authorityKeyIdentifier(caKeyId);
  }

  /** How many hosts' certificates are cached. */
  get size(): number {
    return this.cache.size;
  }

  /** The TLS context to serve `host` with (a DNS name or an IP literal, IPv6 with or without brackets). */
  async secureContextFor(host: string): Promise<tls.SecureContext> {
    return (await this.certificateFor(host)).secureContext;
  }

  /** For `tls.createServer({ SNICallback })`: serves the name the client asked for. */
  readonly sniCallback = (
    servername: string,
    cb: (err: Error | null, ctx?: tls.SecureContext) => void,
  ): void => {
    this.secureContextFor(servername).then(
      (ctx) => cb(null, ctx),
      (e: unknown) => cb(e as Error),
    );
  };

  /** The leaf certificate for `host`, issued on first use and then cached. Rejects hosts that are not names. */
  async certificateFor(host: string): Promise<LeafCertificate> {
    const name = normalizeHost(host);
    const cached = this.cache.get(name.host);
    if (cached && cached.notAfter.getTime() - LEAF_RENEW_BEFORE_MS > this.now()) {
      this.cache.delete(name.host);
      this.cache.set(name.host, cached);
      return cached;
    }
    const inflight = this.pending.get(name.host);
    if (inflight) return inflight;
    const issuing = this.issue(name).then(
      (leaf) => {
        this.pending.delete(name.host);
        this.cache.delete(name.host);
        this.cache.set(name.host, leaf);
        while (this.cache.size > this.capacity) this.cache.delete(this.cache.keys().next().value!);
        return leaf;
      },
      (e: unknown) => {
        this.pending.delete(name.host);
        throw e;
      },
    );
    this.pending.set(name.host, issuing);
    return issuing;
  }

  private async issue(name: HostName): Promise<LeafCertificate> {
    const key = await this.key();
    const { signer } = this.ca;
    const now = this.now();
    const notAfter = new Date(Math.min(now + LEAF_VALIDITY_MS, signer.notAfter.getTime()));
    const withCommonName = name.host.length <= MAX_COMMON_NAME_LENGTH;
    const extensions: Buffer[] = [
      basicConstraints(false, true),
      // An ECDSA key signs the handshake (digitalSignature); it never encrypts a key (no keyEncipherment).
      keyUsage(KEY_USAGE.digitalSignature, true),
      serverAuthUsage(false),
      // RFC 5280 4.2.1.6: critical when the subject is empty (a name too long for a commonName).
      subjectAltName({ kind: name.kind, value: name.sanValue }, !withCommonName),
      key.subjectKeyId,
    ];
    if (this.authorityKeyId) extensions.push(this.authorityKeyId);
    const certPem = await createCertificate({
      serialNumber: randomSerialNumber(),
      subject: encodeName(withCommonName ? [{ CN: name.host }] : []),
      // The CA's subject as it is encoded: Go matches issuer to subject byte for byte.
      issuer: signer.subject,
      notBefore: new Date(now - BACKDATE_MS),
      notAfter,
      publicKey: key.spki,
      signingKey: signer.key,
      extensions,
    });
    return {
      host: name.host,
      cert: certPem,
      key: key.pem,
      notAfter,
      secureContext: tls.createSecureContext({ cert: certPem, key: key.pem }),
    };
  }

  private key(): Promise<LeafKey> {
    this.leafKey ??= (async () => {
      const { publicKey, privateKey } = await generateKeyPairAsync('ec', { namedCurve: 'P-256' });
      const spki = publicKey.export({ type: 'spki', format: 'der' });
      return {
        spki,
        pem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
        subjectKeyId: subjectKeyIdentifier(keyIdentifier(spki)),
      };
    })();
    return this.leafKey;
  }
}

export interface HostName {
  /** Lower case, no trailing dot; IPv6 without brackets. */
  host: string;
  kind: 'dns' | 'ip';
  /** What goes in the subjectAltName (IPv6 written out in full, eight groups, which certificate-der.ts encodes). */
  sanValue: string;
}

/**
 * Checks that `host` is a DNS name or an IP literal and normalises it; anything else (empty, too long, characters
 * outside hostname syntax, IPv6 zones, non-ASCII: IDNs must come as punycode) is an INVALID_ARGUMENT error.
 */
export function normalizeHost(host: string): HostName {
  const bad = (why: string): DfError =>
    new DfError(
      'INVALID_ARGUMENT',
      `cannot issue a certificate for host ${JSON.stringify(host.slice(0, 80))}: ${why}`,
    );
  if (typeof host !== 'string' || host.length === 0) throw bad('empty host');
  if (host.length > MAX_HOST_LENGTH + 2) throw bad(`longer than ${MAX_HOST_LENGTH} characters`);

  let h = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  // A zone ("fe80::1%eth0") names an interface of the client's machine; no certificate can carry it.
  if (h.includes('%')) throw bad('an IPv6 zone cannot be in a certificate');
  if (net.isIPv6(h)) return { host: h.toLowerCase(), kind: 'ip', sanValue: expandIPv6(h) };
  if (net.isIPv4(h)) return { host: h, kind: 'ip', sanValue: h };

  h = h.toLowerCase();
  if (h.endsWith('.')) h = h.slice(0, -1);
  if (h.length === 0 || h.length > MAX_HOST_LENGTH)
    throw bad(`not a host name of 1 to ${MAX_HOST_LENGTH} characters`);
  const labels = h.split('.');
  for (const label of labels) {
    if (!DNS_LABEL.test(label)) {
      throw bad('not a host name (labels of 1 to 63 letters, digits, "-" or "_") nor an IP address');
    }
  }
  // "1.2.3.999" or "10.1" look like addresses to clients; a DNS SAN with that text would never match.
  if (/^[0-9]+$/.test(labels[labels.length - 1]!)) throw bad('not a valid IP address');
  return { host: h, kind: 'dns', sanValue: h };
}

/** An IPv6 literal as eight hexadecimal groups ("::1" → "0:0:0:0:0:0:0:1"), embedded IPv4 included. */
function expandIPv6(ip: string): string {
  let text = ip;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4[1]!.split('.').map(Number) as [number, number, number, number];
    text = text.slice(0, -v4[1]!.length) + `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const zeros = tail === undefined ? [] : new Array<string>(8 - left.length - right.length).fill('0');
  return [...left, ...zeros, ...right].join(':');
}
