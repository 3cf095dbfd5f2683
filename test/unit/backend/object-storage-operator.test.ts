// object-storage-operator.ts: the --storage-* options as each opendal service's settings, with upstream's
// defaults and required fields.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { operatorSettings, OperatorCache } from '../../../src/backend/object-storage-operator.js';
import { parseObjectStorageUrl } from '../../../src/backend/object-storage-url.js';

const creds = { accessKeyId: 'id', accessKeySecret: 'secret', endpoint: 'https://store.example' };

test('s3: bucket, region (us-east-1 by default), endpoint, keys and session token', () => {
  assert.deepEqual(operatorSettings(parseObjectStorageUrl('s3://b/k'), { ...creds, sessionToken: 't' }), {
    bucket: 'b',
    region: 'us-east-1',
    endpoint: 'https://store.example',
    access_key_id: 'id',
    secret_access_key: 'secret',
    session_token: 't',
  });
  assert.equal(
    operatorSettings(parseObjectStorageUrl('s3://b/k'), { region: 'eu-west-1' }).region,
    'eu-west-1',
  );
});

test('each vendor gets its own names for the same flags', () => {
  const url = (s: string) => parseObjectStorageUrl(`${s}://b/k`);
  assert.deepEqual(operatorSettings(url('abs'), creds), {
    container: 'b',
    endpoint: 'https://store.example',
    account_name: 'id',
    account_key: 'secret',
  });
  assert.deepEqual(operatorSettings(url('oss'), { ...creds, securityToken: 'st' }), {
    bucket: 'b',
    endpoint: 'https://store.example',
    root: '/',
    access_key_id: 'id',
    access_key_secret: 'secret',
    security_token: 'st',
  });
  assert.deepEqual(operatorSettings(url('obs'), creds), {
    bucket: 'b',
    endpoint: 'https://store.example',
    access_key_id: 'id',
    secret_access_key: 'secret',
  });
  assert.deepEqual(operatorSettings(url('cos'), creds), {
    bucket: 'b',
    endpoint: 'https://store.example',
    secret_id: 'id',
    secret_key: 'secret',
  });
  assert.deepEqual(operatorSettings(url('gs'), { credentialPath: '/sa.json', predefinedAcl: 'publicRead' }), {
    bucket: 'b',
    credential_path: '/sa.json',
    predefined_acl: 'publicRead',
    disable_vm_metadata: 'true',
  });
  assert.equal(
    operatorSettings(url('gs'), {}).allow_anonymous,
    'true',
    'no credential file: unsigned requests',
  );
});

test('abs, oss, obs and cos without an endpoint are refused naming the flag (as upstream)', () => {
  for (const s of ['abs', 'oss', 'obs', 'cos']) {
    assert.throws(
      () => operatorSettings(parseObjectStorageUrl(`${s}://b/k`), { accessKeyId: 'id' }),
      new RegExp(`^DfError: ${s} needs an endpoint: set --storage-endpoint$`),
    );
  }
});

test('the cache reuses an operator for the same bucket and credentials, not for others', async () => {
  const cache = new OperatorCache();
  const a = parseObjectStorageUrl('s3://b/k1');
  const first = await cache.get(a, creds);
  assert.equal(await cache.get(parseObjectStorageUrl('s3://b/k2'), creds), first);
  assert.notEqual(await cache.get(a, { ...creds, accessKeySecret: 'other' }), first);
  assert.notEqual(await cache.get(parseObjectStorageUrl('s3://c/k'), creds), first);
});
