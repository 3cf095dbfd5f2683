import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isLoopback } from '../../../src/proxy/server.js';

test('isLoopback: 127/8, ::1 and IPv4-mapped loopback only', () => {
  for (const a of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1']) assert.equal(isLoopback(a), true, a);
  for (const a of ['10.0.0.1', '::ffff:10.0.0.1', '::', '0.0.0.0', 'fe80::1', '', undefined]) {
    assert.equal(isLoopback(a), false, String(a));
  }
});
