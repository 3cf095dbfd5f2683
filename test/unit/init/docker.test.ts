import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planDockerDaemonJson } from '../../../src/init/docker.js';
import { proxyLocation } from '../../../src/init/proxy-location.js';

const plan = (text: string | undefined) => planDockerDaemonJson(text, 'daemon.json', '127.0.0.1:5000');

test('no file or an empty one: proxies only', () => {
  const expected = `{
  "proxies": {
    "http-proxy": "http://127.0.0.1:5000",
    "https-proxy": "http://127.0.0.1:5000"
  }
}
`;
  assert.equal(plan(undefined), expected);
  assert.equal(plan('  \n'), expected);
});

test('existing settings kept in their order; idempotent', () => {
  const after = plan('{\n  "log-driver": "json-file",\n  "experimental": true\n}\n');
  const v = JSON.parse(after);
  assert.deepEqual(Object.keys(v), ['log-driver', 'experimental', 'proxies']);
  assert.equal(v.proxies['https-proxy'], 'http://127.0.0.1:5000');
  assert.equal(plan(after), after);
});

test('idempotent whatever the formatting: a file already right is left byte for byte', () => {
  const text = '{"proxies":{"https-proxy":"http://127.0.0.1:5000","http-proxy":"http://127.0.0.1:5000"}}';
  assert.equal(plan(text), text);
});

test('old proxies replaced, no-proxy kept', () => {
  const v = JSON.parse(
    plan(
      '{"proxies":{"http-proxy":"http://old:3128","https-proxy":"https://old:3129","no-proxy":"*.local"},"log-driver":"json-file"}',
    ),
  );
  assert.deepEqual(v.proxies, {
    'http-proxy': 'http://127.0.0.1:5000',
    'https-proxy': 'http://127.0.0.1:5000',
    'no-proxy': '*.local',
  });
  assert.equal(v['log-driver'], 'json-file');
});

test('invalid JSON is an error naming the file', () => {
  assert.throws(() => plan('{\n "a": 1,\n}\n'), /^DfError: daemon\.json: invalid JSON: /);
  assert.throws(() => plan('[]'), /daemon\.json: expected a JSON object/);
});

test('proxy location: default ports by scheme, IPv6 kept in brackets', () => {
  assert.equal(proxyLocation('http://127.0.0.1:4001'), '127.0.0.1:4001');
  assert.equal(proxyLocation('http://proxy.local'), 'proxy.local:80');
  assert.equal(proxyLocation('https://proxy.local/'), 'proxy.local:443');
  assert.equal(proxyLocation('http://[::1]:4001'), '[::1]:4001');
});
