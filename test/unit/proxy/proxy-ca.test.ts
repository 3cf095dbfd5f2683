import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LeafCertificates, loadOrCreateProxyCa, type ProxyCa } from '../../../src/proxy/certificates.js';
import { DfError } from '../../../src/core/errors.js';
import * as x509 from '../../helpers/x509.js';
import { fetchHello, log, openssl, opensslVerify, rawNames, startSniServer } from './tls-check.js';

const DAY = 24 * 3600 * 1000;

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'proxy-ca-'));
  log.reset();
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Asserts `p` rejects with a DfError whose one-line message contains every `parts`. */
async function rejectsWith(p: Promise<unknown>, code: string, ...parts: string[]): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof DfError, `not a DfError: ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.ok(!e.message.includes('\n'), `more than one line: ${e.message}`);
    for (const part of parts) assert.ok(e.message.includes(part), `"${e.message}" lacks "${part}"`);
    return true;
  });
}

/** Issues a leaf for `host` and proves a TLS client that trusts only `ca` accepts it, and openssl too. */
async function assertLeafVerifies(ca: ProxyCa, host: string): Promise<void> {
  const leaves = new LeafCertificates(ca);
  const server = await startSniServer(leaves);
  try {
    assert.equal(await fetchHello(server.port, ca.certPem, host), 'hello');
  } finally {
    await server.close();
  }
  const leaf = await leaves.certificateFor(host);
  assert.equal(opensslVerify(dir, ca.certPem, leaf.cert, host), 'leaf.pem: OK');
  // Go finds the issuer by comparing the encoded names byte for byte; OpenSSL would forgive a re-encoding.
  assert.deepEqual(rawNames(leaf.cert).issuer, rawNames(ca.certPem).subject);
}

describe('generated CA', () => {
  test('is created once in dir, key mode 0600, and reused on the next start', async () => {
    const caDir = path.join(dir, 'proxy');
    const now = Date.now();
    const first = await loadOrCreateProxyCa({ dir: caDir, log, now: () => now });
    assert.equal(first.source, 'generated');
    assert.equal(first.certPath, path.join(caDir, 'ca.crt'));
    assert.equal(first.keyPath, path.join(caDir, 'ca.key'));
    assert.equal(fs.readFileSync(first.certPath, 'utf8'), first.certPem);
    assert.equal(fs.statSync(first.keyPath).mode & 0o777, 0o600);
    assert.deepEqual(fs.readdirSync(caDir).sort(), ['ca.crt', 'ca.key'], 'no temporary file left');
    assert.ok(log.infos.some((m) => m.includes('generated a proxy CA')));

    const second = await loadOrCreateProxyCa({ dir: caDir, log });
    assert.equal(second.source, 'persisted');
    assert.equal(second.certPem, first.certPem);
    assert.deepEqual(log.warns, []);
  });

  test('is a CA: CN, basicConstraints CA:TRUE critical, keyCertSign+cRLSign, ~10 years, backdated', async () => {
    const now = Date.now();
    const ca = await loadOrCreateProxyCa({ dir, log, now: () => now });
    const cert = new x509.X509Certificate(ca.certPem);
    assert.match(cert.subject, /CN=Dragonfly Proxy CA/);
    assert.equal(cert.subject, cert.issuer);
    const bc = cert.getExtension(x509.BasicConstraintsExtension);
    assert.ok(bc?.ca && bc.critical);
    const ku = cert.getExtension(x509.KeyUsagesExtension);
    assert.equal(ku?.usages, x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign);
    assert.ok(ku.critical);
    assert.ok(cert.getExtension(x509.SubjectKeyIdentifierExtension));
    assert.ok(await cert.verify({ publicKey: cert.publicKey, signatureOnly: true }), 'self-signed');
    assert.ok(cert.notBefore.getTime() < now - DAY / 2);
    const years = (cert.notAfter.getTime() - now) / (365 * DAY);
    assert.ok(years > 9.9 && years < 10.1, `${years} years`);
    // And openssl reads it as a CA.
    fs.writeFileSync(path.join(dir, 'x.pem'), ca.certPem);
    const text = openssl(['x509', '-in', 'x.pem', '-noout', '-text'], dir);
    assert.match(text, /Basic Constraints: critical\s+CA:TRUE/);
  });

  test('a certificate whose key was removed is replaced, with a warning', async () => {
    const first = await loadOrCreateProxyCa({ dir, log });
    fs.rmSync(first.keyPath);
    const second = await loadOrCreateProxyCa({ dir, log });
    assert.equal(second.source, 'generated');
    assert.notEqual(second.certPem, first.certPem);
    assert.ok(log.warns.some((m) => m.includes('proxy CA key is missing')));
  });

  test('a corrupt kept certificate is an error that names the file and how to start over', async () => {
    const first = await loadOrCreateProxyCa({ dir, log });
    fs.writeFileSync(first.certPath, 'garbage\n');
    await rejectsWith(
      loadOrCreateProxyCa({ dir, log }),
      'IO',
      first.certPath,
      'not a PEM certificate',
      'remove',
    );
  });

  test('a kept key readable by others is used, with a warning', async () => {
    const first = await loadOrCreateProxyCa({ dir, log });
    fs.chmodSync(first.keyPath, 0o644);
    await loadOrCreateProxyCa({ dir, log });
    assert.ok(log.warns.some((m) => m.includes('readable by other users')));
  });

  test('a dir that cannot be made is one clear error', async () => {
    // Root can write anywhere, so the test blocks the directory with a file rather than with permissions.
    const file = path.join(dir, 'file');
    fs.writeFileSync(file, '');
    const caDir = path.join(file, 'proxy');
    await rejectsWith(
      loadOrCreateProxyCa({ dir: caDir, log }),
      'IO',
      `cannot keep the generated proxy CA in ${caDir}`,
    );
  });

  test('its leaves verify', async () => {
    const ca = await loadOrCreateProxyCa({ dir, log });
    await assertLeafVerifies(ca, 'registry.example.test');
  });
});

describe('CA from proxy.server.caCert / caKey, made by the openssl CLI', () => {
  /** `openssl req -x509` as upstream's docs suggest; returns the file paths. */
  function makeCa(name: string, keyArgs: string[], subj = '/C=CN/O=Example Org/CN=Example Test CA') {
    const key = path.join(dir, `${name}.key`);
    const crt = path.join(dir, `${name}.crt`);
    openssl(
      ['req', '-x509', '-nodes', '-days', '30', '-subj', subj, ...keyArgs, '-keyout', key, '-out', crt],
      dir,
    );
    return { caCert: crt, caKey: key };
  }

  test('RSA, PKCS#8 key (openssl 3 default)', async () => {
    const files = makeCa('rsa', ['-newkey', 'rsa:2048', '-sha256']);
    assert.match(fs.readFileSync(files.caKey, 'utf8'), /BEGIN PRIVATE KEY/);
    const ca = await loadOrCreateProxyCa({ ...files, dir, log });
    assert.equal(ca.source, 'config');
    assert.equal(ca.certPath, files.caCert);
    assert.equal(ca.certPem, fs.readFileSync(files.caCert, 'utf8'));
    assert.deepEqual(fs.readdirSync(dir).sort(), ['rsa.crt', 'rsa.key'], 'nothing generated');
    await assertLeafVerifies(ca, 'registry.example.test');
    await assertLeafVerifies(ca, '127.0.0.1');
    const leaf = new x509.X509Certificate((await new LeafCertificates(ca).certificateFor('a.test')).cert);
    assert.equal((leaf.signatureAlgorithm as unknown as { name: string }).name, 'RSASSA-PKCS1-v1_5');
  });

  test('RSA, PKCS#1 key (BEGIN RSA PRIVATE KEY)', async () => {
    const files = makeCa('rsa1', ['-newkey', 'rsa:2048']);
    openssl(['rsa', '-in', files.caKey, '-traditional', '-out', files.caKey], dir);
    assert.match(fs.readFileSync(files.caKey, 'utf8'), /BEGIN RSA PRIVATE KEY/);
    await assertLeafVerifies(await loadOrCreateProxyCa({ ...files, dir, log }), 'registry.example.test');
  });

  test('EC P-256, SEC1 key with EC PARAMETERS (openssl ecparam -genkey)', async () => {
    openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-out', 'ec.key'], dir);
    const subj = '/O=Example Org/CN=Example EC CA';
    openssl(['req', '-x509', '-days', '30', '-subj', subj, '-key', 'ec.key', '-out', 'ec.crt'], dir);
    const files = { caCert: path.join(dir, 'ec.crt'), caKey: path.join(dir, 'ec.key') };
    assert.match(fs.readFileSync(files.caKey, 'utf8'), /BEGIN EC PARAMETERS[\s\S]*BEGIN EC PRIVATE KEY/);
    const ca = await loadOrCreateProxyCa({ ...files, dir, log });
    await assertLeafVerifies(ca, 'registry.example.test');
    const leaf = new x509.X509Certificate((await new LeafCertificates(ca).certificateFor('a.test')).cert);
    assert.equal((leaf.signatureAlgorithm as unknown as { name: string }).name, 'ECDSA');
  });

  test('EC P-384, PKCS#8 key', async () => {
    const files = makeCa('ec384', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384']);
    await assertLeafVerifies(await loadOrCreateProxyCa({ ...files, dir, log }), 'registry.example.test');
  });

  test('EC P-521: leaves signed with ECDSA and SHA-512', async () => {
    const files = makeCa('ec521', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-521']);
    const ca = await loadOrCreateProxyCa({ ...files, dir, log });
    await assertLeafVerifies(ca, 'registry.example.test');
    fs.writeFileSync(
      path.join(dir, 'leaf521.pem'),
      (await new LeafCertificates(ca).certificateFor('a.test')).cert,
    );
    assert.match(openssl(['x509', '-in', 'leaf521.pem', '-noout', '-text'], dir), /ecdsa-with-SHA512/);
  });

  describe('errors name the key and the file', () => {
    test('missing file', async () => {
      const files = makeCa('rsa', ['-newkey', 'rsa:2048']);
      const caCert = path.join(dir, 'nope.crt');
      await rejectsWith(
        loadOrCreateProxyCa({ ...files, caCert, dir, log }),
        'INVALID_CONFIG',
        'proxy.server.caCert',
        caCert,
        'no such file',
      );
      const caKey = path.join(dir, 'nope.key');
      await rejectsWith(
        loadOrCreateProxyCa({ ...files, caKey, dir, log }),
        'INVALID_CONFIG',
        'proxy.server.caKey',
        caKey,
        'no such file',
      );
    });

    test('a directory', async () => {
      const files = makeCa('rsa', ['-newkey', 'rsa:2048']);
      await rejectsWith(
        loadOrCreateProxyCa({ ...files, caCert: dir, dir, log }),
        'INVALID_CONFIG',
        'proxy.server.caCert',
        'is a directory',
      );
    });

    test('garbage instead of PEM', async () => {
      const files = makeCa('rsa', ['-newkey', 'rsa:2048']);
      const junk = path.join(dir, 'junk');
      fs.writeFileSync(junk, 'not a certificate\n');
      await rejectsWith(
        loadOrCreateProxyCa({ ...files, caCert: junk, dir, log }),
        'INVALID_CONFIG',
        'proxy.server.caCert',
        junk,
        'not a PEM certificate',
      );
      await rejectsWith(
        loadOrCreateProxyCa({ ...files, caKey: junk, dir, log }),
        'INVALID_CONFIG',
        'proxy.server.caKey',
        junk,
        'not a PEM private key',
      );
      const broken = path.join(dir, 'broken.crt');
      fs.writeFileSync(broken, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
      await rejectsWith(
        loadOrCreateProxyCa({ ...files, caCert: broken, dir, log }),
        'INVALID_CONFIG',
        'proxy.server.caCert',
        broken,
        'no valid certificate',
      );
    });

    test('a key that is not the certificate’s', async () => {
      const a = makeCa('a', ['-newkey', 'rsa:2048']);
      const b = makeCa('b', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256']);
      await rejectsWith(
        loadOrCreateProxyCa({ caCert: a.caCert, caKey: b.caKey, dir, log }),
        'INVALID_CONFIG',
        'proxy.server.caKey',
        b.caKey,
        'not the private key of the certificate',
        a.caCert,
      );
    });

    test('only one of the two keys set', async () => {
      const files = makeCa('rsa', ['-newkey', 'rsa:2048']);
      await rejectsWith(
        loadOrCreateProxyCa({ caCert: files.caCert, dir, log }),
        'INVALID_CONFIG',
        'proxy.server.caKey is not set',
      );
      await rejectsWith(
        loadOrCreateProxyCa({ caKey: files.caKey, dir, log }),
        'INVALID_CONFIG',
        'proxy.server.caCert is not set',
      );
    });

    test('a certificate that is not a CA', async () => {
      const files = makeCa('leaf', ['-newkey', 'rsa:2048', '-addext', 'basicConstraints=critical,CA:FALSE']);
      await rejectsWith(
        loadOrCreateProxyCa({ ...files, dir, log }),
        'INVALID_CONFIG',
        'proxy.server.caCert',
        'not a CA certificate',
      );
    });

    test('a CA certificate whose keyUsage lacks keyCertSign', async () => {
      const files = makeCa('nosign', [
        '-newkey',
        'rsa:2048',
        '-addext',
        'basicConstraints=critical,CA:TRUE',
        '-addext',
        'keyUsage=critical,digitalSignature',
      ]);
      await rejectsWith(
        loadOrCreateProxyCa({ ...files, dir, log }),
        'INVALID_CONFIG',
        'proxy.server.caCert',
        'not a CA certificate',
      );
    });

    test('an EC key on a curve leaves cannot be signed with', async () => {
      const files = makeCa('k1', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:secp256k1']);
      await rejectsWith(
        loadOrCreateProxyCa({ ...files, dir, log }),
        'INVALID_CONFIG',
        'proxy.server.caKey',
        'curve secp256k1',
      );
    });

    test('an unsupported key type', async () => {
      const files = makeCa('ed', ['-newkey', 'ed25519']);
      await rejectsWith(
        loadOrCreateProxyCa({ ...files, dir, log }),
        'INVALID_CONFIG',
        'proxy.server.caKey',
        files.caKey,
        'unsupported ed25519 key',
      );
    });

    test('an encrypted key', async () => {
      const files = makeCa('rsa', ['-newkey', 'rsa:2048']);
      const enc = path.join(dir, 'enc.key');
      openssl(['pkey', '-in', files.caKey, '-aes256', '-passout', 'pass:secret', '-out', enc], dir);
      await rejectsWith(
        loadOrCreateProxyCa({ ...files, caKey: enc, dir, log }),
        'INVALID_CONFIG',
        'proxy.server.caKey',
        enc,
        'encrypted',
      );
    });

    test('an expired CA', async () => {
      const files = makeCa('rsa', ['-newkey', 'rsa:2048']);
      await rejectsWith(
        loadOrCreateProxyCa({ ...files, dir, log, now: () => Date.now() + 40 * DAY }),
        'INVALID_CONFIG',
        'proxy.server.caCert',
        'expired',
      );
    });
  });
});

test('a leaf from another CA fails verification', async () => {
  const ours = await loadOrCreateProxyCa({ dir: path.join(dir, 'a'), log });
  const theirs = await loadOrCreateProxyCa({ dir: path.join(dir, 'b'), log });
  // Same subject name, different key: only the signature tells them apart.
  assert.equal(new X509Certificate(ours.certPem).subject, new X509Certificate(theirs.certPem).subject);
  const server = await startSniServer(new LeafCertificates(ours));
  try {
    await assert.rejects(fetchHello(server.port, theirs.certPem, 'registry.example.test'), (e: unknown) => {
      const code = (e as NodeJS.ErrnoException).code ?? '';
      assert.match(code, /UNABLE_TO_VERIFY_LEAF_SIGNATURE|CERT_SIGNATURE_FAILURE|UNABLE_TO_GET_ISSUER_CERT/);
      return true;
    });
  } finally {
    await server.close();
  }
});
