// core/persistent-task.ts: a persistent task (dfstore) is named by its object, and only an object storage URL with
// a region and an endpoint names one (upstream's dfdaemon refuses the others); each refusal is one line naming the
// flag to set.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { persistentTaskIdOf } from '../../../src/core/persistent-task.js';
import { persistentTaskId } from '../../../src/core/task-id.js';

const storage = { region: 'us-east-1', endpoint: 'http://127.0.0.1:9000' };

test('the id is the persistent task id of url, region and endpoint', () => {
  assert.equal(
    persistentTaskIdOf('s3://bucket/a/b.bin', storage),
    persistentTaskId({ url: 's3://bucket/a/b.bin', ...storage }),
  );
  assert.notEqual(
    persistentTaskIdOf('s3://bucket/a/b.bin', storage),
    persistentTaskIdOf('s3://bucket/a/b.bin', { ...storage, region: 'eu-west-1' }),
  );
});

test('every object storage scheme names a persistent task', () => {
  for (const scheme of ['s3', 'gs', 'abs', 'oss', 'obs', 'cos']) {
    assert.match(persistentTaskIdOf(`${scheme}://b/k`, storage), /^[0-9a-f]{64}$/);
  }
});

test('refusals: one line naming the cause', () => {
  const cases: Array<[string, Parameters<typeof persistentTaskIdOf>[1], RegExp]> = [
    ['s3://b/k', undefined, /^missing object storage$/],
    ['s3://b/k', { endpoint: storage.endpoint }, /^missing object storage region: set --storage-region$/],
    ['s3://b/k', { region: 'us-east-1' }, /^missing object storage endpoint: set --storage-endpoint$/],
    ['https://example.com/k', storage, /^url https:\/\/example\.com\/k is not an object storage URL/],
    ['not a url', storage, /^url "not a url" is not a URL$/],
  ];
  for (const [url, o, message] of cases) {
    assert.throws(
      () => persistentTaskIdOf(url, o),
      (e: Error & { code?: string }) => {
        assert.equal(e.code, 'INVALID_ARGUMENT');
        assert.match(e.message, message);
        return true;
      },
      url,
    );
  }
});
