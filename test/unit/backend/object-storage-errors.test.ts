// object-storage-errors.ts: opendal's multi-line errors as one line naming the object and the scheme, with
// nothing of the request (URI, headers) in it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { objectStorageError, parseOpendalError } from '../../../src/backend/object-storage-errors.js';
import { parseObjectStorageUrl } from '../../../src/backend/object-storage-url.js';

const notFound = new Error(
  'NotFound (permanent) at stat, context: { uri: http://127.0.0.1:9000/b/k, response: Parts { status: 404, headers: {"x-amz-request-id": "1"} }, service: s3, path: k }',
);

test('the kind, whether it is temporary, and the HTTP status are read from the message', () => {
  assert.deepEqual(parseOpendalError(notFound), { kind: 'NotFound', temporary: false, status: 404 });
  assert.deepEqual(parseOpendalError(new Error('Unexpected (temporary) at read => send http request')), {
    kind: 'Unexpected',
    temporary: true,
    status: undefined,
  });
});

test('NotFound is a one-line NOT_FOUND naming the object; the request URI stays out', () => {
  const e = objectStorageError(notFound, parseObjectStorageUrl('s3://b/k'), 'stat');
  assert.equal(e.message, 'stat s3://b/k: NOT_FOUND: no such object in the s3 store (HTTP 404)');
  assert.equal(e.code, 'BACKEND');
  assert.equal(e.backend?.statusCode, 404);
});

test('PermissionDenied names the scheme and the flags to check; gs and abs name their own', () => {
  const denied = new Error(
    'PermissionDenied (permanent) at stat, context: { response: Parts { status: 403 } }',
  );
  const s3 = objectStorageError(denied, parseObjectStorageUrl('s3://b/k'), 'stat');
  assert.equal(s3.code, 'PERMISSION_DENIED');
  assert.match(s3.message, /permission denied by the s3 store \(HTTP 403\): check --storage-access-key-id/);
  assert.match(
    objectStorageError(denied, parseObjectStorageUrl('gs://b/k'), 'stat').message,
    /--storage-credential-path/,
  );
  assert.match(
    objectStorageError(denied, parseObjectStorageUrl('abs://b/k'), 'stat').message,
    /account name/,
  );
});

test('ConditionNotMatch is SOURCE_CHANGED; a temporary failure is retryable', () => {
  const changed = objectStorageError(
    new Error('ConditionNotMatch (permanent) at read'),
    parseObjectStorageUrl('oss://b/k'),
    'read',
  );
  assert.equal(changed.code, 'SOURCE_CHANGED');
  assert.equal(
    objectStorageError(new Error('Unexpected (temporary) at read'), parseObjectStorageUrl('s3://b/k'), 'read')
      .retryable,
    true,
  );
});

test('credentials that cannot be loaded are a permission error naming the flag, not retried', () => {
  const e = objectStorageError(
    new Error('Unexpected (temporary) at stat, context: { called: reqsign::LoadCredential, service: gcs }'),
    parseObjectStorageUrl('gs://b/k'),
    'stat',
  );
  assert.equal(e.code, 'PERMISSION_DENIED');
  assert.equal(e.retryable, false);
  assert.equal(
    e.message,
    'stat gs://b/k: cannot load credentials for the gs store: check --storage-credential-path',
  );
});
