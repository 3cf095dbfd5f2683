// The deadline and cancellation of one backend call, and the mapping of whatever undici, http1-agent.ts or Node
// throws during it to one DfError a person can read: which host, what went wrong, and whether trying again may help.

import { setTimeout as sleep } from 'node:timers/promises';
import { DfError } from '../core/errors.js';

/** Connection-level failures worth another attempt, with the words a person reads. */
const RETRYABLE_CONNECTION_ERRORS: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset by peer',
  ECONNABORTED: 'connection aborted',
  EPIPE: 'connection closed while sending',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ENETDOWN: 'network down',
  ETIMEDOUT: 'connection timed out',
  EAI_AGAIN: 'temporary DNS failure',
  UND_ERR_SOCKET: 'connection closed by the origin',
  UND_ERR_CLOSED: 'connection closed',
  HTTP1_CLOSED: 'connection closed by the origin',
};

const TIMEOUT_ERRORS: Readonly<Record<string, string>> = {
  UND_ERR_CONNECT_TIMEOUT: 'connect timeout',
  UND_ERR_HEADERS_TIMEOUT: 'no response headers in time',
  UND_ERR_BODY_TIMEOUT: 'body stalled',
  HTTP1_CONNECT_TIMEOUT: 'connect timeout',
  HTTP1_HEADERS_TIMEOUT: 'no response headers in time',
  HTTP1_BODY_TIMEOUT: 'body stalled',
};

/**
 * The deadline and cancellation of one backend call: one AbortSignal that fires on the caller's signal or when
 * `timeoutMs` has passed, whichever first, and that outlives the call until the body is done.
 */
export class CallScope {
  readonly timeoutMs: number;
  private readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout;
  private readonly callerSignal: AbortSignal | undefined;
  private released = false;
  /** The request is made on a remote caller's behalf (its connections are checked by the source policy). */
  readonly remoteCaller: boolean;

  constructor(
    timeoutMs: number,
    callerSignal: AbortSignal | undefined,
    description: string,
    remoteCaller = false,
  ) {
    this.timeoutMs = timeoutMs;
    this.remoteCaller = remoteCaller;
    this.callerSignal = callerSignal;
    this.timer = setTimeout(() => {
      this.controller.abort(
        new DfError('TIMEOUT', `backend timeout: ${description} did not complete within ${timeoutMs} ms`, {
          retryable: true,
        }),
      );
    }, timeoutMs);
    this.timer.unref();
    this.onCallerAbort = this.onCallerAbort.bind(this);
    if (callerSignal?.aborted) this.onCallerAbort();
    else callerSignal?.addEventListener('abort', this.onCallerAbort, { once: true });
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    clearTimeout(this.timer);
    this.callerSignal?.removeEventListener('abort', this.onCallerAbort);
  }

  /** Waits between attempts; ends early with the scope's reason when the call is aborted. */
  async sleep(ms: number): Promise<void> {
    try {
      await sleep(ms, undefined, { signal: this.signal, ref: false });
    } catch (e) {
      throw this.toError(e, '');
    }
  }

  /** Any failure of a request to `url`, as the DfError to surface; the scope's own abort reason wins. */
  toError(e: unknown, url: string): DfError {
    if (this.signal.aborted) return this.abortReason();
    if (e instanceof DfError) return e;
    return requestError(e, url);
  }

  toBodyError(e: unknown, received: number, expected: number | undefined): DfError {
    if (this.signal.aborted) return this.abortReason();
    if (e instanceof DfError) return e;
    const code = errorCode(e);
    const of = expected === undefined ? '' : ` of ${expected}`;
    const why = (code && (RETRYABLE_CONNECTION_ERRORS[code] ?? TIMEOUT_ERRORS[code])) ?? errorMessage(e);
    return new DfError(
      code !== undefined && code in TIMEOUT_ERRORS ? 'TIMEOUT' : 'BACKEND',
      `backend error: body stopped after ${received}${of} bytes: ${why}${code ? ` (${code})` : ''}`,
      { cause: e, retryable: true },
    );
  }

  private abortReason(): DfError {
    const reason: unknown = this.signal.reason;
    return reason instanceof DfError
      ? reason
      : new DfError('CANCELLED', 'backend request cancelled', { cause: reason });
  }

  private onCallerAbort(): void {
    const reason: unknown = this.callerSignal?.reason;
    this.controller.abort(
      reason instanceof DfError
        ? reason
        : new DfError('CANCELLED', 'backend request cancelled', { cause: reason }),
    );
  }
}

/** Maps a thrown request failure (connection, TLS, timeout, bad header) to a DfError naming the host and cause. */
function requestError(e: unknown, url: string): DfError {
  const code = errorCode(e);
  const host = hostOf(url);
  if (code !== undefined && code in TIMEOUT_ERRORS) {
    return new DfError('TIMEOUT', `backend timeout: ${host}: ${TIMEOUT_ERRORS[code]}`, {
      cause: e,
      retryable: true,
    });
  }
  if (code !== undefined && code in RETRYABLE_CONNECTION_ERRORS) {
    return new DfError(
      'BACKEND',
      `backend error: cannot reach ${host}: ${RETRYABLE_CONNECTION_ERRORS[code]} (${code})`,
      {
        cause: e,
        retryable: true,
      },
    );
  }
  if (code === 'ENOTFOUND') {
    return new DfError('BACKEND', `backend error: cannot resolve host ${host} (ENOTFOUND)`, { cause: e });
  }
  if (code !== undefined && isTlsErrorCode(code)) {
    return new DfError('BACKEND', `backend error: TLS with ${host} failed: ${errorMessage(e)} (${code})`, {
      cause: e,
    });
  }
  if (code === 'UND_ERR_INVALID_ARG' || code === 'ERR_INVALID_URL' || e instanceof TypeError) {
    return new DfError(
      'INVALID_ARGUMENT',
      `invalid backend request to ${redactUrl(url)}: ${errorMessage(e)}`,
      {
        cause: e,
      },
    );
  }
  return new DfError(
    'BACKEND',
    `backend error: request to ${host} failed: ${errorMessage(e)}${code ? ` (${code})` : ''}`,
    {
      cause: e,
    },
  );
}

function isTlsErrorCode(code: string): boolean {
  return (
    code.startsWith('ERR_TLS') ||
    code.startsWith('ERR_SSL') ||
    code.includes('CERT') ||
    code.startsWith('UNABLE_TO_') ||
    code === 'DEPTH_ZERO_SELF_SIGNED_CERT' ||
    code === 'SELF_SIGNED_CERT_IN_CHAIN' ||
    code === 'HOSTNAME_MISMATCH'
  );
}

/** The error's code; Node's happy-eyeballs connect throws an AggregateError whose members carry it. */
function errorCode(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string') return code;
  if (e instanceof AggregateError) {
    for (const inner of e.errors) {
      const innerCode = errorCode(inner);
      if (innerCode !== undefined) return innerCode;
    }
  }
  return undefined;
}

function errorMessage(e: unknown): string {
  if (e instanceof AggregateError && e.errors.length > 0) return errorMessage(e.errors[0]);
  return e instanceof Error ? e.message : String(e);
}

/** The URL without credentials or query (which may hold signatures), for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return url.split('?')[0] ?? url;
  }
}

export function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}
