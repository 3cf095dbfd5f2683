// The X-Dragonfly-* request and response headers of upstream's proxy (dragonfly-client/src/proxy/header.rs), how
// each is read, and the hop-by-hop headers a proxy must not pass on (RFC 9110 §7.6.1).

import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { SchedulingPolicyName } from '../config/dfdaemon.js';
import { parseByteSize } from '../core/bytesize.js';

export const H = {
  tag: 'x-dragonfly-tag',
  application: 'x-dragonfly-application',
  priority: 'x-dragonfly-priority',
  registry: 'x-dragonfly-registry',
  filteredQueryParams: 'x-dragonfly-filtered-query-params',
  useP2P: 'x-dragonfly-use-p2p',
  prefetch: 'x-dragonfly-prefetch',
  outputPath: 'x-dragonfly-output-path',
  forceHardLink: 'x-dragonfly-force-hard-link',
  pieceLength: 'x-dragonfly-piece-length',
  contentForCalculatingTaskId: 'x-dragonfly-content-for-calculating-task-id',
  enableTaskIdBasedBlobDigest: 'x-dragonfly-enable-task-id-based-blob-digest',
  schedulingPolicy: 'x-dragonfly-scheduling-policy',
  // Response headers.
  taskDownloadFinished: 'X-Dragonfly-Task-Download-Finished',
  taskId: 'X-Dragonfly-Task-ID',
  serverIp: 'X-Dragonfly-Server-IP',
  errorType: 'X-Dragonfly-Error-Type',
} as const;

/** Where a failed proxy request failed (the value of X-Dragonfly-Error-Type). */
export type ErrorType = 'backend' | 'proxy' | 'dfdaemon';

/** Priority.LEVEL6, upstream's default when the header is absent or not an integer. */
export const DEFAULT_PRIORITY = 6;

/** One value of a request header (the first, if the client repeated it). */
export function single(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** "true" in any case is true; anything else (or nothing) is false, as upstream. */
function flag(headers: IncomingHttpHeaders, name: string): boolean | undefined {
  const v = single(headers, name);
  return v === undefined ? undefined : v.trim().toLowerCase() === 'true';
}

export function useP2P(headers: IncomingHttpHeaders): boolean {
  return flag(headers, H.useP2P) ?? false;
}

export function prefetchHeader(headers: IncomingHttpHeaders): boolean | undefined {
  return flag(headers, H.prefetch);
}

export function forceHardLink(headers: IncomingHttpHeaders): boolean {
  return flag(headers, H.forceHardLink) ?? false;
}

export function enableTaskIdBasedBlobDigest(headers: IncomingHttpHeaders, fallback: boolean): boolean {
  return flag(headers, H.enableTaskIdBasedBlobDigest) ?? fallback;
}

/**
 * X-Dragonfly-Scheduling-Policy: "auto" or "always" in any case; anything else (or nothing) is the rule's policy,
 * as upstream (which logs the bad value and goes on).
 */
export function schedulingPolicy(
  headers: IncomingHttpHeaders,
  fallback: SchedulingPolicyName,
): SchedulingPolicyName {
  const v = single(headers, H.schedulingPolicy)?.trim().toLowerCase();
  return v === 'auto' || v === 'always' ? v : fallback;
}

/** X-Dragonfly-Priority as Rust's `parse::<i32>()` reads it (sign allowed); anything else is LEVEL6. */
export function priority(headers: IncomingHttpHeaders): number {
  const v = single(headers, H.priority);
  if (v === undefined || !/^\s*[+-]?\d+\s*$/.test(v)) return DEFAULT_PRIORITY;
  const n = Number.parseInt(v, 10);
  // Out of i32 range upstream falls back to the default; our int32 encoder would throw when announcing it.
  return n >= -(2 ** 31) && n < 2 ** 31 ? n : DEFAULT_PRIORITY;
}

export function filteredQueryParams(headers: IncomingHttpHeaders, fallback: readonly string[]): string[] {
  const v = single(headers, H.filteredQueryParams);
  return v === undefined ? [...fallback] : v.split(',').map((s) => s.trim());
}

/** X-Dragonfly-Piece-Length as a byte size ("4MiB", "8388608"); an unparseable value throws naming the header. */
export function pieceLengthHeader(headers: IncomingHttpHeaders): number | undefined {
  const v = single(headers, H.pieceLength);
  if (v === undefined) return undefined;
  try {
    return parseByteSize(v.trim());
  } catch (e) {
    throw new Error(`X-Dragonfly-Piece-Length "${v}": ${(e as Error).message}`, { cause: e });
  }
}

/** Headers that describe one connection, never forwarded (plus whatever the Connection header names). */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** A copy of `headers` without hop-by-hop headers (nor the ones listed in `Connection`). */
export function endToEnd<T extends IncomingHttpHeaders | OutgoingHttpHeaders | Record<string, unknown>>(
  headers: T,
): Record<string, string | string[]> {
  const named = new Set(HOP_BY_HOP);
  const connection = headers['connection'];
  for (const c of [connection].flat()) {
    if (typeof c === 'string') for (const t of c.split(',')) named.add(t.trim().toLowerCase());
  }
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined || v === null || named.has(k.toLowerCase())) continue;
    out[k] = Array.isArray(v) ? v.map(String) : String(v);
  }
  return out;
}

/** `via` appended to a request's Via header (RFC 9110 §7.6.3): how a proxy sees its own requests come back. */
export function appendVia(existing: string | string[] | undefined, via: string): string {
  const before = [existing ?? []].flat().join(', ');
  return before ? `${before}, ${via}` : via;
}

/** Whether `via` is one of the entries of the request's Via header. */
export function hasVia(headers: IncomingHttpHeaders, via: string): boolean {
  return [headers['via'] ?? []].flat().some((v) => v.split(',').some((entry) => entry.trim() === via));
}

/** `headers` without the named ones (names in lower case; keys compared case-insensitively). */
export function omitHeaders<T>(headers: Record<string, T>, names: readonly string[]): Record<string, T> {
  return Object.fromEntries(Object.entries(headers).filter(([k]) => !names.includes(k.toLowerCase())));
}

/** The request headers kept with the task (Download.request_header): end-to-end, without Host (as upstream). */
export function requestHeaderMap(headers: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(endToEnd(headers))) {
    if (k === 'host') continue;
    out[k] = Array.isArray(v) ? v.join(', ') : v;
  }
  return out;
}
