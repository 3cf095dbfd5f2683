// proxy.server.basicAuth: Proxy-Authorization first, then a Basic Authorization; a registry's bearer token in
// Authorization is not taken for proxy credentials.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { checkBasicAuth } from '../../../src/proxy/basic-auth.js';

const expected = { username: 'alice', password: 's3:cret' };
const basic = (userPass: string) => `Basic ${Buffer.from(userPass).toString('base64')}`;

describe('checkBasicAuth', () => {
  test('right credentials in Proxy-Authorization or Authorization pass', () => {
    assert.equal(checkBasicAuth({ 'proxy-authorization': basic('alice:s3:cret') }, expected), 'ok');
    assert.equal(checkBasicAuth({ authorization: basic('alice:s3:cret') }, expected), 'ok');
    assert.equal(
      checkBasicAuth({ authorization: `bAsIc   ${basic('alice:s3:cret').slice(6)}  ` }, expected),
      'ok',
    );
  });

  test('no credentials, a wrong user or password, or an empty one are unauthorized', () => {
    assert.equal(checkBasicAuth({}, expected), 'unauthorized');
    assert.equal(checkBasicAuth({ 'proxy-authorization': basic('alice:nope') }, expected), 'unauthorized');
    assert.equal(checkBasicAuth({ 'proxy-authorization': basic('bob:s3:cret') }, expected), 'unauthorized');
    assert.equal(checkBasicAuth({ 'proxy-authorization': basic('alice:') }, expected), 'unauthorized');
    assert.equal(
      checkBasicAuth({ 'proxy-authorization': basic('alice:s3:cretX') }, expected),
      'unauthorized',
    );
    assert.equal(checkBasicAuth({ 'proxy-authorization': basic(':') }, expected), 'unauthorized');
  });

  test('Proxy-Authorization takes precedence over Authorization', () => {
    const h = { 'proxy-authorization': basic('alice:nope'), authorization: basic('alice:s3:cret') };
    assert.equal(checkBasicAuth(h, expected), 'unauthorized');
    const h2 = { 'proxy-authorization': basic('alice:s3:cret'), authorization: basic('alice:nope') };
    assert.equal(checkBasicAuth(h2, expected), 'ok');
    const h3 = { 'proxy-authorization': basic('alice:s3:cret'), authorization: 'Bearer registry-token' };
    assert.equal(checkBasicAuth(h3, expected), 'ok');
  });

  test('a bearer token in Authorization is not mistaken for credentials (nor called malformed)', () => {
    assert.equal(checkBasicAuth({ authorization: 'Bearer eyJhbGciOi.x.y' }, expected), 'unauthorized');
    assert.equal(checkBasicAuth({ authorization: 'Bearer' }, expected), 'unauthorized');
    assert.equal(checkBasicAuth({ 'proxy-authorization': 'Bearer abc' }, expected), 'unauthorized');
  });

  test('malformed credentials: missing payload, extra words, not base64', () => {
    for (const v of [
      'Basic',
      'Basic ',
      'Basic a b',
      'Basic !!!',
      'Basic YWxp Y2U=',
      'Basic YQ=a',
      'Basic YQ===',
    ]) {
      assert.equal(checkBasicAuth({ 'proxy-authorization': v }, expected), 'malformed', v);
    }
  });

  test('a payload without a colon is unauthorized', () => {
    assert.equal(checkBasicAuth({ 'proxy-authorization': basic('alice') }, expected), 'unauthorized');
    assert.equal(checkBasicAuth({ 'proxy-authorization': basic('alices3cret') }, expected), 'unauthorized');
  });

  test('non-ASCII credentials compare as UTF-8', () => {
    const e = { username: 'zoë', password: 'pässwörd' };
    assert.equal(checkBasicAuth({ 'proxy-authorization': basic('zoë:pässwörd') }, e), 'ok');
    assert.equal(checkBasicAuth({ 'proxy-authorization': basic('zoe:pässwörd') }, e), 'unauthorized');
  });
});
