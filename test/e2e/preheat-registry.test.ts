// Preheat of an image from a real distribution registry (Debian's docker-registry, pushed with skopeo):
// `dfctl task preheat oci://… --plain-http --wait` against a seed peer's embedded scheduler puts every blob of the
// image (config and layers) on the seed. Afterwards the registry serves no more content bytes for the blobs above
// 4 MiB: dfgets of the blobs on a normal peer, and a skopeo pull through another peer's registry mirror, take every
// byte of them from the seed. (Blobs of at most 4 MiB never go through P2P, as upstream: dfdaemon fetches them from
// the source and the proxy forwards them.) The registry's access log (one line per request, with the bytes sent)
// is the witness; a peer still asks the registry for a blob's size (a 1-byte range, as upstream's client stats
// every new task).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { DIST, dfget, run, startDaemon, stopDaemon, type DaemonHandle } from '../helpers/daemon.js';
import { sha256File } from '../helpers/files.js';
import type { OciImage } from '../helpers/oci-image.js';
import type { Registry } from '../helpers/registry.js';
import { findRegistryTools, RegistryEnv } from '../helpers/registry-env.js';
import {
  checkLayoutBlobs,
  layoutManifestDigest,
  type Skopeo,
  writeRegistriesConf,
} from '../helpers/skopeo.js';

const MiB = 1024 * 1024;
/** Blobs above this go through P2P; smaller ones come from the registry (dfget) or are forwarded (proxy). */
const P2P_MIN = 4 * MiB;
const DFCTL = join(DIST, 'src/cli/dfctl.js');
const TOOLS = findRegistryTools();
const ALLOW_LOOPBACK = 'security:\n  allowedPrivateSources: [127.0.0.1]\n';

describe('preheat an image from docker-registry (dfctl task preheat oci://…)', () => {
  let env: RegistryEnv;
  let registry: Registry;
  let skopeo: Skopeo;
  let img: OciImage;
  let seed: DaemonHandle;
  let peer: DaemonHandle;
  let mirrorPeer: DaemonHandle;
  /** A registry mirror whose blob tasks take the blob's digest as id (enableTaskIDBasedBlobDigest). */
  let digestPeer: DaemonHandle;
  /** Registry log lines up to the end of the preheat. */
  let servedBefore = 0;

  const blobUrl = (digest: string) => `${registry.url}/v2/t/p/blobs/${digest}`;
  /** Requests after the preheat that sent content (more than the 1-byte size probe). */
  const contentAfterPreheat = (digest: string) =>
    registry
      .requests()
      .slice(servedBefore)
      .filter((r) => r.method === 'GET' && r.path.endsWith(`/blobs/${digest}`) && r.bytes > 1);

  /** `dfctl task preheat oci://REGISTRY/t/p:v1 --plain-http --wait --scope single_seed_peer` and more flags. */
  async function preheatImage(...extra: string[]): Promise<void> {
    const r = await run(
      [
        DFCTL,
        'task',
        'preheat',
        `oci://${registry.host}/t/p:v1`,
        '--plain-http',
        '--wait',
        '--scope',
        'single_seed_peer',
        '--scheduler-endpoint',
        `http://127.0.0.1:${seed.schedulerPort}`,
        ...extra,
      ],
      { timeoutMs: 100_000 },
    );
    assert.equal(r.code, 0, `${r.stderr}\n${registry.errors()}`);
    assert.equal(r.stdout, 'Preheat Succeeded!\n');
    const n = img.blobs.length;
    assert.match(r.stderr, new RegExp(`preheat: ${n}/${n} finished \\(${n} blobs on 1 hosts\\)\\n$`));
  }

  /** skopeo pulls the image through `d`'s registry mirror; the image is checked whole. */
  async function skopeoPullVia(d: DaemonHandle, name: string): Promise<void> {
    const conf = skopeo.path(`${name}.conf`);
    writeRegistriesConf(conf, registry.host, [`127.0.0.1:${d.proxyPort}`]);
    const out = skopeo.path(name);
    const r = await skopeo.copy(`docker://${registry.host}/t/p:v1`, `oci:${out}:v1`, {
      registriesConf: conf,
    });
    assert.equal(r.code, 0, r.stderr.slice(-4000));
    assert.equal(layoutManifestDigest(out, 'v1'), img.manifestDigest);
    assert.deepEqual(await checkLayoutBlobs(out, img.blobs), []);
  }

  before(async () => {
    assert.deepEqual(TOOLS.missing, [], `not installed: ${TOOLS.missing.join(', ')}`);
    env = new RegistryEnv(TOOLS, 'dft-e2e-preheat-');
    ({ registry, skopeo } = env);
    const [pushed] = await env.start([
      { repo: 't/p:v1', spec: { layers: [6 * MiB + 7, 5 * MiB, MiB], seed: 'preheat-p' } },
    ]);
    img = pushed!.image;
    seed = await startDaemon({ extraConfig: `seedPeer:\n  enable: true\n  type: super\n${ALLOW_LOOPBACK}` });
    const schedulerAddr = `127.0.0.1:${seed.schedulerPort}`;
    peer = await startDaemon({ schedulerAddr, extraConfig: ALLOW_LOOPBACK });
    const mirror = (more = '') =>
      `proxy:\n  server:\n    ip: 127.0.0.1\n    port: 0\n  registryMirror:\n    addr: ${registry.url}\n${more}`;
    mirrorPeer = await startDaemon({ schedulerAddr, extraConfig: mirror() });
    digestPeer = await startDaemon({
      schedulerAddr,
      extraConfig: mirror('    enableTaskIDBasedBlobDigest: true\n'),
    });
  });

  after(async () => {
    for (const d of [digestPeer, mirrorPeer, peer, seed]) if (d) await stopDaemon(d);
    await env?.close();
  });

  test(
    'the preheat puts every blob on the seed; the registry sends each byte once',
    { timeout: 120_000 },
    async () => {
      await preheatImage();
      // Each blob's bytes left the registry once (in piece ranges), besides the seed's 1-byte size probe.
      for (const b of img.blobs) {
        const content = registry.blobGets(b.digest).filter((q) => q.bytes > 1);
        const sent = content.reduce((sum, q) => sum + q.bytes, 0);
        assert.equal(sent, b.size, `${b.digest}: ${JSON.stringify(registry.blobGets(b.digest))}`);
      }
      servedBefore = registry.requests().length;
    },
  );

  test(
    'dfgets of the blobs on a normal peer take no content of the big ones from the registry',
    { timeout: 60_000 },
    async () => {
      assert.ok(servedBefore > 0, 'the preheat ran');
      for (const b of img.blobs) {
        const out = join(peer.dir, `blob-${b.digest.slice(7, 19)}`);
        const d = await dfget(peer, blobUrl(b.digest), out);
        assert.equal(d.code, 0, d.stderr);
        assert.equal(`sha256:${await sha256File(out)}`, b.digest);
        // A blob of at most 4 MiB is fetched from the source directly by design (as upstream: such a task never
        // asks the scheduler); every bigger one comes from the seed.
        if (b.size > P2P_MIN) {
          assert.deepEqual(contentAfterPreheat(b.digest), [], `${b.digest}: no content from the registry`);
        }
      }
    },
  );

  test(
    'a skopeo pull through a registry mirror takes the big blobs from the seed',
    { timeout: 60_000 },
    async () => {
      assert.ok(servedBefore > 0, 'the preheat ran');
      await skopeoPullVia(mirrorPeer, 'pulled');
      const big = img.blobs.filter((b) => b.size > P2P_MIN);
      assert.equal(big.length, 2);
      for (const b of big) assert.deepEqual(contentAfterPreheat(b.digest), [], `${b.digest} from the seed`);
    },
  );

  test(
    '--enable-task-id-based-blob-digest: the blob tasks a digest-id mirror pulls are the preheated ones',
    { timeout: 120_000 },
    async () => {
      // Other task ids than the URL's: the seed fetches every blob once more, now under its digest.
      const before = registry.requests().length;
      await preheatImage('--enable-task-id-based-blob-digest');
      for (const b of img.blobs) {
        const sent = registry
          .requests()
          .slice(before)
          .filter((q) => q.path.endsWith(`/blobs/${b.digest}`) && q.bytes > 1)
          .reduce((sum, q) => sum + q.bytes, 0);
        assert.equal(sent, b.size, `${b.digest} fetched once more for its digest task`);
      }
      servedBefore = registry.requests().length;
      await skopeoPullVia(digestPeer, 'pulled-by-digest');
      for (const b of img.blobs.filter((x) => x.size > P2P_MIN)) {
        assert.deepEqual(contentAfterPreheat(b.digest), [], `${b.digest} from the seed`);
      }
    },
  );
});
