// Reading an origin's answer: status to error, the check that a ranged answer is the range asked for, and
// the few header parsers both need.

import { STATUS_CODES } from 'node:http';
import { DfError } from '../core/errors.js';
import type { ByteRange } from './backend.js';
import { redactUrl } from './call-scope.js';

/** A response body as the HTTP/1.1 agent gives it (http1-agent.ts): async-iterable once, with dump(). */
export interface ExchangeBody extends AsyncIterable<Buffer> {
  /** Reads a small rest to its end (the connection is kept) or ends the connection. */
  dump(options: { limit: number }): Promise<unknown>;
}

/** One response, after redirects, with the URL that produced it. */
export interface Exchange {
  url: string;
  statusCode: number;
  statusText: string;
  /** Lower-case names; a field sent more than once is an array. */
  headers: Record<string, string | string[] | undefined>;
  body: ExchangeBody;
}

export function statusError(ex: Exchange, url: string): DfError {
  const reason = ex.statusText || STATUS_CODES[ex.statusCode] || '';
  const message = `backend error: ${ex.statusCode}${reason ? ` ${reason}` : ''} for ${redactUrl(url)}`;
  return new DfError('BACKEND', message, {
    backend: backendDetails(ex, message),
    retryable: isRetryableStatus(ex.statusCode),
  });
}

/**
 * The origin's object is no longer the version the task started with. No backend details: the origin's 412 (or
 * its 2xx) answered our precondition, not the client's request, so the proxy must not relay it as the origin's.
 */
export function sourceChanged(url: string, why: string): DfError {
  return new DfError(
    'SOURCE_CHANGED',
    `source changed during the download: ${redactUrl(url)} is no longer the version the task started with (${why})`,
  );
}

export function backendDetails(ex: Exchange, message: string) {
  return { statusCode: ex.statusCode, header: flattenHeaders(ex.headers), message };
}

/**
 * Checks that a 2xx answer carries exactly the bytes asked for and returns how many the body must have.
 * A 206 must name the same range in Content-Range; a 200 (the origin ignored Range) is only the range when the
 * range is the whole object, i.e. starts at 0 and the object is exactly `length` bytes.
 */
export function checkRangedResponse(range: ByteRange | undefined, ex: Exchange): number | undefined {
  const contentLength = parseLength(header(ex.headers, 'content-length'));
  if (range === undefined) return contentLength;

  const end = range.start + range.length - 1;
  const asked = `bytes=${range.start}-${end}`;
  const fail = (what: string) => {
    const message = `backend error: ${what} (asked ${asked} of ${redactUrl(ex.url)})`;
    return new DfError('BACKEND', message, { backend: backendDetails(ex, message) });
  };

  if (ex.statusCode === 206) {
    const contentRange = header(ex.headers, 'content-range');
    if (contentRange === undefined) throw fail('206 Partial Content without Content-Range');
    const parsed = parseContentRange(contentRange);
    if (parsed === undefined) throw fail(`invalid Content-Range "${contentRange}"`);
    if (parsed.start !== range.start || parsed.end !== end) {
      throw fail(`Content-Range "${contentRange}" does not match the requested range`);
    }
  } else {
    if (range.start !== 0) {
      throw fail(`origin ignored the range and answered ${ex.statusCode} with the whole object`);
    }
    if (contentLength !== undefined && contentLength !== range.length) {
      throw fail(`origin ignored the range and answered ${ex.statusCode} with all ${contentLength} bytes`);
    }
  }
  if (contentLength !== undefined && contentLength !== range.length) {
    throw fail(`Content-Length ${contentLength} does not match the requested ${range.length} bytes`);
  }
  return range.length;
}

export function validateRange(range: ByteRange): void {
  if (
    !Number.isSafeInteger(range.start) ||
    range.start < 0 ||
    !Number.isSafeInteger(range.length) ||
    range.length <= 0
  ) {
    throw new DfError('INVALID_ARGUMENT', `invalid range start=${range.start} length=${range.length}`);
  }
}

/** `bytes <start>-<end>/<total|*>`; undefined when malformed. */
export function parseContentRange(
  value: string | undefined,
): { start: number; end: number; total?: number } | undefined {
  if (value === undefined) return undefined;
  const m = /^bytes\s+(\d+)-(\d+)\/(\d+|\*)$/i.exec(value.trim());
  if (m === null) return undefined;
  const start = Number(m[1]);
  const end = Number(m[2]);
  if (end < start) return undefined;
  return { start, end, total: m[3] === '*' ? undefined : Number(m[3]) };
}

export function parseLength(value: string | undefined): number | undefined {
  if (value === undefined || !/^\d+$/.test(value.trim())) return undefined;
  const n = Number(value.trim());
  return Number.isSafeInteger(n) ? n : undefined;
}

export function header(headers: Exchange['headers'], name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

export function flattenHeaders(headers: Exchange['headers']): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

export function isSuccess(status: number): boolean {
  return status >= 200 && status < 300;
}

export function isRetryableStatus(status: number): boolean {
  return status >= 500 || status === 429;
}
