// taskIdentity: the id of a Download exactly as upstream computes it, with how it was derived and the digest its
// identity names; a content label that ends like a URL's id input is refused (issue 16 item 1).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { normalizeUrl, selectTaskId, taskIdentity, typedIdEnding } from '../../../src/core/task-id.js';
import { DfError } from '../../../src/core/errors.js';

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const BLOB = 'a'.repeat(64);
const download = (o: Partial<Parameters<typeof taskIdentity>[0]> & { url: string }) => ({
  filteredQueryParams: [],
  ...o,
});

test('a URL download: the id is upstream’s, derived from the URL, no known digest', () => {
  const d = download({ url: 'https://example.com/file.bin', tag: 't' });
  const id = taskIdentity(d);
  assert.equal(id.id, selectTaskId(d));
  assert.equal(id.id, sha256('https://example.com/file.bin' + 't' + 'STANDARD'));
  assert.equal(id.derivation, 'url');
  assert.equal(id.knownDigest, undefined);
});

test('an OCI blob URL names the digest its content must have, with or without a digest-based id', () => {
  const url = `https://registry.example/v2/library/alpine/blobs/sha256:${BLOB}?ns=docker.io`;
  const byUrl = taskIdentity(download({ url }));
  assert.equal(byUrl.derivation, 'url');
  assert.equal(byUrl.knownDigest, `sha256:${BLOB}`);
  assert.equal(byUrl.id, selectTaskId(download({ url })));
  const byDigest = taskIdentity(download({ url, enableTaskIdBasedBlobDigest: true }));
  assert.equal(byDigest.derivation, 'blob-digest');
  assert.equal(byDigest.id, BLOB);
  assert.equal(byDigest.knownDigest, `sha256:${BLOB}`);
  // crc32 is no identity: a digest-based id from it is refused; as a URL it names no digest.
  const crc = 'https://registry.example/v2/x/blobs/crc32:12345';
  assert.throws(() => taskIdentity(download({ url: crc, enableTaskIdBasedBlobDigest: true })), {
    code: 'INVALID_ARGUMENT',
  });
  assert.equal(taskIdentity(download({ url: crc })).knownDigest, undefined);
});

test('a content label: sha256(label), derived from content', () => {
  const d = download({ url: 'https://cdn-1.example/model?sig=1', contentForCalculatingTaskId: 'model-v1' });
  const id = taskIdentity(d);
  assert.equal(id.id, sha256('model-v1'));
  assert.equal(id.derivation, 'content');
});

test('a content label that is a URL’s id input (the poisoning attack) is refused, naming the reason', () => {
  const victim = 'https://victim.example/app.tar.gz';
  const victimId = taskIdentity(download({ url: victim })).id;
  const label = normalizeUrl(victim) + 'STANDARD';
  // The attack works on the id alone: the label hashes to the victim's id.
  assert.equal(
    selectTaskId(download({ url: 'http://evil.example/x', contentForCalculatingTaskId: label })),
    victimId,
  );
  assert.throws(
    () => taskIdentity(download({ url: 'http://evil.example/x', contentForCalculatingTaskId: label })),
    (e: unknown) =>
      e instanceof DfError && e.code === 'INVALID_ARGUMENT' && /must not end with "STANDARD"/.test(e.message),
  );
  for (const ending of ['PERSISTENT', 'PERSISTENT_CACHE', 'CACHE']) {
    assert.throws(() => taskIdentity(download({ url: victim, contentForCalculatingTaskId: `x${ending}` })), {
      code: 'INVALID_ARGUMENT',
    });
  }
  // Only the ending counts: a label that merely contains the word is fine.
  assert.equal(
    taskIdentity(download({ url: victim, contentForCalculatingTaskId: 'STANDARD-v1' })).derivation,
    'content',
  );
});

test('typedIdEnding sees strings and bytes', () => {
  assert.equal(typedIdEnding('abcSTANDARD'), 'STANDARD');
  assert.equal(typedIdEnding(Buffer.from('xPERSISTENT_CACHE')), 'CACHE');
  assert.equal(typedIdEnding(Buffer.from([0xff, 0x00, 0x53])), undefined);
  assert.equal(typedIdEnding(''), undefined);
});
