import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DfError } from '../../../src/core/errors.js';
import { canListEntries, unsupportedDownloadDirectory } from '../../../src/backend/backend.js';
import type { Backend } from '../../../src/backend/backend.js';
import { BackendFactory } from '../../../src/backend/factory.js';
import { HttpBackend } from '../../../src/backend/http.js';
import { ObjectStorageBackend } from '../../../src/backend/object-storage.js';
import { HdfsBackend } from '../../../src/backend/hdfs.js';
import { HubBackend } from '../../../src/backend/hub.js';

const OPTIONS = {
  maxRetries: 1,
  enableCacheTemporaryRedirect: true,
  cacheTemporaryRedirectTTLMs: 600_000,
  requestHeader: {},
};

describe('BackendFactory', () => {
  const factory = new BackendFactory(OPTIONS);
  after(() => factory.close());

  it('serves http, https, the object storage, hdfs and the model hub schemes with one backend per scheme, built once', () => {
    const http = factory.get('http://example.com/a');
    const https = factory.get('HTTPS://example.com/b');
    assert.ok(http instanceof HttpBackend);
    assert.equal(http.scheme, 'http');
    assert.equal(https.scheme, 'https');
    assert.equal(factory.get('http://other.example/c'), http);
    assert.deepEqual(factory.schemes(), [
      'abs',
      'cos',
      'gs',
      'hdfs',
      'hf',
      'http',
      'https',
      'modelscope',
      'obs',
      'opencsg',
      'oss',
      's3',
    ]);
    const s3 = factory.get('s3://bucket/key');
    assert.ok(s3 instanceof ObjectStorageBackend);
    assert.equal(factory.get('s3://other/key'), s3);
    assert.ok(canListEntries(s3));
    const hdfs = factory.get('hdfs://namenode:9870/data/file');
    assert.ok(hdfs instanceof HdfsBackend);
    assert.ok(canListEntries(hdfs));
    for (const url of ['hf://o/r/f', 'modelscope://o/r/f', 'opencsg://o/r/f']) {
      const hub = factory.get(url);
      assert.ok(hub instanceof HubBackend);
      assert.ok(canListEntries(hub));
    }
  });

  it('refuses an unknown scheme with a clear message', () => {
    assert.throws(
      () => factory.get('ftp://host/key?X-Amz-Signature=secret'),
      (e: unknown) =>
        e instanceof DfError &&
        e.code === 'BACKEND_UNSUPPORTED' &&
        e.message ===
          'unsupported scheme "ftp" in ftp://host/key; supported: abs, cos, gs, hdfs, hf, http, https, modelscope, obs, opencsg, oss, s3',
    );
  });

  it('refuses a string that is not a URL', () => {
    assert.throws(
      () => factory.get('not a url'),
      (e: unknown) => e instanceof DfError && e.code === 'INVALID_ARGUMENT',
    );
  });

  it('accepts registered schemes without changing callers', async () => {
    const closed: string[] = [];
    const fake: Backend = {
      scheme: 'fake',
      stat: async () => ({ statusCode: 200, responseHeader: {}, contentLength: 1 }),
      get: async () => {
        throw new Error('unused');
      },
      listEntries: async () => [{ url: 'fake://x/a', contentLength: 1, isDir: false }],
      close: async () => {
        closed.push('fake');
      },
    };
    const local = new BackendFactory(OPTIONS);
    local.register('fake', fake);
    local.register('lazy', (scheme) => ({ ...fake, scheme }));
    assert.equal(local.get('fake://bucket/key'), fake);
    assert.equal(local.get('lazy://bucket/key').scheme, 'lazy');
    assert.ok(canListEntries(local.get('fake://bucket/key')));
    assert.ok(!canListEntries(local.get('http://example.com/')));
    await local.close();
    assert.deepEqual(closed, ['fake', 'fake']);
    assert.throws(
      () => local.get('fake://x'),
      (e: unknown) => e instanceof DfError && e.code === 'UNAVAILABLE',
    );
  });

  it('knows which schemes cannot download a directory', () => {
    assert.equal(unsupportedDownloadDirectory('http'), true);
    assert.equal(unsupportedDownloadDirectory('https'), true);
    assert.equal(unsupportedDownloadDirectory('s3'), false);
  });
});
