// The one place a DfError becomes a gRPC status. Backend errors carry errordetails.v2.Backend as upstream
// does: JSON (serde's field names) in the status details (`grpc-status-details-bin`), so an upstream dfget
// prints the origin's status and headers.

import { Metadata, type ServerErrorResponse, type StatusObject } from '@grpc/grpc-js';
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
