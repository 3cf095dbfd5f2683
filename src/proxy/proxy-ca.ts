// The CA with which the proxy signs the leaf certificates of the hosts it intercepts (CONNECT, man-in-the-middle).
//
// Upstream (dragonfly-client-util/src/tls/mod.rs) loads `proxy.server.caCert`/`caKey` when both are set and
// otherwise signs each host with a throw-away self-signed certificate, which no client can be told to trust. We
// instead generate one CA on the first start, keep it in a directory and reuse it, so that users trust one file
// once. A configured pair is checked at the door: a missing file, a non-PEM file, an encrypted or unsupported key,
// a key that is not the certificate's, or a certificate that cannot sign others is one line naming the key and
// the file.

import {
  X509Certificate as NodeX509Certificate,
  createPrivateKey,
  generateKeyPair,
  randomBytes,
} from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { webcrypto } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { DfError, type ErrorCode } from '../core/errors.js';
import * as x509 from './x509.js';

const generateKeyPairAsync = promisify(generateKeyPair);

const DAY_MS = 24 * 3600 * 1000;
/** How long a generated CA is valid. Users trust it once; it should outlive the machine. */
const CA_VALIDITY_MS = 10 * 365 * DAY_MS;
/** Certificates start this long before now, so a client whose clock is somewhat behind still accepts them. */
export const BACKDATE_MS = DAY_MS;

export const CA_CERT_FILE = 'ca.crt';
export const CA_KEY_FILE = 'ca.key';
const CA_SUBJECT: x509.JsonName = [{ O: ['Dragonfly'] }, { CN: ['Dragonfly Proxy CA'] }];

export interface ProxyCaLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface ProxyCaOptions {
  /** `proxy.server.caCert`: PEM certificate file of a CA the user provides. */
  caCert?: string;
  /** `proxy.server.caKey`: PEM private key file of that CA (PKCS#8, PKCS#1 RSA or SEC1 EC; not encrypted). */
  caKey?: string;
  /** Where the generated CA is kept when neither key is set (`<dir>/ca.crt`, `<dir>/ca.key`). */
  dir: string;
  log: ProxyCaLogger;
  /** Milliseconds since the epoch; injected by tests. */
  now?: () => number;
}

/** What signs leaf certificates: the CA certificate, its private key and the signature algorithm for that key. */
export interface CaSigner {
  readonly cert: x509.X509Certificate;
  readonly key: webcrypto.CryptoKey;
  readonly algorithm: webcrypto.AlgorithmIdentifier | webcrypto.EcdsaParams;
  readonly notAfter: Date;
}

export interface ProxyCa {
  /** The CA certificate in PEM: what clients must trust to accept the proxy's leaf certificates. */
  readonly certPem: string;
  /** The file that holds the CA certificate; the daemon logs it so users can add it to their trust store. */
  readonly certPath: string;
  readonly keyPath: string;
  /** `config`: from proxy.server.caCert/caKey; `persisted`: generated earlier and reused; `generated`: just now. */
  readonly source: 'config' | 'persisted' | 'generated';
  readonly signer: CaSigner;
}

/** How errors about a certificate/key pair name what is wrong: config keys for a user's pair, files otherwise. */
interface PairLabels {
  cert: string;
  key: string;
  code: ErrorCode;
  /** Appended to every error, e.g. how to get a fresh generated CA. */
  hint: string;
}

/**
 * Loads the CA named by `caCert`/`caKey`, or, when neither is set, the CA kept in `dir`, generating and keeping it
 * there on the first start. Setting only one of the two keys is an error.
 */
export async function loadOrCreateProxyCa(o: ProxyCaOptions): Promise<ProxyCa> {
  const now = o.now ?? Date.now;
  if (o.caCert && o.caKey) {
    const labels = {
      cert: 'proxy.server.caCert',
      key: 'proxy.server.caKey',
      code: 'INVALID_CONFIG',
      hint: '',
    } as const;
    const signer = await loadPair(o.caCert, o.caKey, labels, now());
    return { ...signer, certPath: o.caCert, keyPath: o.caKey, source: 'config' };
  }
  if (o.caCert || o.caKey) {
    const [set, missing] = o.caCert ? ['caCert', 'caKey'] : ['caKey', 'caCert'];
    throw new DfError(
      'INVALID_CONFIG',
      `proxy.server.${missing} is not set but proxy.server.${set} is; set both (a CA certificate and its key) ` +
        'or neither (the proxy then generates its own CA)',
    );
  }

  const certPath = path.join(o.dir, CA_CERT_FILE);
  const keyPath = path.join(o.dir, CA_KEY_FILE);
  const [hasCert, hasKey] = await Promise.all([exists(certPath), exists(keyPath)]);
  if (hasCert && hasKey) {
    const labels: PairLabels = {
      cert: 'proxy CA certificate',
      key: 'proxy CA key',
      code: 'IO',
      hint: ` (remove ${certPath} and ${keyPath} to generate a new CA, which clients must then trust anew)`,
    };
    const signer = await loadPair(certPath, keyPath, labels, now());
    await warnIfKeyReadable(keyPath, o.log);
    return { ...signer, certPath, keyPath, source: 'persisted' };
  }
  // The key is written before the certificate, so a key alone is a generation cut short: nobody trusts it yet.
  // A certificate alone means its key was removed: clients may trust it, but nothing can sign with it any more.
  if (hasCert) o.log.warn({ certPath, keyPath }, 'proxy CA key is missing; generating a new proxy CA');
  const generated = await generateCa(now());
  await persist(o.dir, certPath, keyPath, generated);
  o.log.info(
    { certPath },
    'generated a proxy CA; clients must trust this certificate for HTTPS through the proxy',
  );
  const signer = await signerFrom(generated.certPem, generated.key);
  return { certPem: generated.certPem, signer, certPath, keyPath, source: 'generated' };
}

async function loadPair(
  certPath: string,
  keyPath: string,
  l: PairLabels,
  now: number,
): Promise<{ certPem: string; signer: CaSigner }> {
  const fail = (msg: string, cause?: unknown): DfError => new DfError(l.code, msg + l.hint, { cause });
  const certText = await readText(certPath, l.cert, fail);
  const keyText = await readText(keyPath, l.key, fail);

  const certPem = firstPemBlock(certText, 'CERTIFICATE');
  if (!certPem)
    throw fail(`${l.cert}: ${certPath} is not a PEM certificate (no -----BEGIN CERTIFICATE----- block)`);
  let cert: NodeX509Certificate;
  try {
    cert = new NodeX509Certificate(certPem);
  } catch (e) {
    throw fail(`${l.cert}: ${certPath} holds no valid certificate (${(e as Error).message})`, e);
  }

  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(keyText)) {
    throw fail(`${l.key}: ${keyPath} is not a PEM private key (no -----BEGIN ... PRIVATE KEY----- block)`);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(keyText);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ERR_MISSING_PASSPHRASE' || /ENCRYPTED/.test(keyText)) {
      throw fail(`${l.key}: ${keyPath} is encrypted; give the key without a passphrase`, e);
    }
    throw fail(`${l.key}: ${keyPath} holds no valid private key (${(e as Error).message})`, e);
  }

  if (!cert.checkPrivateKey(key)) {
    throw fail(`${l.key}: ${keyPath} is not the private key of the certificate in ${l.cert} (${certPath})`);
  }
  if (!cert.ca) {
    throw fail(`${l.cert}: ${certPath} is not a CA certificate (its basicConstraints lack CA:TRUE)`);
  }
  const notAfter = new Date(cert.validTo);
  if (notAfter.getTime() <= now) throw fail(`${l.cert}: ${certPath} expired on ${notAfter.toISOString()}`);
  const notBefore = new Date(cert.validFrom);
  if (notBefore.getTime() > now) {
    throw fail(`${l.cert}: ${certPath} is not valid before ${notBefore.toISOString()}`);
  }

  let signer: CaSigner;
  try {
    signer = await signerFrom(certPem, key);
  } catch (e) {
    if (e instanceof DfError) throw fail(`${l.key}: ${keyPath} ${e.message}`, e);
    throw fail(`${l.cert}: ${certPath} cannot be used (${(e as Error).message})`, e);
  }
  const keyUsage = signer.cert.getExtension(x509.KeyUsagesExtension);
  if (keyUsage && (keyUsage.usages & x509.KeyUsageFlags.keyCertSign) === 0) {
    throw fail(`${l.cert}: ${certPath} may not sign certificates (its keyUsage lacks keyCertSign)`);
  }
  return { certPem, signer };
}

/** Imports the CA key into WebCrypto for signing and picks the matching signature algorithm. */
async function signerFrom(certPem: string, key: KeyObject): Promise<CaSigner> {
  const pkcs8 = key.export({ type: 'pkcs8', format: 'der' });
  let importAlg: webcrypto.RsaHashedImportParams | webcrypto.EcKeyImportParams;
  let algorithm: webcrypto.AlgorithmIdentifier | webcrypto.EcdsaParams;
  switch (key.asymmetricKeyType) {
    case 'rsa':
      // The hash is part of an RSA CryptoKey; @peculiar/x509 takes it from there.
      importAlg = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
      algorithm = { name: 'RSASSA-PKCS1-v1_5' };
      break;
    case 'ec': {
      const curve = EC_CURVES[key.asymmetricKeyDetails?.namedCurve ?? ''];
      if (!curve) {
        throw new DfError(
          'INVALID_CONFIG',
          `is an EC key on curve ${key.asymmetricKeyDetails?.namedCurve ?? 'unknown'}; P-256, P-384 and P-521 are supported`,
        );
      }
      importAlg = { name: 'ECDSA', namedCurve: curve.name };
      // The hash that matches the curve's strength (RFC 5480 section 4).
      algorithm = { name: 'ECDSA', hash: curve.hash } as webcrypto.EcdsaParams;
      break;
    }
    default:
      throw new DfError(
        'INVALID_CONFIG',
        `is an unsupported ${key.asymmetricKeyType ?? 'secret'} key; RSA and EC (P-256, P-384, P-521) keys are supported`,
      );
  }
  const cryptoKey = await webcrypto.subtle.importKey('pkcs8', pkcs8, importAlg, false, ['sign']);
  const cert = new x509.X509Certificate(certPem);
  return { cert, key: cryptoKey, algorithm, notAfter: cert.notAfter };
}

const EC_CURVES: Record<string, { name: string; hash: string }> = {
  prime256v1: { name: 'P-256', hash: 'SHA-256' },
  secp384r1: { name: 'P-384', hash: 'SHA-384' },
  secp521r1: { name: 'P-521', hash: 'SHA-512' },
};

interface GeneratedCa {
  certPem: string;
  key: KeyObject;
  keyPem: string;
}

/** A self-signed ECDSA P-256 CA: small, fast to sign with, and accepted by every current TLS client. */
async function generateCa(now: number): Promise<GeneratedCa> {
  const { publicKey, privateKey } = await generateKeyPairAsync('ec', { namedCurve: 'P-256' });
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const signingKey = await webcrypto.subtle.importKey(
    'pkcs8',
    privateKey.export({ type: 'pkcs8', format: 'der' }),
    { name: 'ECDSA', namedCurve: 'P-256' },
    false,
    ['sign'],
  );
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: randomSerialNumber(),
      subject: CA_SUBJECT,
      issuer: CA_SUBJECT,
      notBefore: new Date(now - BACKDATE_MS),
      notAfter: new Date(now + CA_VALIDITY_MS),
      publicKey: spki,
      signingKey,
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } as webcrypto.EcdsaParams,
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(spki, false, webcrypto),
      ],
    },
    webcrypto,
  );
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  return { certPem: cert.toString('pem') + '\n', key: privateKey, keyPem };
}

/** A random positive 128-bit serial number in hex (RFC 5280 allows up to 20 octets; CAs use 64+ random bits). */
export function randomSerialNumber(): string {
  const b = randomBytes(16);
  b[0] = (b[0]! & 0x7f) | 0x01; // positive, and never a leading zero octet
  return b.toString('hex');
}

/** Writes the key (mode 0600) and then the certificate, each through a temporary file and a rename. */
async function persist(dir: string, certPath: string, keyPath: string, ca: GeneratedCa): Promise<void> {
  try {
    await fs.mkdir(dir, { recursive: true });
    await writeFileAtomic(keyPath, ca.keyPem, 0o600);
    await writeFileAtomic(certPath, ca.certPem, 0o644);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new DfError(
      err.code === 'EACCES' || err.code === 'EPERM' ? 'PERMISSION_DENIED' : 'IO',
      `cannot keep the generated proxy CA in ${dir}: ${err.code ?? err.message}`,
      { cause: e },
    );
  }
}

async function writeFileAtomic(file: string, data: string, mode: number): Promise<void> {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const fh = await fs.open(tmp, 'wx', mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await fs.rename(tmp, file);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw e;
  }
}

async function warnIfKeyReadable(keyPath: string, log: ProxyCaLogger): Promise<void> {
  const st = await fs.stat(keyPath).catch(() => undefined);
  if (st && (st.mode & 0o077) !== 0) {
    log.warn(
      { keyPath, mode: (st.mode & 0o777).toString(8) },
      'proxy CA key is readable by other users; chmod 600 it',
    );
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await fs.access(p);
    return true;
  } catch {
    return false;
  }
}

async function readText(
  file: string,
  label: string,
  fail: (msg: string, cause?: unknown) => DfError,
): Promise<string> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EACCES' || code === 'EPERM'
          ? 'permission denied'
          : code === 'EISDIR'
            ? 'is a directory'
            : (code ?? (e as Error).message);
    throw fail(`${label}: cannot read ${file}: ${why}`, e);
  }
}

/** The first `-----BEGIN <label>-----` block of a PEM text, or undefined. */
function firstPemBlock(text: string, label: string): string | undefined {
  const m = new RegExp(`-----BEGIN ${label}-----[\\s\\S]*?-----END ${label}-----`).exec(text);
  return m ? m[0] + '\n' : undefined;
}
