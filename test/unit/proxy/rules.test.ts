// proxy.rules: which request goes through P2P (first matching regex on the URL without query and fragment) and
// the URL P2P downloads (useTLS, redirect).

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ProxyRule } from '../../../src/config/dfdaemon.js';
import { DEFAULT_RULES, HEADER_RULE, ProxyRules, downloadUrl } from '../../../src/proxy/rules.js';

const rule = (regex: string, more: Partial<ProxyRule> = {}): ProxyRule => ({
  regex,
  useTLS: false,
  filteredQueryParams: [],
  schedulingPolicy: 'auto',
  ...more,
});

describe('ProxyRules.match', () => {
  test('the first matching rule wins', () => {
    const a = rule('blobs/sha256', { filteredQueryParams: ['a'] });
    const b = rule('.*', { filteredQueryParams: ['b'] });
    const rules = new ProxyRules([a, b]);
    assert.equal(rules.match(new URL('http://r.example/v2/x/blobs/sha256:00')), a);
    assert.equal(rules.match(new URL('http://r.example/v2/x/manifests/latest')), b);
    assert.equal(new ProxyRules([b, a]).match(new URL('http://r.example/v2/x/blobs/sha256:00')), b);
  });

  test('query and fragment are not part of what is matched', () => {
    const rules = new ProxyRules([rule('\\.tar$'), rule('token=')]);
    assert.equal(rules.match(new URL('http://h/file.tar?sig=abc#frag'))?.regex, '\\.tar$');
    assert.equal(rules.match(new URL('http://h/file.bin?token=abc')), undefined);
    assert.equal(rules.match(new URL('http://h/file.bin#token=abc')), undefined);
  });

  test('the regex sees the whole URL, scheme and authority included, unanchored', () => {
    const rules = new ProxyRules([rule('^https://only\\.example/')]);
    assert.ok(rules.match(new URL('https://only.example/a')));
    assert.equal(rules.match(new URL('http://only.example/a')), undefined);
    assert.ok(new ProxyRules([rule('example')]).match(new URL('http://www.example.com/')));
  });

  test('Rust-syntax inline flags such as (?i) work', () => {
    const rules = new ProxyRules([rule('(?i)BLOBS/SHA256')]);
    assert.ok(rules.match(new URL('http://r/v2/x/blobs/sha256:1')));
    assert.equal(
      new ProxyRules([rule('BLOBS/SHA256')]).match(new URL('http://r/v2/x/blobs/sha256:1')),
      undefined,
    );
  });

  test('Rust-only \\A, \\z and (?P<name>) mean what they mean in Rust', () => {
    const anchored = new ProxyRules([rule('\\Ahttps://r\\.example/v2/.*/blobs/sha256:[0-9a-f]+\\z')]);
    assert.ok(anchored.match(new URL('https://r.example/v2/lib/x/blobs/sha256:00ff')));
    assert.equal(anchored.match(new URL('https://r.example/v2/lib/x/blobs/sha256:00ff/more')), undefined);
    assert.equal(
      anchored.match(new URL('https://evil.example/?https://r.example/v2/a/blobs/sha256:00')),
      undefined,
    );
    assert.ok(
      new ProxyRules([rule('blobs/(?P<algo>sha256):')]).match(new URL('http://r/v2/x/blobs/sha256:1')),
    );
  });

  test('rules undefined: registry blobs go through P2P; rules []: nothing does', () => {
    const blob = new URL('https://registry-1.docker.io/v2/library/nginx/blobs/sha256:abcd');
    const manifest = new URL('https://registry-1.docker.io/v2/library/nginx/manifests/latest');
    const dflt = new ProxyRules(undefined);
    assert.equal(dflt.match(blob), DEFAULT_RULES[0]);
    assert.equal(dflt.match(manifest), undefined);
    const none = new ProxyRules([]);
    assert.equal(none.match(blob), undefined);
    assert.equal(none.match(manifest), undefined);
  });

  test('matching is repeatable (no regex state carried between calls)', () => {
    const rules = new ProxyRules([rule('a')]);
    for (let i = 0; i < 5; i++) assert.ok(rules.match(new URL('http://h/a')));
  });
});

describe('downloadUrl', () => {
  test('without useTLS or redirect the URL is kept, query included', () => {
    assert.equal(downloadUrl(new URL('http://h:8080/a?b=c'), HEADER_RULE), 'http://h:8080/a?b=c');
  });

  test('useTLS turns the scheme to https, keeping a non-default port', () => {
    assert.equal(downloadUrl(new URL('http://h/a?x=1'), rule('.*', { useTLS: true })), 'https://h/a?x=1');
    assert.equal(downloadUrl(new URL('http://h:8443/a'), rule('.*', { useTLS: true })), 'https://h:8443/a');
  });

  test('redirect with a port replaces host and port', () => {
    assert.equal(
      downloadUrl(new URL('http://h:8080/a'), rule('.*', { redirect: 'm.example:5000' })),
      'http://m.example:5000/a',
    );
    assert.equal(
      downloadUrl(new URL('https://h/a'), rule('.*', { redirect: '10.0.0.1:8443' })),
      'https://10.0.0.1:8443/a',
    );
    assert.equal(
      downloadUrl(new URL('http://h/a'), rule('.*', { redirect: '[::1]:9000' })),
      'http://[::1]:9000/a',
    );
    assert.equal(
      downloadUrl(new URL('http://h/a'), rule('.*', { redirect: 'm.example:443' })),
      'http://m.example:443/a',
    );
  });

  test('redirect without a port drops the original port', () => {
    assert.equal(
      downloadUrl(new URL('http://h:8080/a'), rule('.*', { redirect: 'm.example' })),
      'http://m.example/a',
    );
  });

  test("redirect and useTLS together: the redirect port is kept even when it is the old scheme's default", () => {
    const tls = (redirect: string) => rule('.*', { redirect, useTLS: true });
    assert.equal(downloadUrl(new URL('http://h:8080/a'), tls('m.example')), 'https://m.example/a');
    assert.equal(downloadUrl(new URL('http://h/a'), tls('m.example:8443')), 'https://m.example:8443/a');
    assert.equal(downloadUrl(new URL('http://h/a'), tls('m.example:443')), 'https://m.example/a');
    // Upstream sets the authority "m.example:80" on an https URL: port 80, not 443.
    assert.equal(downloadUrl(new URL('http://h/a'), tls('m.example:80')), 'https://m.example:80/a');
  });
});
