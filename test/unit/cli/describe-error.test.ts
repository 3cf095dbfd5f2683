// dfget's one error line for an origin's status (errordetails.v2.Backend in grpc-status-details-bin, JSON as the
// Rust client packs it). Found by test/interop/rust: against our dfdaemon the line said "backend error: origin
// answered 404: backend error: 404 Not Found for …" (our daemon's message carries the prefix itself); against the
// Rust dfdaemon it said "… origin answered 404: 404 Not Found". Both now read "origin answered 404 Not Found …".

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Metadata, status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { describeError } from '../../../src/cli/common.js';

function backendError(message: string, statusCode: number): ServiceError {
  const metadata = new Metadata();
  metadata.set(
    'grpc-status-details-bin',
    Buffer.from(JSON.stringify({ message, status_code: statusCode, header: {} })),
  );
  return Object.assign(new Error(message), {
    code: GrpcStatus.INTERNAL,
    details: message,
    metadata,
  }) as ServiceError;
}

test("an origin status from our dfdaemon: one 'backend error:' prefix", () => {
  assert.equal(
    describeError(backendError('backend error: 404 Not Found for http://o/x', 404)),
    'backend error: origin answered 404 Not Found for http://o/x',
  );
});

test('an origin status from the Rust dfdaemon (bare reason)', () => {
  assert.equal(
    describeError(backendError('404 Not Found', 404)),
    'backend error: origin answered 404 Not Found',
  );
});
