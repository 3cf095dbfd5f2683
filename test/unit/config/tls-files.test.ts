// Reading the TLS files the config names (config/tls-files.ts): every file that would make each handshake fail is
// refused at start with the key and the file named, rather than found out peer by peer.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadTlsFiles } from '../../../src/config/tls-files.js';
import { DfError } from '../../../src/core/errors.js';
import { tempDir } from '../../helpers/daemon.js';
import { TestCa, type Pem } from '../../helpers/pki.js';

describe('loadTlsFiles', () => {
  const dir = tempDir('dft-tls-files-');
  let ca: TestCa;
  let leaf: Pem;
  let other: Pem;

  before(async () => {
    ca = await TestCa.create(dir);
    leaf = await ca.issue('leaf');
    other = await ca.issue('other');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  async function refused(
    files: { caCert?: string; cert?: string; key?: string },
    role: 'server' | 'client',
    pattern: RegExp,
    now?: number,
  ) {
    await assert.rejects(loadTlsFiles('upload.server', files, role, now), (e: unknown) => {
      assert.ok(e instanceof DfError, String(e));
      assert.equal(e.code, 'INVALID_CONFIG');
      assert.match(e.message, pattern);
      return true;
    });
  }

  test('keys that turn TLS on give the files; others give nothing', async () => {
    const server = await loadTlsFiles('upload.server', { caCert: ca.certPath, ...leaf }, 'server');
    assert.ok(server?.caCert && server.cert && server.key);
    assert.equal(server.section, 'upload.server');
    assert.equal(await loadTlsFiles('upload.server', {}, 'server'), undefined);
    const client = await loadTlsFiles('upload.client', { caCert: ca.certPath }, 'client');
    assert.ok(client?.caCert);
    assert.equal(client.cert, undefined);
    assert.equal(await loadTlsFiles('upload.client', {}, 'client'), undefined);
  });

  test('a missing file, a file that is not PEM, a key of another certificate: each names key and file', async () => {
    await refused(
      { cert: join(dir, 'nope.crt'), key: leaf.key },
      'server',
      /^upload\.server\.cert: cannot read .*nope\.crt/,
    );
    const garbage = join(dir, 'garbage.pem');
    writeFileSync(garbage, 'hello');
    await refused(
      { caCert: garbage, ...leaf },
      'server',
      /^upload\.server\.caCert: .*garbage\.pem holds no PEM certificate/,
    );
    await refused(
      { cert: leaf.cert, key: garbage },
      'server',
      /^upload\.server\.key: .*garbage\.pem is not a PEM private key/,
    );
    await refused(
      { cert: leaf.cert, key: other.key },
      'server',
      /^upload\.server\.key: .*other\.key is not the private key of upload\.server\.cert \(.*leaf\.crt\)/,
    );
    await refused({ cert: leaf.cert }, 'server', /^upload\.server\.key: expected the private key/);
  });

  test('a certificate out of its validity period is refused, naming when', async () => {
    const day = 24 * 3600 * 1000;
    await refused(
      { ...leaf },
      'server',
      /^upload\.server\.cert: .*leaf\.crt expired on \d{4}-/,
      Date.now() + 3 * day,
    );
    await refused(
      { ...leaf },
      'server',
      /^upload\.server\.cert: .*leaf\.crt is not valid before/,
      Date.now() - 3 * day,
    );
  });
});
