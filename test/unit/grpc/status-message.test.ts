// The message of every gRPC status our servers send (grpc/status-message.ts): one line, bounded.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_STATUS_MESSAGE, statusMessage } from '../../../src/grpc/status-message.js';

test('a short message is sent as it is', () => {
  assert.equal(statusMessage('task abc not found'), 'task abc not found');
});

test('control characters are escaped: an id holding CRLF stays on one line', () => {
  // Found by the scheduler fuzz (test/unit/scheduler/embedded/service.fuzz.test.ts): DeleteHost of "a\r\nX-Injected: 1".
  assert.equal(statusMessage('host a\r\nX-Injected: 1 not found'), 'host a\\r\\nX-Injected: 1 not found');
  assert.equal(statusMessage('a\u0000b\u2028c\td'), 'a\\u0000b\\u2028c\\td');
});

test('a long message is cut, saying how long it was', () => {
  const m = statusMessage(`peer ${'x'.repeat(70_000)} not found`);
  assert.ok(m.length < MAX_STATUS_MESSAGE + 40, `${m.length}`);
  assert.match(m, /… \(70015 characters in all\)$/);
});
