// CONNECT through dfdaemon's proxy to a real TLS origin: nginx with an openssl-made self-signed certificate. curl
// trusts only dfdaemon's CA (the interception), dfdaemon trusts nginx through proxy.registryMirror.cert; a second
// nginx whose certificate nobody configured is refused (upstream TLS is verified).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { startDaemon, stopDaemon, tempDir, type DaemonHandle } from '../helpers/daemon.js';
import { findNginx, Nginx } from '../helpers/nginx.js';
import { curl } from '../helpers/curl.js';
import { selfSignedLocalhost } from '../helpers/tls.js';

const MiB = 1024 * 1024;
const NGINX = findNginx();

describe('CONNECT to nginx over TLS through the proxy', () => {
  const certs = tempDir('dft-tls-');
  let trusted: Nginx;
  let untrusted: Nginx;
  let d: DaemonHandle;
  let caCert = '';

  before(async () => {
    assert.ok(NGINX, 'nginx is not installed (.ci/run installs it)');
    const a = selfSignedLocalhost(certs, 'trusted');
    const b = selfSignedLocalhost(certs, 'untrusted');
    trusted = new Nginx(NGINX, { tls: a });
    untrusted = new Nginx(NGINX, { tls: b });
    await trusted.start();
    await untrusted.start();
    d = await startDaemon({
      extraConfig: `proxy:
  server:
    ip: 127.0.0.1
    port: 0
  registryMirror:
    cert: ${a.certPath}
`,
    });
    caCert = join(d.storageDir, 'proxy', 'ca.crt');
  });

  after(async () => {
    if (d) await stopDaemon(d);
    await trusted?.stop();
    await untrusted?.stop();
    rmSync(certs, { recursive: true, force: true });
  });

  test('forwarded and P2P requests inside the tunnel are byte-exact; P2P pieces come with Range from nginx', async () => {
    const small = trusted.addFile('small.bin', 3 * MiB);
    const proxy = `http://127.0.0.1:${d.proxyPort}`;
    const direct = await curl(['--cacert', caCert, '-x', proxy, small.url]);
    assert.equal(direct.status, 200, direct.stderr);
    assert.equal(createHash('sha256').update(direct.body).digest('hex'), small.sha256);

    const big = trusted.addFile('big.bin', 20 * MiB);
    const p2p = await curl(['--cacert', caCert, '-x', proxy, '-H', 'X-Dragonfly-Use-P2P: true', big.url]);
    assert.equal(p2p.status, 200, p2p.stderr);
    assert.equal(createHash('sha256').update(p2p.body).digest('hex'), big.sha256);
    assert.match(p2p.headers['x-dragonfly-task-id'] ?? '', /^[0-9a-f]{64}$/);
    const ranged = trusted.accessEntries().filter((e) => e.request === 'GET /big.bin' && e.range);
    assert.ok(ranged.length >= 2, `nginx saw ${ranged.length} ranged requests for the pieces`);
    // The certificate curl saw was issued by dfdaemon's CA for localhost.
    assert.match(readFileSync(caCert, 'utf8'), /BEGIN CERTIFICATE/);
  });

  test('an origin whose certificate nothing trusts is refused: 502 with X-Dragonfly-Error-Type: proxy', async () => {
    const f = untrusted.addFile('x.bin', 1024);
    const r = await curl(['--cacert', caCert, '-x', `http://127.0.0.1:${d.proxyPort}`, f.url]);
    assert.equal(r.status, 502, r.stderr);
    assert.equal(r.headers['x-dragonfly-error-type'], 'proxy');
    assert.match(r.body.toString(), /certificate/i);
  });
});
