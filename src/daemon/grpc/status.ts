// The one place a DfError becomes a gRPC status. Backend errors carry errordetails.v2.Backend as upstream
// does: JSON (serde's field names) in the status details (`grpc-status-details-bin`), so an upstream dfget
// prints the origin's status and headers.

import {
  Metadata,
  type sendUnaryData,
  type ServerErrorResponse,
  type ServerWritableStream,
  type StatusObject,
  type UntypedHandleCall,
} from '@grpc/grpc-js';
import { DfError, ERROR_STATUS, GrpcCode, toDfError } from '../../core/errors.js';
import { statusMessage } from '../../grpc/status-message.js';

/** Task ids are 64 hex characters (sha256); no stored task has an id longer than this. */
const MAX_TASK_ID_LENGTH = 256;

/**
 * A request's task id checked before use: one longer than any task id is not found, and the message quotes its
 * start only.
 */
export function checkTaskId(id: string): void {
  if (id.length > MAX_TASK_ID_LENGTH) {
    throw new DfError(
      'TASK_NOT_FOUND',
      `task ${id.slice(0, 64)}… (an id of ${id.length} characters) not found`,
    );
  }
}

/**
 * The gRPC status of an error. An origin that could not be reached at all (connection refused, DNS, TLS, reset:
 * a BACKEND error without an origin status) is UNAVAILABLE, as gRPC means it; an origin that answered with an
 * error status stays INTERNAL with errordetails.v2.Backend, as upstream.
 */
function grpcCode(err: DfError): number {
  if (err.code === 'BACKEND' && err.backend?.statusCode === undefined) return GrpcCode.UNAVAILABLE;
  return ERROR_STATUS[err.code]?.grpc ?? GrpcCode.INTERNAL;
}

export function toGrpcError(e: unknown): ServerErrorResponse & Partial<StatusObject> {
  const err = toDfError(e);
  const metadata = new Metadata();
  if (err.code === 'BACKEND' && err.backend) {
    const details = {
      message: err.backend.message,
      header: err.backend.header,
      status_code: err.backend.statusCode,
    };
    metadata.set('grpc-status-details-bin', Buffer.from(JSON.stringify(details)));
  }
  const message = statusMessage(err.message);
  return Object.assign(new Error(message), { code: grpcCode(err), details: message, metadata });
}

/**
 * Handlers for every RPC of a service that answer UNIMPLEMENTED naming the RPC; a service overrides the ones it
 * implements. (grpc-js's own default says nothing about which feature is missing.)
 */
export function unimplementedHandlers(service: Record<string, unknown>): Record<string, UntypedHandleCall> {
  const handlers: Record<string, UntypedHandleCall> = {};
  for (const name of Object.keys(service)) {
    handlers[name] = (call: unknown, cb?: sendUnaryData<unknown>) => {
      const err = Object.assign(new Error(`${name} is not supported by this dfdaemon yet`), {
        code: GrpcCode.UNIMPLEMENTED,
      });
      if (cb) cb(err);
      else (call as ServerWritableStream<unknown, unknown>).emit('error', err);
    };
  }
  return handlers;
}
