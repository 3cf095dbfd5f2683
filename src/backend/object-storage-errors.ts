// opendal's errors as this project's: one line that names the object, the scheme and what to do, with the code
// the edges map to a status. opendal's own message carries the request URI and the whole response head: it is
// kept out of the message (the kind and the HTTP status are all a user needs) and never includes a credential.

import { DfError, type ErrorCode } from '../core/errors.js';
import { describeObject, type ObjectStorageUrl } from './object-storage-url.js';

/** opendal's ErrorKind names, as the Node binding renders them at the start of a message. */
type OpendalKind =
  | 'NotFound'
  | 'PermissionDenied'
  | 'ConfigInvalid'
  | 'ConditionNotMatch'
  | 'RateLimited'
  | 'RangeNotSatisfied'
  | 'Unsupported'
  | 'Unexpected'
  | string;

/** `NotFound (permanent) at stat, context: { ... status: 404 ...}` → kind, whether temporary, HTTP status. */
export function parseOpendalError(e: unknown): { kind: OpendalKind; temporary: boolean; status?: number } {
  const message = String((e as Error)?.message ?? e);
  const head = /^(\w+) \((\w+)\)/.exec(message);
  const status = /status: (\d{3})\b/.exec(message);
  return {
    kind: head?.[1] ?? 'Unexpected',
    temporary: head?.[2] === 'temporary',
    status: status ? Number(status[1]) : undefined,
  };
}

/** What the credentials flags are called for each scheme, for the permission message. */
const CREDENTIAL_HINT: Record<string, string> = {
  gs: '--storage-credential-path',
  abs: '--storage-access-key-id (account name) and --storage-access-key-secret (account key)',
};

/** The opendal error of `operation` on `parsed` as a DfError. */
export function objectStorageError(e: unknown, parsed: ObjectStorageUrl, operation: string): DfError {
  if (e instanceof DfError) return e;
  const { kind, temporary, status } = parseOpendalError(e);
  // opendal's signer could not load the credentials (a credential file that is not a key, ...): the user's to fix,
  // not worth a retry.
  if (String((e as Error)?.message).includes('LoadCredential')) {
    return new DfError(
      'PERMISSION_DENIED',
      `${operation} ${describeObject(parsed)}: cannot load credentials for the ${parsed.scheme} store: check ` +
        (CREDENTIAL_HINT[parsed.scheme] ?? '--storage-access-key-id and --storage-access-key-secret'),
    );
  }
  const where = describeObject(parsed);
  const statusText = status ? ` (HTTP ${status})` : '';
  let code: ErrorCode = 'BACKEND';
  let what: string;
  switch (kind) {
    case 'NotFound':
      what = `NOT_FOUND: no such ${parsed.isDir ? 'prefix' : 'object'} in the ${parsed.scheme} store${statusText}`;
      break;
    case 'PermissionDenied':
      code = 'PERMISSION_DENIED';
      what =
        `permission denied by the ${parsed.scheme} store${statusText}: check ` +
        (CREDENTIAL_HINT[parsed.scheme] ?? '--storage-access-key-id and --storage-access-key-secret');
      break;
    case 'ConfigInvalid':
      code = 'INVALID_ARGUMENT';
      what = `invalid ${parsed.scheme} settings`;
      break;
    case 'ConditionNotMatch':
      code = 'SOURCE_CHANGED';
      what = `the object changed since the task started${statusText}`;
      break;
    case 'RateLimited':
      what = `the ${parsed.scheme} store is rate limiting${statusText}`;
      break;
    default:
      what = `${kind} from the ${parsed.scheme} store${statusText}`;
  }
  const message = `${operation} ${where}: ${what}`;
  return new DfError(code, message, {
    backend: code === 'BACKEND' ? { statusCode: status, header: {}, message } : undefined,
    retryable: temporary,
  });
}
