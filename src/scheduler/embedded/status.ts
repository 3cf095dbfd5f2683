// gRPC statuses of the scheduler. The scheduler answers with codes the project's DfError table has no name for
// (NOT_FOUND for hosts and peers, FAILED_PRECONDITION), as Go's `status.Error(codes.X, ...)`, so it carries the
// code itself; anything else thrown goes through the project's table (spec/scheduler.md §1.6).

import { Metadata, type ServerErrorResponse, type StatusObject } from '@grpc/grpc-js';
import { ERROR_STATUS, GrpcCode, isDfError } from '../../core/errors.js';
import { statusMessage } from '../../grpc/status-message.js';

export { GrpcCode };

export class SchedulerStatusError extends Error {
  readonly code: number;
  constructor(code: number, message: string) {
    super(message);
    this.name = 'SchedulerStatusError';
    this.code = code;
  }
}

export const notFound = (message: string) => new SchedulerStatusError(GrpcCode.NOT_FOUND, message);
export const failedPrecondition = (message: string) =>
  new SchedulerStatusError(GrpcCode.FAILED_PRECONDITION, message);
export const invalidArgument = (message: string) =>
  new SchedulerStatusError(GrpcCode.INVALID_ARGUMENT, message);
export const alreadyExists = (message: string) => new SchedulerStatusError(GrpcCode.ALREADY_EXISTS, message);
export const internal = (message: string) => new SchedulerStatusError(GrpcCode.INTERNAL, message);
export const permissionDenied = (message: string) =>
  new SchedulerStatusError(GrpcCode.PERMISSION_DENIED, message);
export const resourceExhausted = (message: string) =>
  new SchedulerStatusError(GrpcCode.RESOURCE_EXHAUSTED, message);

export function statusCodeOf(e: unknown): number {
  if (e instanceof SchedulerStatusError) return e.code;
  if (isDfError(e)) return ERROR_STATUS[e.code]?.grpc ?? GrpcCode.INTERNAL;
  return GrpcCode.INTERNAL;
}

/** The error a grpc-js handler hands back (callback or stream 'error'). */
export function toServiceError(e: unknown): ServerErrorResponse & Partial<StatusObject> {
  // Messages quote the request's ids: bounded and on one line (grpc/status-message.ts).
  const message = statusMessage(e instanceof Error ? e.message : String(e));
  return Object.assign(new Error(message), {
    code: statusCodeOf(e),
    details: message,
    metadata: new Metadata(),
  });
}
