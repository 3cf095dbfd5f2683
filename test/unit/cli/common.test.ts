// describeError's one line for an origin's error (errordetails.v2.Backend): "backend error" once. Our dfdaemon's
// message already says it and names the status; it used to come out as
// "backend error: origin answered 404: backend error: 404 Not Found for URL" (issue 17).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backendLine } from '../../../src/cli/common.js';

test("our dfdaemon's message: the status is not repeated", () => {
  assert.equal(
    backendLine(404, 'backend error: 404 Not Found for http://o/x'),
    'backend error: origin answered 404 Not Found for http://o/x',
  );
  assert.equal(
    backendLine(
      200,
      'backend error: origin ignored the range and answered 200 with all 9 bytes (asked bytes=0-3 of http://o/x)',
    ),
    'backend error: origin answered 200: origin ignored the range and answered 200 with all 9 bytes (asked bytes=0-3 of http://o/x)',
  );
});

test("another dfdaemon's message, or none", () => {
  assert.equal(backendLine(403, 'AccessDenied'), 'backend error: origin answered 403: AccessDenied');
  assert.equal(backendLine(500, ''), 'backend error: origin answered 500');
  assert.equal(backendLine(500, '500'), 'backend error: origin answered 500');
});
