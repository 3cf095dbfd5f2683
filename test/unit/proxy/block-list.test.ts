// The dynconfig download block list: a URL regex (Rust syntax, unanchored), an application, a tag or a priority.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { blockedReason, compileBlockList } from '../../../src/daemon/block-list.js';
import { Priority, type Download } from '../../../src/gen/common.js';
import { testDownload } from '../../helpers/download.js';

function download(more: Partial<Download> = {}): Download {
  return testDownload('https://registry.example/v2/app/blobs/sha256:00', more);
}

describe('block list', () => {
  test('an empty list blocks nothing', () => {
    const b = compileBlockList({ urls: [] });
    assert.equal(blockedReason(b, download({ tag: 't', application: 'a' })), undefined);
  });

  test('a URL regex matching anywhere in the URL blocks; (?i) is honoured', () => {
    const b = compileBlockList({ urls: ['/blocked/', '(?i)EVIL\\.EXAMPLE'] });
    assert.match(blockedReason(b, download({ url: 'http://h/a/blocked/x' })) ?? '', /^url matches .*blocked/);
    assert.match(blockedReason(b, download({ url: 'https://evil.example/x' })) ?? '', /url matches/);
    assert.equal(blockedReason(b, download({ url: 'http://h/a/blockedx' })), undefined);
    // Matching is repeatable: no regex state is carried from one download to the next.
    for (let i = 0; i < 3; i++) assert.ok(blockedReason(b, download({ url: 'http://h/blocked/' })));
  });

  test('an anchored URL regex only matches where anchored', () => {
    const b = compileBlockList({ urls: ['^http://'] });
    assert.ok(blockedReason(b, download({ url: 'http://h/x' })));
    assert.equal(blockedReason(b, download({ url: 'https://h/?u=http://x' })), undefined);
  });

  test("a URL regex anchored with Rust's \\A blocks what it names (not a literal A)", () => {
    const b = compileBlockList({ urls: ['\\Ahttps://evil\\.example/'] });
    assert.ok(blockedReason(b, download({ url: 'https://evil.example/x' })));
    assert.equal(
      blockedReason(b, download({ url: 'https://ok.example/?u=https://evil.example/' })),
      undefined,
    );
  });

  test('application, tag and priority must be equal, not similar', () => {
    const b = compileBlockList({
      urls: [],
      applications: ['app'],
      tags: ['bad'],
      priorities: [Priority.LEVEL1],
    });
    assert.equal(blockedReason(b, download({ application: 'app' })), 'application app');
    assert.equal(blockedReason(b, download({ application: 'app2' })), undefined);
    assert.equal(blockedReason(b, download({ application: 'App' })), undefined);
    assert.equal(blockedReason(b, download({ tag: 'bad' })), 'tag bad');
    assert.equal(blockedReason(b, download({ tag: 'bad ' })), undefined);
    assert.equal(blockedReason(b, download({ priority: Priority.LEVEL1 })), `priority ${Priority.LEVEL1}`);
    assert.equal(blockedReason(b, download({ priority: Priority.LEVEL2 })), undefined);
    assert.equal(blockedReason(b, download()), undefined, 'no application or tag set');
  });

  test('an empty-string application or tag in the list only blocks an empty value, not a missing one', () => {
    const b = compileBlockList({ urls: [], applications: [''], tags: [''] });
    assert.equal(blockedReason(b, download()), undefined);
    assert.equal(blockedReason(b, download({ tag: '' })), 'tag ');
  });
});
