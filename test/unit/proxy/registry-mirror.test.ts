// Registry mirror mode: which registry a path-only request is for (X-Dragonfly-Registry, then containerd's `ns`,
// then proxy.registryMirror.addr) and the absolute URL it becomes.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mirrorUpstream, mirrorUrl } from '../../../src/proxy/registry-mirror.js';

const MIRROR = 'http://127.0.0.1:5000';

describe('mirrorUpstream', () => {
  test('X-Dragonfly-Registry beats ns, which beats registryMirror.addr', () => {
    const path = '/v2/library/nginx/manifests/latest?ns=ghcr.io';
    assert.equal(
      mirrorUpstream(path, { 'x-dragonfly-registry': 'https://quay.io' }, MIRROR),
      'https://quay.io',
    );
    assert.equal(mirrorUpstream(path, {}, MIRROR), 'https://ghcr.io');
    assert.equal(mirrorUpstream('/v2/library/nginx/manifests/latest', {}, MIRROR), MIRROR);
    assert.equal(mirrorUpstream('/v2/?foo=bar&ns=ghcr.io&baz=qux', {}, MIRROR), 'https://ghcr.io');
  });

  test('a header or ns without a scheme gets https://; one with a scheme is kept', () => {
    assert.equal(mirrorUpstream('/v2/', { 'x-dragonfly-registry': 'quay.io' }, MIRROR), 'https://quay.io');
    assert.equal(mirrorUpstream('/v2/', { 'x-dragonfly-registry': ' http://r:1 ' }, MIRROR), 'http://r:1');
    assert.equal(
      mirrorUpstream(`/v2/?ns=${encodeURIComponent('http://r.example:8080')}`, {}, MIRROR),
      'http://r.example:8080',
    );
  });

  test('an empty header or ns falls through to the next source', () => {
    assert.equal(
      mirrorUpstream('/v2/?ns=ghcr.io', { 'x-dragonfly-registry': '  ' }, MIRROR),
      'https://ghcr.io',
    );
    assert.equal(mirrorUpstream('/v2/?ns=', {}, MIRROR), MIRROR);
  });

  test("ns naming the configured mirror's host keeps the mirror's scheme (and path)", () => {
    assert.equal(mirrorUpstream('/v2/?ns=127.0.0.1:5000', {}, MIRROR), MIRROR);
    assert.equal(mirrorUpstream('/v2/?ns=127.0.0.1%3A5000', {}, `${MIRROR}/`), `${MIRROR}/`);
    assert.equal(
      mirrorUpstream('/v2/?ns=Mirror.Example', {}, 'http://mirror.example/base'),
      'http://mirror.example/base',
    );
    // Another port of the same host is another registry.
    assert.equal(mirrorUpstream('/v2/?ns=127.0.0.1:5001', {}, MIRROR), 'https://127.0.0.1:5001');
  });
});

describe('mirrorUrl', () => {
  test('the base and the path join with one slash, whatever trailing slashes the base has', () => {
    assert.equal(mirrorUrl('https://r.example', '/v2/x').href, 'https://r.example/v2/x');
    assert.equal(mirrorUrl('https://r.example/', '/v2/x').href, 'https://r.example/v2/x');
    assert.equal(mirrorUrl('https://r.example///', '/v2/x?ns=a').href, 'https://r.example/v2/x?ns=a');
    assert.equal(mirrorUrl('https://r.example/base/', '/v2/x').href, 'https://r.example/base/v2/x');
    assert.equal(mirrorUrl('https://r.example', 'v2/x').href, 'https://r.example/v2/x');
  });

  test('a path that looks like an authority stays a path of the registry', () => {
    const u = mirrorUrl('https://r.example', '//evil.example/v2/x');
    assert.equal(u.host, 'r.example');
    assert.equal(u.pathname, '//evil.example/v2/x');
    assert.equal(mirrorUrl('https://r.example', '/@evil.example/x').host, 'r.example');
  });

  test('a hostile base of many slashes is handled in linear time', () => {
    // X-Dragonfly-Registry is a client's header (up to Node's 16 KiB of headers).
    const base = `https://${'/'.repeat(16_000)}x`;
    const t0 = performance.now();
    assert.equal(mirrorUrl(base, '/v2/').pathname, '/v2/');
    const t1 = performance.now();
    mirrorUrl(`https://r.example${'/'.repeat(16_000)}`, '/v2/');
    assert.ok(performance.now() - t0 < 50, `took ${performance.now() - t0} ms (${t1 - t0} ms for the first)`);
  });
});
