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
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { DfError, type ErrorCode } from '../core/errors.js';
import {
  basicConstraints,
  createCertificate,
  encodeName,
  isSigningCurve,
  keyIdentifier,
  KEY_USAGE,
  keyUsage,
  readCaFields,
  subjectKeyIdentifier,
} from './certificate-der.js';

const generateKeyPairAsync = promisify(generateKeyPair);

const DAY_MS = 24 * 3600 * 1000;
/** How long a generated CA is valid. Users trust it once; it should outlive the machine. */
const CA_VALIDITY_MS = 10 * 365 * DAY_MS;
/** Certificates start this long before now, so a client whose clock is somewhat behind still accepts them. */
export const BACKDATE_MS = DAY_MS;

export const CA_CERT_FILE = 'ca.crt';
export const CA_KEY_FILE = 'ca.key';
const CA_SUBJECT = [{ O: 'Dragonfly' }, { CN: 'Dragonfly Proxy CA' }];

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

/** What signs leaf certificates: the CA's private key and what leaves copy from the CA certificate. */
export interface CaSigner {
  /** RSA or EC (P-256, P-384, P-521); certificate-der.ts picks the signature algorithm from it. */
  readonly key: KeyObject;
  /** The CA's subject Name as encoded in its certificate: the leaves' issuer. */
  readonly subject: Buffer;
  /** The CA's subjectKeyIdentifier, if it has one: the leaves' authorityKeyIdentifier. */
  readonly keyId?: Buffer;
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
  const signer: CaSigner = {
    key: generated.key,
    subject: encodeName(CA_SUBJECT),
    keyId: keyIdentifier(generated.spki),
    notAfter: new Date(new NodeX509Certificate(generated.certPem).validTo),
  };
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
  // OpenSSL's check (X509_check_ca) wants basicConstraints CA:TRUE and, when there is a keyUsage, keyCertSign.
  if (!cert.ca) {
    throw fail(
      `${l.cert}: ${certPath} is not a CA certificate (its basicConstraints lack CA:TRUE or its keyUsage lacks keyCertSign)`,
    );
  }
  const notAfter = new Date(cert.validTo);
  if (notAfter.getTime() <= now) throw fail(`${l.cert}: ${certPath} expired on ${notAfter.toISOString()}`);
  const notBefore = new Date(cert.validFrom);
  if (notBefore.getTime() > now) {
    throw fail(`${l.cert}: ${certPath} is not valid before ${notBefore.toISOString()}`);
  }

  try {
    checkSigningKey(key);
    const fields = readCaFields(cert.raw);
    return { certPem, signer: { key, subject: fields.subject, keyId: fields.subjectKeyId, notAfter } };
  } catch (e) {
    if (e instanceof DfError) throw fail(`${l.key}: ${keyPath} ${e.message}`, e);
    throw fail(`${l.cert}: ${certPath} cannot be used (${(e as Error).message})`, e);
  }
}

/** Refuses a CA key that leaves cannot be signed with: RSA and EC on P-256, P-384 or P-521 can. */
function checkSigningKey(key: KeyObject): void {
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return;
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve ?? '';
      if (!isSigningCurve(curve)) {
        throw new DfError(
          'INVALID_CONFIG',
          `is an EC key on curve ${curve || 'unknown'}; P-256, P-384 and P-521 are supported`,
        );
      }
      return;
    }
    default:
      throw new DfError(
        'INVALID_CONFIG',
        `is an unsupported ${key.asymmetricKeyType ?? 'secret'} key; RSA and EC (P-256, P-384, P-521) keys are supported`,
      );
  }
}

/** OpenSSL's names of the curves whose ECDSA signatures leaves may carry. */
interface GeneratedCa {
  certPem: string;
  key: KeyObject;
  keyPem: string;
  spki: Buffer;
}

/** A self-signed ECDSA P-256 CA: small, fast to sign with, and accepted by every current TLS client. */
async function generateCa(now: number): Promise<GeneratedCa> {
  const { publicKey, privateKey } = await generateKeyPairAsync('ec', { namedCurve: 'P-256' });
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const name = encodeName(CA_SUBJECT);
  const certPem = await createCertificate({
    serialNumber: randomSerialNumber(),
    subject: name,
    issuer: name,
    notBefore: new Date(now - BACKDATE_MS),
    notAfter: new Date(now + CA_VALIDITY_MS),
    publicKey: spki,
    signingKey: privateKey,
    extensions: [
      basicConstraints(true, true),
      keyUsage(KEY_USAGE.keyCertSign | KEY_USAGE.cRLSign, true),
      subjectKeyIdentifier(keyIdentifier(spki)),
    ],
  });
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  return { certPem, key: privateKey, keyPem, spki };
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
