// The registry e2e toolchain on its own, without dfdaemon: an image built offline with umoci is pushed to a real
// distribution registry with skopeo, pulled back with skopeo (which checks every blob digest) and with
// containerd's ctr (directly, and through a hosts.toml host entry to check how ctr names the registry with `ns`).
// The registry-mirror tests build on exactly these steps.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { freePort } from '../helpers/child-process.js';
import { writeHostsToml } from '../helpers/containerd.js';
import type { OciImage } from '../helpers/oci-image.js';
import type { Registry } from '../helpers/registry.js';
import { findRegistryTools, RegistryEnv } from '../helpers/registry-env.js';
import { checkLayoutBlobs, layoutManifestDigest, type Skopeo } from '../helpers/skopeo.js';

const MiB = 1024 * 1024;
const TOOLS = findRegistryTools();

describe('registry toolchain: umoci, docker-registry, skopeo, ctr', () => {
  let env: RegistryEnv;
  let registry: Registry;
  let skopeo: Skopeo;
  let img: OciImage;
  let pushedDigest: string;
  let work: string;

  before(async () => {
    // e2e tests need their third-party programs (.ci/run installs them): a missing one fails, naming it.
    assert.deepEqual(TOOLS.missing, [], `not installed: ${TOOLS.missing.join(', ')}`);
    env = new RegistryEnv(TOOLS, 'dft-e2e-registry-');
    ({ registry, skopeo, work } = env);
    [{ image: img, pushedDigest }] = await env.start([
      { repo: 't/x:v1', spec: { layers: [5 * MiB + 3, 9 * MiB, MiB] } },
    ]);
  });

  after(async () => {
    await env?.close();
  });

  test('the built image has a busybox layer and pseudo-random layers that gzip cannot shrink', () => {
    assert.equal(img.layers.length, 4);
    for (const l of img.layers) assert.equal(l.mediaType, 'application/vnd.oci.image.layer.v1.tar+gzip');
    assert.ok(img.layers[1]!.size > 5 * MiB, `layer 1 is ${img.layers[1]!.size} bytes`);
    assert.ok(img.layers[2]!.size > 9 * MiB, `layer 2 is ${img.layers[2]!.size} bytes`);
    assert.ok(img.layers[3]!.size <= 4 * MiB);
    assert.equal(new Set(img.blobs.map((b) => b.digest)).size, img.blobs.length, 'no two blobs alike');
  });

  test('push: the registry stores the manifest as built and serves every blob', async () => {
    assert.equal(pushedDigest, img.manifestDigest);
    const head = await fetch(`${registry.url}/v2/t/x/manifests/v1`, {
      method: 'HEAD',
      headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' },
    });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('docker-content-digest'), img.manifestDigest);
    for (const b of img.blobs) {
      const r = await fetch(`${registry.url}/v2/t/x/blobs/${b.digest}`, { method: 'HEAD' });
      assert.equal(r.status, 200, b.digest);
      assert.equal(Number(r.headers.get('content-length')), b.size, b.digest);
    }
  });

  test('skopeo pulls the image back; every blob is byte-exact', async () => {
    const before = registry.requests().length;
    const out = skopeo.path('pull-direct');
    const r = await skopeo.copy(`docker://${registry.host}/t/x:v1`, `oci:${out}:v1`);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(layoutManifestDigest(out, 'v1'), img.manifestDigest);
    assert.deepEqual(await checkLayoutBlobs(out, img.blobs), []);
    const gets = registry
      .requests()
      .slice(before)
      .filter((q) => q.method === 'GET' && q.path.includes('/blobs/'));
    assert.equal(gets.length, img.blobs.length, JSON.stringify(gets));
    for (const b of img.blobs) assert.ok(registry.blobGets(b.digest).length >= 1, b.digest);
  });

  test('ctr pulls and unpacks the image from the registry directly', async () => {
    const c = await env.containerd();
    const r = await c.pull(`${registry.host}/t/x:v1`, { plainHttp: true });
    assert.equal(r.code, 0, r.stderr.slice(-3000));
    const content = await c.content();
    for (const b of img.blobs) assert.ok(content.has(b.digest), `containerd holds ${b.digest}`);
    assert.ok(content.has(img.manifestDigest));
    for (const b of img.blobs) {
      const f = r.fetches.find((x) => x.digest === b.digest);
      assert.ok(f, `ctr fetched ${b.digest}`);
      assert.equal(f.url.host, registry.host);
    }
    const images = await c.ctr(['images', 'ls', '-q']);
    assert.match(images.stdout, /\/t\/x:v1/);
  });

  test('ctr with a hosts.toml host entry sends every request there, with ?ns=<registry>', {}, async () => {
    // The reference names a port nothing listens on; hosts.toml sends the pull to the registry. The request then
    // carries ns=<the reference's host>, as a mirror (dfdaemon's proxy) would receive it.
    const alias = `127.0.0.1:${await freePort()}`;
    const certs = join(work, 'certs.d');
    writeHostsToml(certs, alias, registry.url);
    const c = await env.containerd();
    const before = registry.requests().length;
    const r = await c.pull(`${alias}/t/x:v1`, { hostsDir: certs, unpack: false });
    assert.equal(r.code, 0, r.stderr.slice(-3000));
    assert.deepEqual(r.fallbacks, []);
    const seen = registry.requests().slice(before);
    assert.ok(seen.length >= img.blobs.length + 1);
    for (const q of seen) assert.equal(q.query, `ns=${encodeURIComponent(alias)}`, JSON.stringify(q));
    for (const b of img.blobs) {
      assert.ok(
        seen.some((q) => q.method === 'GET' && q.path === `/v2/t/x/blobs/${b.digest}`),
        b.digest,
      );
    }
    const content = await c.content();
    for (const b of img.blobs) assert.ok(content.has(b.digest), `containerd holds ${b.digest}`);
  });
});
