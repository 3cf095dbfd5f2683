// X.509 v3 certificates (RFC 5280) as the proxy makes them, and the fields it reads back from its CA, in DER
// (der.ts) signed with node:crypto. Only what the proxy CA and its leaves carry: a Name of O/CN attributes,
// basicConstraints, keyUsage, extendedKeyUsage serverAuth, one subjectAltName, and the key identifiers.

import { createHash, sign, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import {
  bitString,
  boolean,
  children,
  explicit,
  namedBits,
  octetString,
  oid,
  oidText,
  readElement,
  sequence,
  set,
  smallInteger,
  tlv,
  TAG,
  time,
  unsignedInteger,
  utf8String,
} from './der.js';

/** KeyUsage bits (RFC 5280 4.2.1.3), as flags: bit n is 1 << n. */
export const KEY_USAGE = { digitalSignature: 1 << 0, keyCertSign: 1 << 5, cRLSign: 1 << 6 } as const;

const OID = {
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  sha256WithRSAEncryption: '1.2.840.113549.1.1.11',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  ecdsaWithSha384: '1.2.840.10045.4.3.3',
  ecdsaWithSha512: '1.2.840.10045.4.3.4',
} as const;

/** A Name of `O` and `CN` attributes, one per RDN, in order, as UTF8String (RFC 5280 4.1.2.4). */
export function encodeName(attrs: ReadonlyArray<{ O: string } | { CN: string }>): Buffer {
  return sequence(
    ...attrs.map((a) =>
      'O' in a
        ? set(sequence(oid(OID.organization), utf8String(a.O)))
        : set(sequence(oid(OID.commonName), utf8String(a.CN))),
    ),
  );
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return sequence(oid(id), ...(critical ? [boolean(true)] : []), octetString(value));
}

/** basicConstraints; cA FALSE is the default, so a leaf's is an empty SEQUENCE (DER omits defaults). */
export const basicConstraints = (ca: boolean, critical: boolean): Buffer =>
  extension(OID.basicConstraints, critical, ca ? sequence(boolean(true)) : sequence());

/** keyUsage of KEY_USAGE flags. */
export const keyUsage = (flags: number, critical: boolean): Buffer =>
  extension(OID.keyUsage, critical, namedBits(flags));

export const serverAuthUsage = (critical: boolean): Buffer =>
  extension(OID.extKeyUsage, critical, sequence(oid(OID.serverAuth)));

/** subjectAltName with one name: a dNSName, or an iPAddress of 4 or 16 octets. */
export function subjectAltName(name: { kind: 'dns' | 'ip'; value: string }, critical: boolean): Buffer {
  const general =
    name.kind === 'dns' ? tlv(0x82, Buffer.from(name.value, 'ascii')) : tlv(0x87, ipOctets(name.value));
  return extension(OID.subjectAltName, critical, sequence(general));
}

export const subjectKeyIdentifier = (keyId: Buffer): Buffer =>
  extension(OID.subjectKeyIdentifier, false, octetString(keyId));

/** authorityKeyIdentifier with only its keyIdentifier ([0] IMPLICIT OCTET STRING). */
export const authorityKeyIdentifier = (keyId: Buffer): Buffer =>
  extension(OID.authorityKeyIdentifier, false, sequence(tlv(0x80, keyId)));

/** RFC 5280 4.2.1.2 method (1): the SHA-1 of the subjectPublicKey bits of a DER SubjectPublicKeyInfo. */
export function keyIdentifier(spki: Buffer): Buffer {
  const [, key] = children(readElement(spki).contents);
  if (key?.tag !== TAG.bitString) throw new Error('not a SubjectPublicKeyInfo');
  return createHash('sha1').update(key.contents.subarray(1)).digest();
}

/** IPv4 dotted quad or IPv6 as eight hex groups (certificates.ts writes them out in full) → octets. */
function ipOctets(ip: string): Buffer {
  if (!ip.includes(':')) return Buffer.from(ip.split('.').map(Number));
  const out = Buffer.alloc(16);
  ip.split(':').forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

export interface CertificateFields {
  /** Hex, positive (first octet below 0x80, not 0). */
  serialNumber: string;
  /** DER Names. The issuer is copied byte for byte from the CA: Go matches issuer to subject that way. */
  issuer: Buffer;
  subject: Buffer;
  notBefore: Date;
  notAfter: Date;
  /** DER SubjectPublicKeyInfo of the certified key. */
  publicKey: Buffer;
  /** DER Extensions, each from the builders above. */
  extensions: Buffer[];
  /** The issuer's private key: RSA (signs with SHA-256) or EC P-256/P-384/P-521 (the curve's hash). */
  signingKey: KeyObject;
}

/** The EC curves a CA key may be on (OpenSSL's names), each with the hash that matches its strength. */
const ECDSA: Readonly<Record<string, [hash: string, signatureOid: string]>> = {
  prime256v1: ['sha256', OID.ecdsaWithSha256],
  secp384r1: ['sha384', OID.ecdsaWithSha384],
  secp521r1: ['sha512', OID.ecdsaWithSha512],
};

/** Whether createCertificate can sign with an EC key on `curve` (OpenSSL's name). */
export const isSigningCurve = (curve: string): boolean => Object.hasOwn(ECDSA, curve);

/** The signature algorithm for a CA key: RSA with SHA-256, ECDSA with the hash that matches the curve. */
function signatureAlgorithm(key: KeyObject): { hash: string; algorithm: Buffer } {
  if (key.asymmetricKeyType === 'rsa') {
    return { hash: 'sha256', algorithm: sequence(oid(OID.sha256WithRSAEncryption), tlv(TAG.null)) };
  }
  const curve = key.asymmetricKeyType === 'ec' ? key.asymmetricKeyDetails?.namedCurve : undefined;
  const pick = curve && isSigningCurve(curve) ? ECDSA[curve] : undefined;
  if (!pick)
    throw new Error(`cannot sign with a ${key.asymmetricKeyType ?? 'secret'} key ${curve ?? ''}`.trim());
  return { hash: pick[0], algorithm: sequence(oid(pick[1])) };
}

/** sign() with a callback signs on libuv's pool: an RSA CA's signature takes milliseconds. */
const signAsync = promisify(sign);

/** Builds and signs a v3 certificate; returns it in PEM, ending in a newline. */
export async function createCertificate(f: CertificateFields): Promise<string> {
  const { hash, algorithm } = signatureAlgorithm(f.signingKey);
  const tbs = sequence(
    explicit(0, smallInteger(2)), // v3
    unsignedInteger(Buffer.from(f.serialNumber, 'hex')),
    algorithm,
    f.issuer,
    sequence(time(f.notBefore), time(f.notAfter)),
    f.subject,
    f.publicKey,
    explicit(3, sequence(...f.extensions)),
  );
  // ECDSA signatures come as DER (r, s), which is what X.509 carries.
  const der = sequence(tbs, algorithm, bitString(await signAsync(hash, tbs, f.signingKey)));
  const b64 = der.toString('base64').replace(/.{1,64}/g, '$&\n');
  return `-----BEGIN CERTIFICATE-----\n${b64}-----END CERTIFICATE-----\n`;
}

/** What the proxy needs from its CA certificate to sign leaves with it. */
export interface CaFields {
  /** The subject Name as encoded: every leaf's issuer. */
  subject: Buffer;
  /** Its subjectKeyIdentifier, if it has one: every leaf's authorityKeyIdentifier. */
  subjectKeyId?: Buffer;
}

/** Reads the CA fields of a DER certificate that node:crypto has parsed and checked (`X509Certificate.raw`); throws on what is not a certificate. */
export function readCaFields(der: Buffer): CaFields {
  const [tbs] = children(readElement(der).contents);
  if (tbs?.tag !== TAG.sequence) throw new Error('not a certificate');
  const fields = children(tbs.contents);
  // version [0] is optional; then serial, signature, issuer, validity, subject.
  const base = fields[0]?.tag === 0xa0 ? 1 : 0;
  const subject = fields[base + 4];
  if (subject?.tag !== TAG.sequence) throw new Error('not a certificate');
  const out: CaFields = { subject: Buffer.from(subject.raw) };
  const exts = fields.find((e) => e.tag === 0xa3);
  for (const ext of exts ? children(readElement(exts.contents).contents) : []) {
    const parts = children(ext.contents);
    const id = oidText(parts[0]!.contents);
    if (id === OID.subjectKeyIdentifier) {
      out.subjectKeyId = Buffer.from(readElement(parts[parts.length - 1]!.contents).contents);
    }
  }
  return out;
}
