// One error type for the whole project. The `code` is for programs (it picks the gRPC status and the HTTP
// status at the edges); the `message` is one line for people. Details go to `cause` and to the log.

export type ErrorCode =
  | 'INVALID_ARGUMENT'
  | 'INVALID_CONFIG'
  | 'TASK_NOT_FOUND'
  | 'PIECE_NOT_FOUND'
  | 'DIGEST_MISMATCH'
  | 'UNSUPPORTED_DIGEST'
  | 'BACKEND'
  | 'BACKEND_UNSUPPORTED'
  /** The origin's object changed (ETag / Last-Modified) while its pieces were being fetched. */
  | 'SOURCE_CHANGED'
  | 'TIMEOUT'
  | 'NO_SPACE'
  | 'IO'
  | 'ALREADY_EXISTS'
  | 'PERMISSION_DENIED'
  | 'UNAVAILABLE'
  | 'CANCELLED'
  | 'RESOURCE_EXHAUSTED'
  | 'UNIMPLEMENTED'
  | 'INTERNAL';

/** gRPC status codes (numbers from the gRPC spec; core imports no gRPC library). */
export const GrpcCode = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

const GRPC_CODE_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(GrpcCode).map(([name, code]) => [code, name]),
);

/** A gRPC status code's name ("NOT_FOUND"), or undefined for a number outside the spec. */
export function grpcCodeName(code: number): string | undefined {
  return GRPC_CODE_NAMES[code];
}

/** The one table from error code to gRPC status and HTTP status, used only at the edges. */
export const ERROR_STATUS: Record<ErrorCode, { grpc: number; http: number }> = {
  INVALID_ARGUMENT: { grpc: GrpcCode.INVALID_ARGUMENT, http: 400 },
  INVALID_CONFIG: { grpc: GrpcCode.INVALID_ARGUMENT, http: 400 },
  TASK_NOT_FOUND: { grpc: GrpcCode.NOT_FOUND, http: 404 },
  PIECE_NOT_FOUND: { grpc: GrpcCode.NOT_FOUND, http: 404 },
  DIGEST_MISMATCH: { grpc: GrpcCode.DATA_LOSS, http: 500 },
  UNSUPPORTED_DIGEST: { grpc: GrpcCode.INVALID_ARGUMENT, http: 400 },
  // Upstream returns Internal with errordetails.v2.Backend for origin failures.
  BACKEND: { grpc: GrpcCode.INTERNAL, http: 502 },
  BACKEND_UNSUPPORTED: { grpc: GrpcCode.INVALID_ARGUMENT, http: 400 },
  // ABORTED: a concurrency conflict that a retry of the whole download resolves (the task was dropped, so the
  // next download fetches the new version); dfget retries once on it. The proxy answers 502 (the origin moved).
  SOURCE_CHANGED: { grpc: GrpcCode.ABORTED, http: 502 },
  TIMEOUT: { grpc: GrpcCode.DEADLINE_EXCEEDED, http: 504 },
  NO_SPACE: { grpc: GrpcCode.RESOURCE_EXHAUSTED, http: 507 },
  IO: { grpc: GrpcCode.INTERNAL, http: 500 },
  ALREADY_EXISTS: { grpc: GrpcCode.ALREADY_EXISTS, http: 409 },
  PERMISSION_DENIED: { grpc: GrpcCode.PERMISSION_DENIED, http: 403 },
  UNAVAILABLE: { grpc: GrpcCode.UNAVAILABLE, http: 503 },
  CANCELLED: { grpc: GrpcCode.CANCELLED, http: 499 },
  RESOURCE_EXHAUSTED: { grpc: GrpcCode.RESOURCE_EXHAUSTED, http: 429 },
  UNIMPLEMENTED: { grpc: GrpcCode.UNIMPLEMENTED, http: 501 },
  INTERNAL: { grpc: GrpcCode.INTERNAL, http: 500 },
};

/** What an origin answered, kept so the client can see it as errordetails.v2.Backend. */
export interface BackendDetails {
  statusCode?: number;
  header: Record<string, string>;
  message: string;
}

export class DfError extends Error {
  readonly code: ErrorCode;
  readonly backend?: BackendDetails;
  /** Whether trying the same operation again may succeed (timeouts, 5xx, resets). */
  readonly retryable: boolean;

  constructor(
    code: ErrorCode,
    message: string,
    options: { cause?: unknown; backend?: BackendDetails; retryable?: boolean } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'DfError';
    this.code = code;
    this.backend = options.backend;
    this.retryable = options.retryable ?? false;
  }
}

export function isDfError(e: unknown): e is DfError {
  return e instanceof DfError;
}

/** Wraps anything thrown into a DfError, mapping common Node system errors to codes. */
export function toDfError(e: unknown, context?: string): DfError {
  if (e instanceof DfError) return e;
  const prefix = context ? `${context}: ` : '';
  const sys = e as NodeJS.ErrnoException | undefined;
  const msg = sys && typeof sys.message === 'string' ? sys.message : String(e);
  switch (sys?.code) {
    case 'ENOSPC':
    case 'EDQUOT':
    case 'SQLITE_FULL':
      return new DfError('NO_SPACE', `${prefix}no space left on device`, { cause: e });
    case 'ENOENT':
      return new DfError('IO', `${prefix}${msg}`, { cause: e });
    case 'EACCES':
    case 'EPERM':
      return new DfError('PERMISSION_DENIED', `${prefix}${msg}`, { cause: e });
    case 'EEXIST':
      return new DfError('ALREADY_EXISTS', `${prefix}${msg}`, { cause: e });
    case 'ABORT_ERR':
      return new DfError('CANCELLED', `${prefix}cancelled`, { cause: e });
    default:
      return new DfError(sys?.code ? 'IO' : 'INTERNAL', `${prefix}${msg}`, { cause: e });
  }
}

const ESCAPES: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/**
 * `text` with control characters (and the Unicode line and paragraph separators) escaped as in JSON, for what a
 * peer or a file supplied and a message quotes: an id or a key holding a newline cannot start a line of its own
 * on a terminal or in a log.
 */
export function oneLine(text: string): string {
  return text.replace(
    // eslint-disable-next-line no-control-regex
    /[\u0000-\u001f\u007f\u2028\u2029]/g,
    (c) => ESCAPES[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}
