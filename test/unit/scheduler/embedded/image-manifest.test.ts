// The scheduler's image resolution for PreheatImage / StatImage against a small Node registry on loopback that
// asks for auth the way registries do: a Bearer challenge whose token realm wants Basic credentials, or a plain
// Basic challenge. An index leads to the manifest of the wanted platform; the blobs are its config and layers.

import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { SourceAddressPolicy } from '../../../../src/backend/address-policy.js';
import { AddressList } from '../../../../src/core/addresses.js';
import { isDfError } from '../../../../src/core/errors.js';
import {
  ImageManifestResolver,
  parseChallenge,
  type ImageRequest,
} from '../../../../src/scheduler/embedded/image-manifest.js';

const d = (c: string) => `sha256:${c.repeat(64)}`;
const AMD64 = { config: d('1'), layers: [d('2'), d('3')], digest: d('a') };
const ARM64 = { config: d('4'), layers: [d('5')], digest: d('b') };

const manifest = (m: { config: string; layers: string[] }) =>
  JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: m.config, size: 1 },
    layers: m.layers.map((digest) => ({
      mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
      digest,
      size: 1,
    })),
  });
const INDEX = JSON.stringify({
  schemaVersion: 2,
  mediaType: 'application/vnd.oci.image.index.v1+json',
  manifests: [
    { digest: AMD64.digest, size: 1, platform: { os: 'linux', architecture: 'amd64' } },
    { digest: ARM64.digest, size: 1, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
  ],
});

const BASIC = `Basic ${Buffer.from('alice:secret').toString('base64')}`;
const requests: { path: string; auth?: string }[] = [];
let server: Server;
let base: string;

function answer(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}) {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(body);
}

function handle(req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url!, base);
  requests.push({ path: `${url.pathname}${url.search}`, auth: req.headers.authorization });
  if (url.pathname === '/token') {
    if (req.headers.authorization !== BASIC) return answer(res, 401, '{"details":"bad credentials"}');
    return answer(res, 200, JSON.stringify({ token: `tok-${url.searchParams.get('scope')}` }));
  }
  const m = /^\/v2\/(.+)\/manifests\/(.+)$/.exec(url.pathname);
  if (!m) return answer(res, 404, '{}');
  const [, repo, ref] = m as unknown as [string, string, string];
  if (repo === 't/x') {
    if (req.headers.authorization !== 'Bearer tok-repository:t/x:pull') {
      return answer(res, 401, '{"errors":[{"code":"UNAUTHORIZED"}]}', {
        'www-authenticate': `Bearer realm="${base}/token",service="test-registry",scope="repository:t/x:pull"`,
      });
    }
    if (ref === 'v1')
      return answer(res, 200, INDEX, { 'content-type': 'application/vnd.oci.image.index.v1+json' });
    if (ref === AMD64.digest) return answer(res, 200, manifest(AMD64));
    if (ref === ARM64.digest) return answer(res, 200, manifest(ARM64));
  }
  if (repo === 'b/y') {
    if (req.headers.authorization !== BASIC) {
      return answer(res, 401, '{}', { 'www-authenticate': 'Basic realm="test"' });
    }
    return answer(res, 200, manifest(AMD64));
  }
  answer(res, 404, '{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}');
}

before(async () => {
  server = createServer(handle);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  await new Promise((r) => server.close(r));
});

const loopbackAllowed = new SourceAddressPolicy({
  allow: new AddressList(['127.0.0.1'], 'security.allowedPrivateSources', { hostNames: true }),
});
const resolver = new ImageManifestResolver(loopbackAllowed);
const req = (path: string, o: Partial<ImageRequest> = {}): ImageRequest => ({
  url: `${base}${path}`,
  header: {},
  insecureSkipVerify: false,
  timeoutMs: 10_000,
  platform: 'linux/amd64',
  ...o,
});
const blobs = (repo: string, digests: string[]) => digests.map((x) => `${base}/v2/${repo}/blobs/${x}`);

test('Bearer flow: the token realm gets the Basic credentials and the pull scope; the index leads to linux/amd64', async () => {
  requests.length = 0;
  const r = await resolver.resolve(req('/v2/t/x/manifests/v1', { username: 'alice', password: 'secret' }));
  assert.deepEqual(r.blobUrls, blobs('t/x', [AMD64.config, ...AMD64.layers]));
  assert.equal(
    r.header['Authorization'],
    'Bearer tok-repository:t/x:pull',
    'handed on to the blob downloads',
  );
  assert.deepEqual(
    requests.map((q) => q.path),
    [
      '/v2/t/x/manifests/v1',
      '/token?service=test-registry&scope=repository%3At%2Fx%3Apull',
      '/v2/t/x/manifests/v1',
      `/v2/t/x/manifests/${AMD64.digest}`,
    ],
  );
  assert.equal(requests[1]!.auth, BASIC);
});

test('another platform picks its manifest; a platform the index lacks is named', async () => {
  const auth = { username: 'alice', password: 'secret' };
  const arm = await resolver.resolve(req('/v2/t/x/manifests/v1', { ...auth, platform: 'linux/arm64' }));
  assert.deepEqual(arm.blobUrls, blobs('t/x', [ARM64.config, ...ARM64.layers]));
  await assert.rejects(
    resolver.resolve(req('/v2/t/x/manifests/v1', { ...auth, platform: 'windows/amd64' })),
    /^Error: no matching manifest for platform windows\/amd64$/,
  );
  await assert.rejects(
    resolver.resolve(req('/v2/t/x/manifests/v1', { ...auth, platform: 'amd64' })),
    /invalid platform format "amd64", expected "os\/arch" \(e.g., "linux\/amd64"\)/,
  );
});

test('an Authorization given by the caller is used as it is (no token request)', async () => {
  requests.length = 0;
  const r = await resolver.resolve(
    req('/v2/t/x/manifests/v1', { header: { Authorization: 'Bearer tok-repository:t/x:pull' } }),
  );
  assert.equal(r.blobUrls.length, 3);
  assert.equal(requests.filter((q) => q.path.startsWith('/token')).length, 0);
});

test('wrong or missing credentials: the token realm refusal, and a Basic registry asking for them', async () => {
  await assert.rejects(
    resolver.resolve(req('/v2/t/x/manifests/v1', { username: 'alice', password: 'wrong' })),
    new RegExp(`^Error: token request to ${base}/token: status 401$`),
  );
  await assert.rejects(
    resolver.resolve(req('/v2/b/y/manifests/v1')),
    /registry 127\.0\.0\.1:\d+ asks for credentials: give --username and --password/,
  );
  const ok = await resolver.resolve(req('/v2/b/y/manifests/v1', { username: 'alice', password: 'secret' }));
  assert.deepEqual(ok.blobUrls, blobs('b/y', [AMD64.config, ...AMD64.layers]));
  assert.equal(ok.header['Authorization'], BASIC);
});

test("a missing manifest names the URL, the status and the registry's error code", async () => {
  await assert.rejects(
    resolver.resolve(req('/v2/t/none/manifests/v1')),
    new RegExp(
      `^Error: GET ${base}/v2/t/none/manifests/v1: status 404 \\(MANIFEST_UNKNOWN: manifest unknown\\)$`,
    ),
  );
});

test('a registry the address policy refuses is PERMISSION_DENIED before any request', async () => {
  requests.length = 0;
  const strict = new ImageManifestResolver(SourceAddressPolicy.denyPrivate());
  await assert.rejects(strict.resolve(req('/v2/b/y/manifests/v1')), (e: unknown) => {
    assert.ok(isDfError(e) && e.code === 'PERMISSION_DENIED', String(e));
    assert.match(e.message, /127\.0\.0\.1:\d+ is a loopback address: .*security\.allowedPrivateSources/);
    return true;
  });
  assert.equal(requests.length, 0);
});

test('WWW-Authenticate challenges parse as registries send them', () => {
  assert.deepEqual(
    parseChallenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io"'),
    {
      scheme: 'bearer',
      params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io' },
    },
  );
  assert.deepEqual(parseChallenge('Basic realm=x'), { scheme: 'basic', params: { realm: 'x' } });
  assert.deepEqual(parseChallenge(undefined), { scheme: '', params: {} });
});
