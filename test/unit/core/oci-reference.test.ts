// oci:// references as dfctl task preheat takes them, and manifest URLs as the scheduler parses them back
// (Docker's normalisation; Go pkg/oci/reference.go).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  blobUrl,
  manifestUrl,
  parseImageReference,
  parseManifestUrl,
} from '../../../src/core/oci-reference.js';

test('Docker Hub names: docker.io is served at registry-1.docker.io, one component gets library/, tag latest', () => {
  assert.equal(
    manifestUrl(parseImageReference('oci://nginx')),
    'https://registry-1.docker.io/v2/library/nginx/manifests/latest',
  );
  assert.equal(
    manifestUrl(parseImageReference('oci://docker.io/bitnami/redis:7.2')),
    'https://registry-1.docker.io/v2/bitnami/redis/manifests/7.2',
  );
});

test('a registry host (a dot, a port or localhost) is kept; --plain-http picks http://', () => {
  assert.deepEqual(parseImageReference('oci://127.0.0.1:5000/t/x:v1', true), {
    scheme: 'http',
    registry: '127.0.0.1:5000',
    repository: 't/x',
    reference: 'v1',
  });
  assert.equal(
    manifestUrl(parseImageReference('oci://ghcr.io/org/app/sub:1.0')),
    'https://ghcr.io/v2/org/app/sub/manifests/1.0',
  );
  assert.equal(parseImageReference('localhost/x').registry, 'localhost');
});

test('a digest wins over a tag', () => {
  const digest = `sha256:${'a'.repeat(64)}`;
  assert.equal(parseImageReference(`oci://r.io/x:v1@${digest}`).reference, digest);
  assert.equal(parseImageReference(`oci://r.io/x@${digest}`).reference, digest);
});

test('bad references are INVALID_ARGUMENT naming the part that is wrong', () => {
  assert.throws(() => parseImageReference('oci://'), /invalid image reference "oci:\/\/": it is empty/);
  assert.throws(() => parseImageReference('oci://Upper/x'), /repository component "Upper" must be lowercase/);
  assert.throws(() => parseImageReference('oci://r.io/x:bad tag'), /"bad tag" is not a valid tag/);
  assert.throws(() => parseImageReference('oci://r.io/x@sha256:12'), /"sha256:12" is not a digest/);
});

test('manifest URLs parse back into their parts; blob URLs are built from them', () => {
  const ref = parseManifestUrl('http://127.0.0.1:5000/v2/t/x/y/manifests/v1');
  assert.deepEqual(ref, { scheme: 'http', registry: '127.0.0.1:5000', repository: 't/x/y', reference: 'v1' });
  assert.equal(blobUrl(ref, 'sha256:ab'), 'http://127.0.0.1:5000/v2/t/x/y/blobs/sha256:ab');
  assert.throws(
    () => parseManifestUrl('https://r.io/t/x:v1'),
    /invalid manifest url "https:\/\/r.io\/t\/x:v1": expected http\(s\):\/\/REGISTRY\/v2\/REPOSITORY\/manifests\/TAG_OR_DIGEST/,
  );
});
