import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultConfig } from '../../../src/config/dfdaemon.js';
import { configuredOriginHosts } from '../../../src/daemon/dfdaemon.js';

test('the registry mirror and rule redirects are origins the operator named (allowed for remote callers)', () => {
  const c = defaultConfig();
  c.proxy.registryMirror.addr = 'http://10.0.0.5:5000';
  c.proxy.rules = [
    {
      regex: 'a',
      useTLS: false,
      redirect: 'mirror.internal:5000',
      filteredQueryParams: [],
      schedulingPolicy: 'auto',
    },
    {
      regex: 'b',
      useTLS: false,
      redirect: '[fd00::7]:80',
      filteredQueryParams: [],
      schedulingPolicy: 'auto',
    },
    { regex: 'c', useTLS: false, filteredQueryParams: [], schedulingPolicy: 'auto' },
  ];
  assert.deepEqual(configuredOriginHosts(c), ['10.0.0.5', 'mirror.internal', 'fd00::7']);
  c.proxy.registryMirror.addr = 'not a url';
  c.proxy.rules = [];
  assert.deepEqual(configuredOriginHosts(c), []);
});
