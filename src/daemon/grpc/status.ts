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
import { ERROR_STATUS, GrpcCode, toDfError } from '../../core/errors.js';

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
  return Object.assign(new Error(err.message), {
    code: ERROR_STATUS[err.code]?.grpc ?? GrpcCode.INTERNAL,
    details: err.message,
    metadata,
  });
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
