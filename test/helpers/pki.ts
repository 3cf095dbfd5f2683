// A small certificate authority for TLS and mTLS tests, made in-process with @peculiar/x509 at test time: a CA,
// and server or client leaves it signs, with the IP and DNS names a test needs, written as PEM files under `dir`.
// (helpers/tls.ts makes self-signed certificates with the openssl CLI instead, for TLS origins.)

import { generateKeyPairSync, webcrypto } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomSerialNumber } from '../../src/proxy/proxy-ca.js';
import * as x509 from './x509.js';

const DAY_MS = 24 * 3600 * 1000;
const SIGNING = { name: 'ECDSA', hash: 'SHA-256' } as webcrypto.EcdsaParams;

export interface Pem {
  /** The certificate file (PEM). */
  cert: string;
  /** The private key file (PEM, PKCS#8). */
  key: string;
}

export interface LeafOptions {
  /** IP addresses the certificate names (subjectAltName IP); default ["127.0.0.1"]. */
  ips?: string[];
  /** Host names it names (subjectAltName DNS); default ["localhost"]. */
  dns?: string[];
  /** serverAuth, clientAuth or both (default both: a peer is a server and a client). */
  usage?: 'server' | 'client' | 'both';
  /** Validity window; default from a day ago to a day ahead. */
  notBefore?: Date;
  notAfter?: Date;
}

function keyPair() {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return {
    spki: publicKey.export({ type: 'spki', format: 'der' }),
    pkcs8: privateKey.export({ type: 'pkcs8', format: 'der' }),
    pem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}

export class TestCa {
  private constructor(
    readonly dir: string,
    readonly name: string,
    /** The CA certificate file: what `caCert` keys point at. */
    readonly certPath: string,
    private readonly cert: x509.X509Certificate,
    private readonly signingKey: webcrypto.CryptoKey,
  ) {}

  /** A new CA, its certificate written to `<dir>/<name>.crt` (its key stays in memory). */
  static async create(dir: string, name = 'ca'): Promise<TestCa> {
    const k = keyPair();
    const signingKey = await webcrypto.subtle.importKey(
      'pkcs8',
      k.pkcs8,
      { name: 'ECDSA', namedCurve: 'P-256' },
      false,
      ['sign'],
    );
    const now = Date.now();
    const cert = await x509.X509CertificateGenerator.create(
      {
        serialNumber: randomSerialNumber(),
        subject: `CN=${name} test CA`,
        issuer: `CN=${name} test CA`,
        notBefore: new Date(now - DAY_MS),
        notAfter: new Date(now + 7 * DAY_MS),
        publicKey: k.spki,
        signingKey,
        signingAlgorithm: SIGNING,
        extensions: [
          new x509.BasicConstraintsExtension(true, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
          await x509.SubjectKeyIdentifierExtension.create(k.spki, false, webcrypto),
        ],
      },
      webcrypto,
    );
    const certPath = join(dir, `${name}.crt`);
    writeFileSync(certPath, cert.toString('pem') + '\n');
    return new TestCa(dir, name, certPath, cert, signingKey);
  }

  /** A leaf signed by this CA, written to `<dir>/<name>.crt` and `<dir>/<name>.key`. */
  async issue(name: string, o: LeafOptions = {}): Promise<Pem> {
    const k = keyPair();
    const now = Date.now();
    const usage = o.usage ?? 'both';
    const eku = [
      ...(usage !== 'client' ? [x509.ExtendedKeyUsage.serverAuth] : []),
      ...(usage !== 'server' ? [x509.ExtendedKeyUsage.clientAuth] : []),
    ];
    const names = [
      ...(o.ips ?? ['127.0.0.1']).map((value) => ({ type: 'ip' as const, value })),
      ...(o.dns ?? ['localhost']).map((value) => ({ type: 'dns' as const, value })),
    ];
    const caKeyId = this.cert.getExtension(x509.SubjectKeyIdentifierExtension)!.keyId;
    const cert = await x509.X509CertificateGenerator.create(
      {
        serialNumber: randomSerialNumber(),
        subject: `CN=${name}`,
        issuer: this.cert.subject,
        notBefore: o.notBefore ?? new Date(now - DAY_MS),
        notAfter: o.notAfter ?? new Date(now + DAY_MS),
        publicKey: k.spki,
        signingKey: this.signingKey,
        signingAlgorithm: SIGNING,
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
          new x509.ExtendedKeyUsageExtension(eku, false),
          new x509.SubjectAlternativeNameExtension(names, false),
          new x509.AuthorityKeyIdentifierExtension(caKeyId, false),
        ],
      },
      webcrypto,
    );
    const pem = { cert: join(this.dir, `${name}.crt`), key: join(this.dir, `${name}.key`) };
    writeFileSync(pem.cert, cert.toString('pem') + '\n');
    writeFileSync(pem.key, k.pem, { mode: 0o600 });
    return pem;
  }
}

/** `caCert`, `cert` and `key` lines (YAML, unindented) for a config section, from a CA and a leaf. */
export function tlsYaml(ca: { certPath: string } | undefined, leaf?: Pem): string {
  return [
    ...(ca ? [`caCert: ${ca.certPath}`] : []),
    ...(leaf ? [`cert: ${leaf.cert}`, `key: ${leaf.key}`] : []),
  ].join('\n');
}
