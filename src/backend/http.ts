// The http/https backend (upstream `dragonfly-client-backend/src/http.rs`), on our own HTTP/1.1 agent
// (http1-agent.ts: no new buffer or stream per socket read on the path every cold byte takes).
//
// What it keeps from upstream:
// - stat is a GET with `Range: bytes=0-0` (a signed object-storage URL is signed for GET, so HEAD may be refused);
//   the total comes from Content-Range. Chunked answers without a length fall back to HEAD; 416 (a 0-byte object on
//   some servers) falls back to a plain GET.
// - 307 targets are cached per URL for `cacheTemporaryRedirectTTL`; Authorization/Cookie are dropped when a
//   redirect leaves the origin (RFC 9110 §15.4).
// - configured headers go under the request's own; no compression is asked for, so the stored bytes are the
//   origin's bytes; HTTP/1.1 only.
// What it adds: every ranged answer is checked against the range asked for, and the body is counted (source-body.ts).

import { validateHeaderName, validateHeaderValue } from 'node:http';
import { X509Certificate } from 'node:crypto';
import { rootCertificates } from 'node:tls';
import { Http1Agent } from '../http-client/http1-agent.js';
import { DfError } from '../core/errors.js';
import { answerChanged, hasValidator, preconditionHeaders, validatorOf } from '../core/validator.js';
import type { Backend, ByteRange, GetRequest, GetResponse, StatRequest, StatResponse } from './backend.js';
import { CallScope, redactUrl } from './call-scope.js';
import {
  backendDetails,
  checkRangedResponse,
  flattenHeaders,
  header,
  isRetryableStatus,
  isSuccess,
  parseContentRange,
  parseLength,
  sourceChanged,
  statusError,
  validateRange,
} from './http-response.js';
import type { Exchange, ExchangeBody } from './http-response.js';
import { SourceBody } from './source-body.js';
import { TemporaryRedirectCache } from './temporary-redirect-cache.js';
import { SourceAddressPolicy } from './address-policy.js';

/** Upstream sends `dragonfly/<client version>`; we announce the upstream version we are a drop-in for. */
export const DEFAULT_USER_AGENT = 'dragonfly/1.5.1';

/** Redirect hops followed per request before giving up (reqwest's default policy stops at 10 too). */
export const MAX_REDIRECTS = 10;

/** First retry waits this long; each further retry doubles it, up to RETRY_BACKOFF_MAX_MS. */
export const RETRY_BACKOFF_BASE_MS = 100;
export const RETRY_BACKOFF_MAX_MS = 2000;

/** An error or redirect body up to this size is read to the end so the connection can be reused; else closed. */
const DISCARD_BODY_LIMIT = 64 * 1024;

/** Idle keep-alive sockets are kept this long unless the origin asks for less. */
const KEEP_ALIVE_TIMEOUT_MS = 60_000;

/** `close()` waits this long for requests in flight before cutting their connections. */
const CLOSE_GRACE_MS = 5_000;

const REDIRECT_STATUSES: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);

/** Headers that describe one hop or a request body; never forwarded to the origin. */
const HOP_BY_HOP_HEADERS: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'expect',
  'content-length',
  // The range is the request's `range` field, never a header passed through; nor the client's If-Range, which
  // only qualifies the client's Range (with a stale validator every piece came back as a 200 of the whole object).
  'range',
  'if-range',
]);

/** Credentials that must not follow a redirect to another origin (as reqwest's `remove_sensitive_headers`). */
const CROSS_ORIGIN_STRIPPED_HEADERS = [
  'authorization',
  'cookie',
  'cookie2',
  'proxy-authorization',
  'www-authenticate',
  'host',
] as const;

export interface HttpBackendOptions {
  /** Extra attempts after a retryable failure (5xx, 429, timeout, connection error), before the body streams. */
  maxRetries: number;
  enableCacheTemporaryRedirect: boolean;
  cacheTemporaryRedirectTTLMs: number;
  /** Configured default headers (`backend.requestHeader`), sent unless the request sets the same header. */
  requestHeader: Record<string, string>;
  connectTimeoutMs?: number;
  /** Extra trusted certificates (PEM or DER), added to the system roots; from `Download.certificate_chain`. */
  ca?: Buffer[];
  /** Accept any server certificate (upstream's default TLS config does not verify). */
  insecureSkipVerify?: boolean;
  /** Clock for the redirect cache TTL; tests inject one. */
  now?: () => number;
  /**
   * Where a request made on a remote caller's behalf (StatRequest/GetRequest.remoteCaller) may connect
   * (security.allowedPrivateSources). Absent: such requests reach no loopback, link-local or private address.
   */
  sourcePolicy?: SourceAddressPolicy;
}

export class HttpBackend implements Backend {
  readonly scheme: string;
  /** Our own HTTP/1.1 agent (http and https), whose bodies come without a buffer per socket read (http1-agent.ts). */
  private readonly agent: Http1Agent;
  /** The agent of requests made on a remote caller's behalf: every connection checked by the source policy. */
  private readonly remoteAgent: Http1Agent;
  private readonly maxRetries: number;
  private readonly defaultHeaders: Record<string, string>;
  private readonly redirects: TemporaryRedirectCache | undefined;
  private closing: Promise<void> | undefined;

  constructor(scheme: string, options: HttpBackendOptions) {
    if (scheme !== 'http' && scheme !== 'https') {
      throw new DfError('INVALID_ARGUMENT', `http backend serves http and https, not "${scheme}"`);
    }
    validateOptions(options);
    this.scheme = scheme;
    this.maxRetries = options.maxRetries;
    this.defaultHeaders = lowerCaseHeaders(options.requestHeader);
    this.redirects = options.enableCacheTemporaryRedirect
      ? new TemporaryRedirectCache({ ttlMs: options.cacheTemporaryRedirectTTLMs, now: options.now })
      : undefined;
    const agentOptions = {
      connectTimeoutMs: options.connectTimeoutMs,
      keepAliveTimeoutMs: KEEP_ALIVE_TIMEOUT_MS,
      tls: {
        rejectUnauthorized: options.insecureSkipVerify !== true,
        // Node's `ca` replaces the system roots; the configured chain is meant to extend them.
        ca: options.ca && options.ca.length > 0 ? [...rootCertificates, ...options.ca.map(toPem)] : undefined,
      },
    };
    const policy = options.sourcePolicy ?? SourceAddressPolicy.denyPrivate();
    this.agent = new Http1Agent(agentOptions);
    this.remoteAgent = new Http1Agent({
      ...agentOptions,
      resolveHost: (host, port) => policy.resolve(host, port),
    });
  }

  async stat(req: StatRequest): Promise<StatResponse> {
    const scope = new CallScope(req.timeoutMs, req.signal, redactUrl(req.url), req.remoteCaller);
    try {
      const headers = this.makeHeaders(req.requestHeader, { start: 0, length: 1 });
      let ex = await this.send('GET', req.url, headers, scope);
      if (ex.statusCode === 416) {
        // Some servers answer 416 to `bytes=0-0` for a 0-byte object: ask again without a range.
        await discard(ex.body);
        ex = await this.send('GET', req.url, withoutRange(headers), scope);
      } else if (
        isSuccess(ex.statusCode) &&
        ex.headers['transfer-encoding'] !== undefined &&
        ex.headers['content-length'] === undefined
      ) {
        // A chunked answer without a length (the origin ignored the range): HEAD may still tell the length.
        // (Upstream also does this for error answers; an error is reported as it is instead.)
        await discard(ex.body);
        const head = await this.send('HEAD', req.url, withoutRange(headers), scope);
        // An origin that refuses HEAD (405, or a URL signed for GET only) leaves the GET's answer: no length.
        if (isSuccess(head.statusCode)) ex = head;
        else await discard(head.body);
      }

      if (!isSuccess(ex.statusCode)) {
        await discard(ex.body);
        throw statusError(ex, req.url);
      }

      const responseHeader = flattenHeaders(ex.headers);
      let contentLength: number | undefined;
      if (ex.statusCode === 206) {
        contentLength = parseContentRange(header(ex.headers, 'content-range'))?.total;
        // The stat's headers become the task's response headers, echoed to clients: make them look like the
        // full object's.
        delete responseHeader['content-range'];
        if (contentLength !== undefined) responseHeader['content-length'] = String(contentLength);
        else delete responseHeader['content-length'];
      } else {
        contentLength = parseLength(header(ex.headers, 'content-length'));
      }
      await discard(ex.body);
      return { contentLength, responseHeader, statusCode: ex.statusCode };
    } catch (e) {
      throw scope.toError(e, req.url);
    } finally {
      scope.release();
    }
  }

  async get(req: GetRequest): Promise<GetResponse> {
    if (req.range !== undefined) validateRange(req.range);
    const scope = new CallScope(req.timeoutMs, req.signal, redactUrl(req.url), req.remoteCaller);
    try {
      const headers = this.makeHeaders(req.requestHeader, req.range);
      // The piece must be of the version the task started with. If-Match (strong ETag) or If-Unmodified-Since
      // (Last-Modified) rather than If-Range: a changed object is a 412 without a body, which cannot be mistaken
      // for an origin that ignores Range (If-Range answers a change with 200 and the whole new object, the same
      // as such an origin, and for a piece that covers the whole object, indistinguishable from a good answer).
      const validator =
        req.validator !== undefined && hasValidator(req.validator) ? req.validator : undefined;
      const preconditions = validator ? preconditionHeaders(validator) : {};
      Object.assign(headers, preconditions);
      const ex = await this.send('GET', req.url, headers, scope);
      if (ex.statusCode === 412 && Object.keys(preconditions).length > 0) {
        await discard(ex.body);
        const [name, value] = Object.entries(preconditions)[0]!;
        throw sourceChanged(req.url, `origin answered 412 to ${headerCase(name)}: ${value}`);
      }
      if (!isSuccess(ex.statusCode)) {
        await discard(ex.body);
        throw statusError(ex, req.url);
      }
      let expectedLength: number | undefined;
      try {
        // An origin that ignores preconditions still names its version in most answers: compare it.
        const changed = validator
          ? answerChanged(validator, validatorOf(flattenHeaders(ex.headers)))
          : undefined;
        if (changed !== undefined) throw sourceChanged(req.url, changed);
        expectedLength = checkRangedResponse(req.range, ex);
      } catch (e) {
        await discard(ex.body);
        throw e;
      }
      const body = new SourceBody(ex.body, {
        expectedLength,
        description: redactUrl(req.url),
        mapError: (error, received) => scope.toBodyError(error, received, expectedLength),
        onClose: () => scope.release(),
      });
      return { statusCode: ex.statusCode, responseHeader: flattenHeaders(ex.headers), body };
    } catch (e) {
      scope.release();
      throw scope.toError(e, req.url);
    }
  }

  close(): Promise<void> {
    this.closing ??= Promise.all([this.agent, this.remoteAgent].map(closeAgent)).then(() => undefined);
    return this.closing;
  }

  /** Configured defaults under the request's headers, hop-by-hop headers dropped, then range and user agent. */
  private makeHeaders(
    requestHeader: Record<string, string>,
    range: ByteRange | undefined,
  ): Record<string, string> {
    const headers: Record<string, string> = { ...this.defaultHeaders };
    for (const [name, value] of Object.entries(requestHeader)) headers[name.toLowerCase()] = value;
    for (const name of Object.keys(headers)) if (HOP_BY_HOP_HEADERS.has(name)) delete headers[name];
    if (range !== undefined) headers['range'] = `bytes=${range.start}-${range.start + range.length - 1}`;
    headers['user-agent'] ??= DEFAULT_USER_AGENT;
    return headers;
  }

  /**
   * One logical request: redirects followed, retried on 5xx/429 and on connection failures and timeouts, until
   * `maxRetries` extra attempts are spent or the call's deadline passes. The last answer is returned as it is.
   */
  private async send(
    method: 'GET' | 'HEAD',
    url: string,
    headers: Record<string, string>,
    scope: CallScope,
  ): Promise<Exchange> {
    for (let attempt = 0; ; attempt++) {
      try {
        const ex = await this.follow(method, url, headers, scope);
        if (!isRetryableStatus(ex.statusCode) || attempt >= this.maxRetries) return ex;
        await discard(ex.body);
      } catch (e) {
        const error = scope.toError(e, url);
        if (!error.retryable || scope.signal.aborted || attempt >= this.maxRetries) throw error;
      }
      await scope.sleep(retryDelay(attempt));
    }
  }

  /** Follows redirects from `url`, using and filling the 307 cache. */
  private async follow(
    method: 'GET' | 'HEAD',
    url: string,
    headers: Record<string, string>,
    scope: CallScope,
    useCache = true,
  ): Promise<Exchange> {
    let current = url;
    let currentHeaders = headers;
    const usedCacheEntries: string[] = [];
    for (let hop = 0; ; hop++) {
      const cached = useCache ? this.redirects?.get(current) : undefined;
      if (cached !== undefined) {
        usedCacheEntries.push(current);
        currentHeaders = headersForRedirect(currentHeaders, current, cached);
        current = cached;
      }
      const ex: Exchange = { ...(await this.request(method, current, currentHeaders, scope)), url: current };

      if (!REDIRECT_STATUSES.has(ex.statusCode) || header(ex.headers, 'location') === undefined) {
        if (ex.statusCode >= 400 && usedCacheEntries.length > 0) {
          // A cached target went stale before its TTL (say, a presigned URL expired): forget it and ask the
          // original URL again, once.
          for (const entry of usedCacheEntries) this.redirects?.delete(entry);
          await discard(ex.body);
          return this.follow(method, url, headers, scope, false);
        }
        return ex;
      }

      await discard(ex.body);
      if (hop + usedCacheEntries.length >= MAX_REDIRECTS) {
        throw new DfError(
          'BACKEND',
          `backend error: more than ${MAX_REDIRECTS} redirects from ${redactUrl(url)}`,
          {
            backend: backendDetails(ex, `more than ${MAX_REDIRECTS} redirects`),
          },
        );
      }
      const location = header(ex.headers, 'location') as string;
      let target: string;
      try {
        target = new URL(location, current).href;
      } catch (cause) {
        throw new DfError(
          'BACKEND',
          `backend error: invalid redirect location "${location}" from ${redactUrl(current)}`,
          {
            cause,
            backend: backendDetails(ex, 'invalid redirect location'),
          },
        );
      }
      if (ex.statusCode === 307) this.redirects?.set(current, target);
      currentHeaders = headersForRedirect(currentHeaders, current, target);
      current = target;
    }
  }

  /** One request and its answer's head. */
  private request(
    method: 'GET' | 'HEAD',
    url: string,
    headers: Record<string, string>,
    scope: CallScope,
  ): Promise<Omit<Exchange, 'url'>> {
    return (scope.remoteCaller ? this.remoteAgent : this.agent).request(url, {
      method,
      headers,
      signal: scope.signal,
      headersTimeoutMs: scope.timeoutMs,
      bodyTimeoutMs: scope.timeoutMs,
    });
  }
}

/** `if-match` → `If-Match`, for messages. */
function headerCase(name: string): string {
  return name.replace(/(^|-)([a-z])/g, (_, dash: string, c: string) => dash + c.toUpperCase());
}

function lowerCaseHeaders(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) out[name.toLowerCase()] = value;
  return out;
}

function withoutRange(headers: Record<string, string>): Record<string, string> {
  const { range: _range, ...rest } = headers;
  return rest;
}

/** The headers for the next hop: credentials (and Host) are dropped when the redirect changes origin. */
function headersForRedirect(
  headers: Record<string, string>,
  from: string,
  to: string,
): Record<string, string> {
  if (sameOrigin(from, to)) return headers;
  const next = { ...headers };
  for (const name of CROSS_ORIGIN_STRIPPED_HEADERS) delete next[name];
  return next;
}

function sameOrigin(a: string, b: string): boolean {
  try {
    return new URL(a).origin === new URL(b).origin;
  } catch {
    return false;
  }
}

/** Exponential backoff with ±20% jitter, so peers retrying the same origin spread out. */
function retryDelay(attempt: number): number {
  const base = Math.min(RETRY_BACKOFF_BASE_MS * 2 ** attempt, RETRY_BACKOFF_MAX_MS);
  return Math.round(base * (0.8 + Math.random() * 0.4));
}

/** Reads a small body to its end (keeping the connection) or closes a large one; never throws. */
async function discard(body: ExchangeBody): Promise<void> {
  try {
    await body.dump({ limit: DISCARD_BODY_LIMIT });
  } catch {
    // The body is unwanted; a failure to drain it only costs the connection.
  }
}

/** Node's `ca` takes PEM; a certificate chain from the download request is DER. */
function toPem(cert: Buffer): string | Buffer {
  if (cert.includes('-----BEGIN')) return cert;
  try {
    return new X509Certificate(cert).toString();
  } catch (cause) {
    throw new DfError('INVALID_ARGUMENT', 'invalid certificate in the backend certificate chain', { cause });
  }
}

async function closeAgent(agent: Http1Agent): Promise<void> {
  const timer = setTimeout(() => agent.destroy(), CLOSE_GRACE_MS);
  timer.unref();
  try {
    await agent.close();
  } catch {
    // destroy() above cut it short; either way the agent is closed.
  } finally {
    clearTimeout(timer);
  }
}

function validateOptions(options: HttpBackendOptions): void {
  const invalid = (key: string, value: unknown, expected: string) =>
    new DfError('INVALID_CONFIG', `invalid backend.${key}: ${JSON.stringify(value)}; expected ${expected}`);
  if (!Number.isSafeInteger(options.maxRetries) || options.maxRetries < 0) {
    throw invalid('maxRetries', options.maxRetries, 'an integer >= 0');
  }
  if (!Number.isFinite(options.cacheTemporaryRedirectTTLMs) || options.cacheTemporaryRedirectTTLMs < 0) {
    throw invalid('cacheTemporaryRedirectTTL', options.cacheTemporaryRedirectTTLMs, 'a duration >= 0');
  }
  if (
    options.connectTimeoutMs !== undefined &&
    (!Number.isFinite(options.connectTimeoutMs) || options.connectTimeoutMs <= 0)
  ) {
    throw invalid('connectTimeout', options.connectTimeoutMs, 'a duration > 0');
  }
  for (const [name, value] of Object.entries(options.requestHeader)) {
    try {
      validateHeaderName(name);
      validateHeaderValue(name, value);
    } catch {
      throw invalid(`requestHeader.${name}`, value, 'a valid HTTP header name and value');
    }
  }
}
