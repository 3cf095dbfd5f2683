// A unary gRPC call as a promise with a deadline, its failure a DfError whose code follows the gRPC status, so that
// a status another server gave (the scheduler's ALREADY_EXISTS, NOT_FOUND, ...) reaches our own caller unchanged.

import { Metadata, type ServiceError } from '@grpc/grpc-js';
import { DfError, ERROR_STATUS, GrpcCode, type ErrorCode } from '../core/errors.js';

/** The error code our edges turn back into the same gRPC status (the first in ERROR_STATUS's order). */
const CODE_OF_STATUS = new Map<number, ErrorCode>();
for (const [code, s] of Object.entries(ERROR_STATUS) as Array<[ErrorCode, { grpc: number }]>) {
  if (!CODE_OF_STATUS.has(s.grpc)) CODE_OF_STATUS.set(s.grpc, code);
}

/** A gRPC client error as a DfError: `what` (the call) and the server's message. */
export function fromServiceError(e: ServiceError, what: string): DfError {
  const code =
    e.code === GrpcCode.DEADLINE_EXCEEDED
      ? 'TIMEOUT'
      : e.code === GrpcCode.FAILED_PRECONDITION
        ? 'UNAVAILABLE'
        : (CODE_OF_STATUS.get(e.code) ?? 'INTERNAL');
  return new DfError(code, `${what}: ${e.details || e.message}`, { cause: e });
}

type UnaryMethod<Req, Res> = (
  req: Req,
  metadata: Metadata,
  options: { deadline: number },
  cb: (err: ServiceError | null, res: Res) => void,
) => unknown;

/** Calls `method` (bound to its client) with a deadline `timeoutMs` from now. */
export function unaryCall<Req, Res>(
  method: UnaryMethod<Req, Res>,
  req: Req,
  timeoutMs: number,
  what: string,
): Promise<Res> {
  return new Promise((resolve, reject) => {
    method(req, new Metadata(), { deadline: Date.now() + timeoutMs }, (err, res) =>
      err ? reject(fromServiceError(err, what)) : resolve(res),
    );
  });
}
