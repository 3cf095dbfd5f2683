import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  LeafCertificates,
  loadOrCreateProxyCa,
  normalizeHost,
  type ProxyCa,
} from '../../../src/proxy/certificates.js';
import { DfError } from '../../../src/core/errors.js';
import * as x509 from '../../helpers/x509.js';
import { fetchHello, log, opensslVerify, startSniServer, startTlsServer } from './tls-check.js';

const DAY = 24 * 3600 * 1000;

let dir: string;
let ca: ProxyCa;
before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'leaf-certs-'));
  ca = await loadOrCreateProxyCa({ dir, log });
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('TLS with the issued leaves', () => {
  test('a DNS host served through SNICallback verifies against the CA', async () => {
    const leaves = new LeafCertificates(ca);
    const server = await startSniServer(leaves);
    try {
      assert.equal(await fetchHello(server.port, ca.certPem, 'registry.example.test'), 'hello');
      assert.equal(await fetchHello(server.port, ca.certPem, 'Other.Example.TEST'), 'hello');
      assert.equal(leaves.size, 2);
    } finally {
      await server.close();
    }
  });

  test('127.0.0.1 without SNI (the CONNECT host) verifies through its IP SAN', async () => {
    const leaves = new LeafCertificates(ca);
    const server = await startTlsServer(leaves, '127.0.0.1');
    try {
      assert.equal(await fetchHello(server.port, ca.certPem), 'hello');
    } finally {
      await server.close();
    }
  });

  test('a client asking for another name than the leaf is refused', async () => {
    const leaves = new LeafCertificates(ca);
    const server = await startTlsServer(leaves, 'registry.example.test');
    try {
      // No SNI from an IP-addressed client: the server serves the CONNECT host's leaf, which is not 127.0.0.1's.
      await assert.rejects(
        fetchHello(server.port, ca.certPem),
        /ERR_TLS_CERT_ALTNAME_INVALID|does not match/,
      );
    } finally {
      await server.close();
    }
  });

  test('openssl verify accepts the leaf for its name (purpose sslserver)', async () => {
    const leaves = new LeafCertificates(ca);
    for (const host of ['registry.example.test', '10.1.2.3', '::1']) {
      const leaf = await leaves.certificateFor(host);
      assert.equal(opensslVerify(dir, ca.certPem, leaf.cert, host), 'leaf.pem: OK');
    }
  });
});

describe('leaf contents', () => {
  test('DNS host: CN and DNS SAN, serverAuth, CA:FALSE, 1 year backdated 1 day, signed by the CA', async () => {
    const now = Date.now();
    const leaves = new LeafCertificates(ca, { now: () => now });
    const leaf = await leaves.certificateFor('Registry.Example.Test.');
    assert.equal(leaf.host, 'registry.example.test');
    const cert = new x509.X509Certificate(leaf.cert);
    assert.equal(cert.subject, 'CN=registry.example.test');
    assert.equal(cert.issuer, new x509.X509Certificate(ca.certPem).subject);
    const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
    assert.deepEqual(san?.names.toJSON(), [{ type: 'dns', value: 'registry.example.test' }]);
    assert.deepEqual(
      [...cert.getExtension(x509.ExtendedKeyUsageExtension)!.usages],
      [x509.ExtendedKeyUsage.serverAuth],
    );
    assert.equal(cert.getExtension(x509.BasicConstraintsExtension)?.ca, false);
    assert.equal(cert.notBefore.getTime(), Math.floor((now - DAY) / 1000) * 1000);
    assert.equal(cert.notAfter.getTime(), Math.floor((now + 365 * DAY) / 1000) * 1000);
    assert.ok(
      await cert.verify({ publicKey: new x509.X509Certificate(ca.certPem).publicKey, signatureOnly: true }),
    );
    const node = new X509Certificate(leaf.cert);
    assert.equal(node.checkHost('registry.example.test'), 'registry.example.test');
    assert.equal(node.checkHost('other.example.test'), undefined);
    assert.ok(node.checkIssued(new X509Certificate(ca.certPem)));
  });

  test('IP hosts get an IP SAN (IPv4, IPv6 with or without brackets, IPv4-mapped)', async () => {
    const leaves = new LeafCertificates(ca);
    const cases: Array<[string, string]> = [
      ['127.0.0.1', '127.0.0.1'],
      ['[::1]', '0:0:0:0:0:0:0:1'],
      ['2001:DB8::42', '2001:db8::42'],
      ['::ffff:10.0.0.1', '::ffff:10.0.0.1'],
    ];
    for (const [host, ip] of cases) {
      const leaf = await leaves.certificateFor(host);
      const cert = new x509.X509Certificate(leaf.cert);
      const [name] = cert.getExtension(x509.SubjectAlternativeNameExtension)!.names.toJSON();
      assert.equal(name?.type, 'ip', host);
      assert.ok(new X509Certificate(leaf.cert).checkIP(ip), `${host}: SAN does not match ${ip}`);
    }
  });

  test('a name too long for a commonName goes in a critical SAN only', async () => {
    const host = `${'a'.repeat(60)}.${'b'.repeat(60)}.example.test`;
    const leaf = await new LeafCertificates(ca).certificateFor(host);
    const cert = new x509.X509Certificate(leaf.cert);
    assert.equal(cert.subject, '');
    assert.ok(cert.getExtension(x509.SubjectAlternativeNameExtension)?.critical);
    assert.equal(opensslVerify(dir, ca.certPem, leaf.cert, host), 'leaf.pem: OK');
  });

  test('one leaf key pair serves every host; serial numbers are random', async () => {
    const leaves = new LeafCertificates(ca);
    const a = await leaves.certificateFor('a.example.test');
    const b = await leaves.certificateFor('b.example.test');
    assert.equal(a.key, b.key);
    assert.notEqual(new X509Certificate(a.cert).serialNumber, new X509Certificate(b.cert).serialNumber);
  });
});

describe('hosts', () => {
  test('hostile or malformed hosts are refused with a clear error', async () => {
    const leaves = new LeafCertificates(ca);
    const hostile = [
      '',
      '.',
      'a'.repeat(300),
      `${'a'.repeat(64)}.test`,
      'evil host.test',
      'a/b',
      '../../etc/passwd',
      'x.test\r\nHost: y',
      'CN=x,O=y',
      '*.example.test',
      'a..b',
      '-',
      'ünïcode.test',
      'fe80::1%eth0',
      '[::1',
      '1.2.3.999',
      '10.1',
      'a\u0000b',
    ];
    for (const host of hostile) {
      await assert.rejects(
        leaves.certificateFor(host),
        (e: unknown) =>
          e instanceof DfError &&
          e.code === 'INVALID_ARGUMENT' &&
          e.message.startsWith('cannot issue a certificate for host') &&
          !e.message.includes('\n'),
        JSON.stringify(host),
      );
    }
    assert.equal(leaves.size, 0);
  });

  test('names are normalised', () => {
    assert.deepEqual(normalizeHost('Example.COM.'), {
      host: 'example.com',
      kind: 'dns',
      sanValue: 'example.com',
    });
    assert.deepEqual(normalizeHost('_acme.example.com').kind, 'dns');
    assert.deepEqual(normalizeHost('[::1]'), { host: '::1', kind: 'ip', sanValue: '0:0:0:0:0:0:0:1' });
    assert.deepEqual(normalizeHost('fe80::'), { host: 'fe80::', kind: 'ip', sanValue: 'fe80:0:0:0:0:0:0:0' });
    assert.equal(normalizeHost('::ffff:1.2.3.4').sanValue, '0:0:0:0:0:ffff:102:304');
    assert.equal(normalizeHost('localhost').host, 'localhost');
  });
});

describe('cache', () => {
  test('is an LRU bounded by capacity', async () => {
    const leaves = new LeafCertificates(ca, { capacity: 3 });
    const a = await leaves.certificateFor('a.test');
    await leaves.certificateFor('b.test');
    await leaves.certificateFor('c.test');
    assert.equal(await leaves.certificateFor('a.test'), a, 'a hit; a is now the most recent');
    await leaves.certificateFor('d.test'); // evicts b, the least recently used
    await leaves.certificateFor('e.test'); // evicts c
    assert.equal(leaves.size, 3);
    assert.equal(await leaves.certificateFor('a.test'), a, 'a was kept');
    const b = await leaves.certificateFor('b.test');
    assert.equal(leaves.size, 3);
    assert.notEqual(new X509Certificate(b.cert).serialNumber, undefined);
    for (let i = 0; i < 20; i++) await leaves.certificateFor(`h${i}.test`);
    assert.equal(leaves.size, 3);
  });

  test('the same host asked for concurrently is issued once', async () => {
    const leaves = new LeafCertificates(ca);
    const all = await Promise.all(
      Array.from({ length: 20 }, (_, i) => leaves.certificateFor(i % 2 ? 'same.test' : 'SAME.test.')),
    );
    for (const leaf of all) assert.equal(leaf, all[0]);
    assert.equal(leaves.size, 1);
  });

  test('a leaf near its end is issued anew', async () => {
    let now = Date.now();
    const leaves = new LeafCertificates(ca, { now: () => now });
    const first = await leaves.certificateFor('a.test');
    now += 300 * DAY;
    assert.equal(await leaves.certificateFor('a.test'), first);
    now += 65 * DAY;
    const renewed = await leaves.certificateFor('a.test');
    assert.notEqual(renewed, first);
    assert.ok(renewed.notAfter.getTime() > first.notAfter.getTime());
  });

  test('a capacity that is not a positive integer is refused', () => {
    assert.throws(() => new LeafCertificates(ca, { capacity: 0 }), /positive integer/);
    assert.throws(() => new LeafCertificates(ca, { capacity: 1.5 }), /positive integer/);
  });
});
