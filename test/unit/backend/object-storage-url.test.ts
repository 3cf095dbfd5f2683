// object-storage-url.ts: bucket and key from `<scheme>://<bucket>/<key>` as upstream's ParsedURL, and listed keys
// back into URLs.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { entryUrl, parseObjectStorageUrl } from '../../../src/backend/object-storage-url.js';

test('bucket is the host, key the decoded path; a trailing / is a directory', () => {
  assert.deepEqual(parseObjectStorageUrl('s3://my-bucket/models/a%20b.bin'), {
    scheme: 's3',
    bucket: 'my-bucket',
    key: 'models/a b.bin',
    isDir: false,
  });
  assert.equal(parseObjectStorageUrl('gs://b/data/').isDir, true);
  assert.deepEqual(parseObjectStorageUrl('abs://container'), {
    scheme: 'abs',
    bucket: 'container',
    key: '',
    isDir: true,
  });
});

test('every upstream object storage scheme parses; others are refused naming the scheme', () => {
  for (const s of ['s3', 'gs', 'abs', 'oss', 'obs', 'cos'])
    assert.equal(parseObjectStorageUrl(`${s}://b/k`).scheme, s);
  assert.throws(() => parseObjectStorageUrl('https://b/k'), /"https" is not an object storage scheme/);
});

test('a URL without a bucket or with a broken escape is one clear error', () => {
  assert.throws(() => parseObjectStorageUrl('s3:///key'), /names no bucket: expected s3:\/\/BUCKET\/KEY/);
  assert.throws(() => parseObjectStorageUrl('s3://b/%E0%A4%A'), /invalid percent-encoding/);
  assert.throws(() => parseObjectStorageUrl('not a url'), /invalid object storage URL/);
});

test('a listed key becomes a URL that parses back to the same key', () => {
  const parsed = parseObjectStorageUrl('s3://b/dir/');
  for (const key of ['dir/a b.bin', 'dir/sub/ü#?.txt', 'dir/x%y']) {
    const url = entryUrl(parsed, key);
    assert.equal(parseObjectStorageUrl(url).key, key, url);
  }
});
