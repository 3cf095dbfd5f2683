// dfdaemon's proxy as a registry mirror in front of a real distribution registry, with real clients: skopeo (a
// registries.conf mirror) and containerd's ctr (a certs.d hosts.toml). Blobs above 4 MiB go through P2P and are
// stored as tasks; a second pull of them is served from those tasks without asking the registry again.
//
// Both clients fall back to the registry itself when the mirror fails, so a successful pull alone proves nothing:
// every test also checks, from the client's --debug log, that each blob came from the proxy's port.
//
// The catch-all hosts.toml (ns= form) is written by the test; the per-registry one (server + X-Dragonfly-Registry)
// is written by our `dfinit` from a dfinit.yaml, as a user would.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../helpers/child-process.js';
import { writeHostsToml } from '../helpers/containerd.js';
import {
  DIST,
  metricsText,
  metricValue,
  run,
  startDaemon,
  stopDaemon,
  type DaemonHandle,
} from '../helpers/daemon.js';
import type { OciBlob, OciImage } from '../helpers/oci-image.js';
import type { Registry } from '../helpers/registry.js';
import { findRegistryTools, RegistryEnv } from '../helpers/registry-env.js';
import {
  checkLayoutBlobs,
  layoutManifestDigest,
  requestedUrls,
  type Skopeo,
  writeRegistriesConf,
} from '../helpers/skopeo.js';

const MiB = 1024 * 1024;
/** Blobs above this go through P2P (stored as tasks); smaller ones are forwarded to the registry. */
const P2P_MIN = 4 * MiB;
const DFCTL = join(DIST, 'src/cli/dfctl.js');
const DFINIT = join(DIST, 'src/cli/dfinit.js');
const TOOLS = findRegistryTools();

interface TaskJson {
  id: string;
  contentLength?: number;
  finishedAt?: string;
}

describe('dfdaemon proxy as a registry mirror (docker-registry, skopeo, ctr)', () => {
  let env: RegistryEnv;
  let registry: Registry;
  let skopeo: Skopeo;
  let daemon: DaemonHandle;
  let work: string;
  /** Pulled by skopeo. */
  let imgX: OciImage;
  /** Pulled by ctr (other blobs, so that its first pull is cold in the daemon). */
  let imgY: OciImage;
  let proxyHost: string;

  const big = (img: OciImage) => img.blobs.filter((b) => b.size > P2P_MIN);

  before(async () => {
    // e2e tests need their third-party programs (.ci/run installs them): a missing one fails, naming it.
    assert.deepEqual(TOOLS.missing, [], `not installed: ${TOOLS.missing.join(', ')}`);
    env = new RegistryEnv(TOOLS, 'dft-e2e-mirror-');
    ({ registry, skopeo, work } = env);
    const pushed = await env.start([
      { repo: 't/x:v1', spec: { layers: [5 * MiB + 3, 9 * MiB, MiB], seed: 'mirror-x' } },
      { repo: 't/y:v1', spec: { layers: [6 * MiB + 1, 2 * MiB], seed: 'mirror-y' } },
    ]);
    for (const p of pushed) assert.equal(p.pushedDigest, p.image.manifestDigest);
    [imgX, imgY] = pushed.map((p) => p.image) as [OciImage, OciImage];
    daemon = await startDaemon({
      extraConfig: `proxy:\n  server:\n    ip: 127.0.0.1\n    port: 0\n  registryMirror:\n    addr: ${registry.url}\n`,
    });
    if (!daemon.proxyPort) throw new Error('dfdaemon reported no proxy port ("proxy" in its started line)');
    proxyHost = `127.0.0.1:${daemon.proxyPort}`;
  });

  after(async () => {
    if (daemon) await stopDaemon(daemon);
    await env?.close();
  });

  async function tasks(): Promise<TaskJson[]> {
    const r = await run([DFCTL, 'task', 'ls', '-o', 'json', '-e', daemon.socket]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as TaskJson[];
  }

  /**
   * Each blob above 4 MiB is a finished task of its size. The client has the last byte a moment before the task
   * is recorded as finished, so this waits for that (up to 10 s).
   */
  async function assertStoredAsTasks(blobs: OciBlob[]): Promise<void> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const all = await tasks();
      const missing = blobs.filter((b) => !all.some((x) => x.contentLength === b.size && x.finishedAt));
      if (missing.length === 0) return;
      if (Date.now() > deadline) {
        assert.fail(
          `no finished task for ${missing.map((b) => `${b.digest} (${b.size} bytes)`).join(', ')}: ${JSON.stringify(all)}`,
        );
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  const backToSource = async () =>
    metricValue(await metricsText(daemon), 'dragonfly_client_download_traffic', 'type="BACK_TO_SOURCE"');

  async function skopeoPull(name: string) {
    const conf = skopeo.path('registries.conf');
    writeRegistriesConf(conf, registry.host, [proxyHost]);
    const out = skopeo.path(name);
    const r = await skopeo.copy(`docker://${registry.host}/t/x:v1`, `oci:${out}:v1`, {
      registriesConf: conf,
      debug: true,
    });
    assert.equal(r.code, 0, r.stderr.slice(-4000));
    assert.equal(layoutManifestDigest(out, 'v1'), imgX.manifestDigest);
    assert.deepEqual(await checkLayoutBlobs(out, imgX.blobs), []);
    // skopeo tries https://mirror first, then http://mirror; only the registry itself is off limits.
    const gets = requestedUrls(r.stderr).filter(
      (q) => q.method === 'GET' && q.url.pathname.includes('/blobs/'),
    );
    for (const b of imgX.blobs) {
      assert.ok(
        gets.some((q) => q.url.host === proxyHost && q.url.pathname.endsWith(b.digest)),
        `${b.digest} fetched from the mirror: ${gets.map((q) => q.url.href).join(' ')}`,
      );
    }
    assert.deepEqual(
      gets.filter((q) => q.url.host !== proxyHost).map((q) => q.url.href),
      [],
      'no blob from the registry directly',
    );
  }

  test(
    'skopeo pulls through the mirror; big blobs become tasks; a second pull comes from them',
    {
      timeout: 60_000,
    },
    async () => {
      const bigX = big(imgX);
      assert.equal(bigX.length, 2);
      const viaBefore = metricValue(
        await metricsText(daemon),
        'dragonfly_client_proxy_request_via_dfdaemon_total',
      );

      await skopeoPull('pull-1');
      await assertStoredAsTasks(bigX);
      for (const b of bigX)
        assert.ok(registry.blobGets(b.digest).length >= 1, `the daemon fetched ${b.digest}`);
      const text = await metricsText(daemon);
      assert.ok(
        metricValue(text, 'dragonfly_client_proxy_request_via_dfdaemon_total') - viaBefore >= bigX.length,
        'big blob requests went through dfdaemon',
      );
      const b2s = await backToSource();
      assert.ok(b2s >= bigX.reduce((s, b) => s + b.size, 0), `back-to-source bytes ${b2s}`);
      const registryGets = new Map(bigX.map((b) => [b.digest, registry.blobGets(b.digest).length]));

      await skopeoPull('pull-2');
      for (const b of bigX) {
        assert.equal(
          registry.blobGets(b.digest).length,
          registryGets.get(b.digest),
          `${b.digest} from the cache`,
        );
      }
      assert.equal(await backToSource(), b2s, 'nothing more from the registry through P2P');
    },
  );

  test(
    'ctr pulls through the mirror named in hosts.toml; requests carry ?ns=<registry>',
    { timeout: 60_000 },
    async () => {
      // dfinit's catch-all form: no server, no header; the proxy reads the registry from containerd's `ns`.
      const certs = join(work, 'certs-ns');
      writeHostsToml(certs, registry.host, `http://${proxyHost}`);
      const c = await env.containerd();
      const r = await c.pull(`${registry.host}/t/y:v1`, { hostsDir: certs });
      assert.equal(r.code, 0, r.stderr.slice(-4000));
      assert.deepEqual(r.fallbacks, [], 'ctr did not fall back to the registry');
      assert.ok(r.requests.length >= imgY.blobs.length + 1);
      for (const u of r.requests) {
        assert.equal(u.host, proxyHost, u.href);
        assert.equal(u.searchParams.get('ns'), registry.host, u.href);
      }
      for (const b of imgY.blobs) {
        const f = r.fetches.find((x) => x.digest === b.digest);
        assert.ok(f, `ctr fetched ${b.digest}`);
        assert.equal(f.url.host, proxyHost);
        assert.equal(f.status, '200 OK', `${b.digest}: ${JSON.stringify(f.headers)}`);
        if (b.size > P2P_MIN) assert.ok(f.headers['x-dragonfly-task-id'], `${b.digest} came through P2P`);
      }
      const content = await c.content();
      for (const b of imgY.blobs) assert.ok(content.has(b.digest), `containerd holds ${b.digest}`);
      await assertStoredAsTasks(big(imgY));
    },
  );

  test(
    'dfinit writes the per-registry hosts.toml (server + X-Dragonfly-Registry); ctr pulls through the mirror with it',
    { timeout: 60_000 },
    async () => {
      // The reference names a registry alias nothing listens on, so `ns` leads nowhere and only the
      // X-Dragonfly-Registry header can name the registry; `server` is where ctr would fall back to.
      const alias = `127.0.0.1:${await freePort()}`;
      const certs = join(work, 'certs-dfinit');
      const configToml = join(work, 'containerd-config.toml');
      writeFileSync(
        configToml,
        `version = 2\n\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "${certs}"\n`,
      );
      const dfinitYaml = join(work, 'dfinit.yaml');
      writeFileSync(
        dfinitYaml,
        [
          'proxy:',
          `  addr: http://${proxyHost}`,
          'containerRuntime:',
          '  containerd:',
          `    configPath: ${configToml}`,
          '    proxyAllRegistries: false',
          '    registries:',
          `      - hostNamespace: "${alias}"`,
          `        serverAddr: ${registry.url}`,
          '        capabilities: ["pull", "resolve"]',
          '',
        ].join('\n'),
      );
      const init = await run([DFINIT, '-c', dfinitYaml]);
      assert.equal(init.code, 0, init.stderr);
      const hosts = readFileSync(join(certs, alias, 'hosts.toml'), 'utf8');
      assert.match(hosts, new RegExp(`X-Dragonfly-Registry = "${registry.url}"`));
      const c = await env.containerd();
      const r = await c.pull(`${alias}/t/y:v1`, { hostsDir: certs });
      assert.equal(r.code, 0, r.stderr.slice(-4000));
      assert.deepEqual(r.fallbacks, [], 'ctr did not fall back to `server`');
      for (const u of r.requests) assert.equal(u.host, proxyHost, u.href);
      for (const b of imgY.blobs) {
        const f = r.fetches.find((x) => x.digest === b.digest);
        assert.ok(f, `ctr fetched ${b.digest}`);
        assert.equal(f.url.host, proxyHost);
        if (b.size > P2P_MIN) assert.ok(f.headers['x-dragonfly-task-id'], `${b.digest} came through P2P`);
      }
      const content = await c.content();
      for (const b of imgY.blobs) assert.ok(content.has(b.digest), `containerd holds ${b.digest}`);
    },
  );
});
