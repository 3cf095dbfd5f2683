// oss://, obs:// and cos:// against a documented-protocol test server (helpers/vendor-store.ts): no server of these
// vendors runs here. Stat and listing go through opendal to the test server, which checks the virtual-host name
// and that the Authorization signature is the vendor's documented one for the known secret; a piece's presigned
// URL is checked against the documented query-string signature. This file's process sends opendal's requests
// through the test server as HTTP_PROXY (node --test runs each file in its own process).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { ObjectStorageBackend } from '../../../src/backend/object-storage.js';
import { OperatorCache } from '../../../src/backend/object-storage-operator.js';
import { parseObjectStorageUrl } from '../../../src/backend/object-storage-url.js';
import { cosSignature, VendorProxy, VendorStore, type Vendor } from '../../helpers/vendor-store.js';

const ID = 'AKIDEXAMPLE';
const SECRET = 'vendor-secret-example';
const ENDPOINT_HOST: Record<Vendor, string> = { oss: 'oss.test', obs: 'bkt.obs.test', cos: 'cos.test' };
const proxy = new VendorProxy();
before(async () => {
  await proxy.start();
  process.env.HTTP_PROXY = `http://127.0.0.1:${proxy.port}`;
});
after(async () => {
  delete process.env.HTTP_PROXY;
  await proxy.stop();
});

for (const vendor of ['oss', 'obs', 'cos'] as const) {
  describe(`${vendor}:// against a ${vendor.toUpperCase()} documented-protocol server`, () => {
    const store = new VendorStore(vendor, 'bkt', ENDPOINT_HOST[vendor], ID, SECRET);
    const backend = new ObjectStorageBackend(vendor, {
      maxRetries: 0,
      enableCacheTemporaryRedirect: false,
      cacheTemporaryRedirectTTLMs: 0,
      requestHeader: {},
    });
    const options = (secret = SECRET) => ({
      endpoint: `http://${ENDPOINT_HOST[vendor]}`,
      accessKeyId: ID,
      accessKeySecret: secret,
    });
    const base = { taskId: 't', requestHeader: {}, timeoutMs: 20_000 };

    before(() => {
      proxy.add(store);
      store.put('d/x.bin', Buffer.alloc(1000, 7));
      store.put('d/sub/y.bin', Buffer.alloc(10, 1));
    });
    after(() => backend.close());

    test('stat is a signed HEAD of /key on the bucket host, with the documented signature', async () => {
      const stat = await backend.stat({ ...base, url: `${vendor}://bkt/d/x.bin`, objectStorage: options() });
      assert.equal(stat.contentLength, 1000);
      assert.equal(stat.responseHeader.etag, store.objects.get('d/x.bin')!.etag);
      const head = store.requests.at(-1)!;
      assert.equal(head.method, 'HEAD');
      assert.equal(head.host, store.virtualHost);
      assert.equal(head.path, '/d/x.bin');
      assert.equal(head.signatureProblem, undefined);
    });

    test('a missing object is NOT_FOUND; a wrong secret is a permission error naming the scheme', async () => {
      await assert.rejects(
        backend.stat({ ...base, url: `${vendor}://bkt/none.bin`, objectStorage: options() }),
        new RegExp(
          `^DfError: stat ${vendor}://bkt/none\\.bin: NOT_FOUND: no such object in the ${vendor} store`,
        ),
      );
      await assert.rejects(
        backend.stat({ ...base, url: `${vendor}://bkt/d/x.bin`, objectStorage: options('wrong-secret') }),
        (e: Error & { code?: string }) =>
          e.code === 'PERMISSION_DENIED' &&
          e.message.includes(`permission denied by the ${vendor} store (HTTP 403)`) &&
          !e.message.includes('wrong-secret'),
      );
      assert.match(store.requests.at(-1)!.signatureProblem ?? '', /does not match/);
    });

    test('a directory is listed recursively', async () => {
      const entries = await backend.listEntries({
        ...base,
        url: `${vendor}://bkt/d/`,
        objectStorage: options(),
      });
      assert.deepEqual(
        entries
          .filter((e) => !e.isDir)
          .map((e) => [e.url, e.contentLength])
          .sort(),
        [
          [`${vendor}://bkt/d/sub/y.bin`, 10],
          [`${vendor}://bkt/d/x.bin`, 1000],
        ],
      );
      assert.equal(store.requests.at(-1)!.signatureProblem, undefined);
    });

    test('a piece URL is presigned with the documented query-string signature', async () => {
      const op = await new OperatorCache().get(parseObjectStorageUrl(`${vendor}://bkt/d/x.bin`), options());
      const url = new URL((await op.presignRead('d/x.bin', 600)).url);
      assert.equal(url.host, store.virtualHost);
      assert.equal(url.pathname, '/d/x.bin');
      const q = url.searchParams;
      if (vendor === 'cos') {
        assert.equal(q.get('q-ak'), ID);
        assert.equal(
          q.get('q-signature'),
          cosSignature(SECRET, 'GET', '/d/x.bin', new URLSearchParams(), {}, q),
        );
      } else {
        const expires = q.get('Expires')!;
        assert.equal(q.get(vendor === 'oss' ? 'OSSAccessKeyId' : 'AccessKeyId'), ID);
        const owner = vendor === 'obs' ? store.virtualHost : 'bkt';
        const want = createHmac('sha1', SECRET)
          .update(`GET\n\n\n${expires}\n/${owner}/d/x.bin`)
          .digest('base64');
        assert.equal(q.get('Signature'), want);
      }
    });
  });
}
