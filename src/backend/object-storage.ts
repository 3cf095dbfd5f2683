// The object storage backend (upstream `dragonfly-client-backend/src/object_storage.rs`): s3, gs, abs, oss, obs
// and cos through opendal, the engine upstream uses, so no signing is written here.
//
// - stat and listing are opendal calls; the stat's ETag and Last-Modified become the task's validator.
// - a piece is a ranged GET of a URL opendal presigns, made by the http backend: it streams into storage (no
//   piece held in memory), is conditional on the task's ETag, and is refused when the answer names another
//   ETag, even from a store that ignores If-Match. A service that cannot presign (gs without a credential file)
//   reads through opendal with If-Match instead, then checks the ETag with a stat: one piece in memory and one
//   more request per piece.
// - on a remote caller's behalf, the endpoint must be an address the source policy allows.

import { open } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { Operator } from 'opendal';
import { DfError } from '../core/errors.js';
import { answerChanged, preconditionHeaders } from '../core/validator.js';
import type {
  Backend,
  DirEntry,
  GetRequest,
  GetResponse,
  ObjectStorageOptions,
  PutRequest,
  StatRequest,
  StatResponse,
} from './backend.js';
import { SourceAddressPolicy } from './address-policy.js';
import { HttpBackend, type HttpBackendOptions } from './http.js';
import { objectStorageError, parseOpendalError } from './object-storage-errors.js';
import { OperatorCache } from './object-storage-operator.js';
import { isObjectStorageScheme } from '../core/object-storage-scheme.js';
import {
  describeObject,
  entryUrl,
  parseObjectStorageUrl,
  type ObjectStorageUrl,
} from './object-storage-url.js';

/** Entries one listing may return: a bound on memory for a prefix with millions of keys (dfget's --max-files is 100). */
export const MAX_LIST_ENTRIES = 100_000;

/** A presigned URL outlives the piece it is for by this much (clock skew between us and the store). */
const PRESIGN_SLACK_SECONDS = 300;

export class ObjectStorageBackend implements Backend {
  readonly scheme: string;
  private readonly operators = new OperatorCache();
  /** Makes the presigned piece requests; a second one skips TLS verification (ObjectStorage.insecureSkipVerify). */
  private readonly http: HttpBackend;
  private readonly insecureHttp: HttpBackend;
  private readonly policy: SourceAddressPolicy;

  constructor(scheme: string, options: HttpBackendOptions) {
    if (!isObjectStorageScheme(scheme)) {
      throw new DfError('INVALID_ARGUMENT', `object storage backend does not serve "${scheme}"`);
    }
    this.scheme = scheme;
    // The store's answers are not the user's origin: the configured default headers (backend.requestHeader) are
    // meant for http sources and would break the signature of a presigned URL.
    const httpOptions = { ...options, requestHeader: {}, enableCacheTemporaryRedirect: false };
    this.http = new HttpBackend('https', httpOptions);
    this.insecureHttp = new HttpBackend('https', { ...httpOptions, insecureSkipVerify: true });
    this.policy = options.sourcePolicy ?? SourceAddressPolicy.denyPrivate();
  }

  async stat(req: StatRequest): Promise<StatResponse> {
    const parsed = this.parse(req.url);
    if (parsed.isDir) {
      throw new DfError(
        'INVALID_ARGUMENT',
        `${describeObject(parsed)} is a directory (the URL ends with /): download it with dfget --recursive`,
      );
    }
    const op = await this.operator(parsed, req.objectStorage, req.remoteCaller);
    let meta;
    try {
      meta = await withSignal(op.stat(parsed.key), req.signal, req.timeoutMs);
    } catch (e) {
      throw objectStorageError(e, parsed, 'stat');
    }
    if (meta.isDirectory()) {
      throw new DfError(
        'INVALID_ARGUMENT',
        `${describeObject(parsed)} is a directory: download it with dfget --recursive`,
      );
    }
    const contentLength = meta.contentLength === null ? undefined : Number(meta.contentLength);
    const responseHeader: Record<string, string> = {};
    if (contentLength !== undefined) responseHeader['content-length'] = String(contentLength);
    if (meta.etag) responseHeader.etag = meta.etag;
    if (meta.lastModified) responseHeader['last-modified'] = new Date(meta.lastModified).toUTCString();
    if (meta.contentType) responseHeader['content-type'] = meta.contentType;
    return { contentLength, responseHeader, statusCode: 200 };
  }

  async get(req: GetRequest): Promise<GetResponse> {
    const parsed = this.parse(req.url);
    const options = req.objectStorage ?? {};
    const op = await this.operator(parsed, options, req.remoteCaller);
    const presigned = await this.presign(op, parsed, options, req.timeoutMs);
    if (presigned) {
      const http = options.insecureSkipVerify ? this.insecureHttp : this.http;
      try {
        return await http.get({ ...req, url: presigned.url, requestHeader: presigned.headers });
      } catch (e) {
        throw pieceError(e, parsed, req.pieceNumber);
      }
    }
    return this.readThroughOperator(op, parsed, req);
  }

  async listEntries(req: StatRequest): Promise<DirEntry[]> {
    const parsed = this.parse(req.url);
    if (!parsed.isDir) {
      throw new DfError(
        'INVALID_ARGUMENT',
        `${describeObject(parsed)} is not a directory: a listed URL ends with /`,
      );
    }
    const op = await this.operator(parsed, req.objectStorage, req.remoteCaller);
    let listed;
    try {
      listed = await withSignal(op.list(parsed.key, { recursive: true }), req.signal, req.timeoutMs);
    } catch (e) {
      throw objectStorageError(e, parsed, 'list');
    }
    // opendal 0.49.1's binding has no streaming lister: the whole listing arrives at once, then is bounded.
    if (listed.length > MAX_LIST_ENTRIES) {
      throw new DfError(
        'RESOURCE_EXHAUSTED',
        `${describeObject(parsed)} holds ${listed.length} entries, more than ${MAX_LIST_ENTRIES}: list a narrower prefix`,
      );
    }
    const entries: DirEntry[] = [];
    for (const entry of listed) {
      const path = entry.path();
      if (path === parsed.key) continue;
      const meta = entry.metadata();
      entries.push({
        url: entryUrl(parsed, path),
        contentLength: Number(meta.contentLength ?? 0n),
        isDir: meta.isDirectory(),
      });
    }
    return entries;
  }

  /**
   * dfstore import's copy in the store, through opendal's writer: `chunk` makes it a multipart upload of parts of
   * that size, `concurrent` keeps that many parts in flight (so memory is about chunkSize × concurrentChunkCount,
   * as upstream's). The file is read one chunk at a time; the writer's backpressure is its awaited write().
   */
  async put(req: PutRequest): Promise<void> {
    const parsed = this.parse(req.url);
    if (parsed.isDir) {
      throw new DfError('INVALID_ARGUMENT', `${describeObject(parsed)} is a directory: name an object`);
    }
    const op = await this.operator(parsed, req.objectStorage, false);
    const work = (async () => {
      const writer = await op.writer(parsed.key, {
        chunk: BigInt(req.chunkSize),
        concurrent: Math.max(1, req.concurrentChunkCount),
      });
      const file = await open(req.path, 'r');
      try {
        for (;;) {
          const buf = Buffer.allocUnsafe(req.chunkSize);
          const { bytesRead } = await file.read(buf, 0, req.chunkSize, null);
          if (bytesRead === 0) break;
          await writer.write(bytesRead === req.chunkSize ? buf : buf.subarray(0, bytesRead));
        }
        await writer.close();
      } finally {
        await file.close();
      }
    })();
    try {
      await withSignal(work, req.signal, req.timeoutMs);
    } catch (e) {
      throw objectStorageError(e, parsed, 'put');
    }
  }

  async exists(req: StatRequest): Promise<boolean> {
    const parsed = this.parse(req.url);
    const op = await this.operator(parsed, req.objectStorage, req.remoteCaller);
    try {
      return await withSignal(op.exists(parsed.key), req.signal, req.timeoutMs);
    } catch (e) {
      throw objectStorageError(e, parsed, 'stat');
    }
  }

  async close(): Promise<void> {
    this.operators.clear();
    await Promise.all([this.http.close(), this.insecureHttp.close()]);
  }

  private parse(url: string): ObjectStorageUrl {
    const parsed = parseObjectStorageUrl(url);
    if (parsed.scheme !== this.scheme) {
      throw new DfError('INVALID_ARGUMENT', `${this.scheme} backend cannot serve ${describeObject(parsed)}`);
    }
    return parsed;
  }

  private async operator(
    parsed: ObjectStorageUrl,
    options: ObjectStorageOptions | undefined,
    remoteCaller: boolean | undefined,
  ): Promise<Operator> {
    const o = options ?? {};
    // opendal connects by itself, so the endpoint is checked here; the piece requests are checked again on the
    // address connected to (the http backend's remote agent).
    if (remoteCaller && o.endpoint) await this.policy.checkUrl(o.endpoint);
    return this.operators.get(parsed, o);
  }

  /**
   * A presigned GET for the object, or undefined when the service cannot sign one: gs without a credential file
   * (its unsigned URL is not the JSON API opendal reads from) or a service opendal has no presigner for. (The
   * binding's capability() says no for azblob, whose shared-key SAS presigning works: so it is tried.)
   */
  private async presign(
    op: Operator,
    parsed: ObjectStorageUrl,
    options: ObjectStorageOptions,
    timeoutMs: number,
  ): Promise<{ url: string; headers: Record<string, string> } | undefined> {
    if (parsed.scheme === 'gs' && !options.credentialPath) return undefined;
    try {
      return await op.presignRead(parsed.key, Math.ceil(timeoutMs / 1000) + PRESIGN_SLACK_SECONDS);
    } catch (e) {
      if (parseOpendalError(e).kind === 'Unsupported') return undefined;
      throw objectStorageError(e, parsed, 'presign');
    }
  }

  /**
   * A piece through opendal (services that cannot presign): one buffer, conditional on the task's ETag. A store
   * that ignores If-Match (emulators do) is still caught: after the read, the object's ETag must be the task's.
   * Stores replace objects whole, so a read of another version is followed by a stat that shows it.
   */
  private async readThroughOperator(
    op: Operator,
    parsed: ObjectStorageUrl,
    req: GetRequest,
  ): Promise<GetResponse> {
    const ifMatch = req.validator ? preconditionHeaders(req.validator)['if-match'] : undefined;
    let data: Buffer;
    try {
      data = await withSignal(
        op.read(parsed.key, {
          offset: req.range ? BigInt(req.range.start) : undefined,
          size: req.range ? BigInt(req.range.length) : undefined,
          ifMatch,
        }),
        req.signal,
        req.timeoutMs,
      );
    } catch (e) {
      throw objectStorageError(e, parsed, `read piece ${req.pieceNumber} of`);
    }
    const recorded = req.validator?.etag;
    if (recorded !== undefined) {
      let now;
      try {
        now = await withSignal(op.stat(parsed.key), req.signal, req.timeoutMs);
      } catch (e) {
        throw objectStorageError(e, parsed, `stat after piece ${req.pieceNumber} of`);
      }
      if (now.etag && answerChanged({ etag: recorded }, { etag: now.etag }) !== undefined) {
        throw new DfError(
          'SOURCE_CHANGED',
          `source changed during the download: ${describeObject(parsed)} is no longer the version the task started with (ETag ${recorded} → ${now.etag})`,
        );
      }
    }
    if (req.range && data.length !== req.range.length) {
      throw new DfError(
        'BACKEND',
        `read piece ${req.pieceNumber} of ${describeObject(parsed)}: got ${data.length} bytes, expected ${req.range.length}`,
        { retryable: true },
      );
    }
    return { statusCode: req.range ? 206 : 200, responseHeader: {}, body: Readable.from([data]) };
  }
}

/**
 * A presigned piece request's error, told as the object's: its message named the store's http URL (without the
 * signature); a 403 or 404 says what the stat would have said.
 */
function pieceError(e: unknown, parsed: ObjectStorageUrl, pieceNumber: number): unknown {
  if (!(e instanceof DfError) || e.code !== 'BACKEND') return e;
  const status = e.backend?.statusCode;
  if (status === 403 || status === 404) {
    return objectStorageError(
      new Error(`${status === 403 ? 'PermissionDenied' : 'NotFound'} (permanent), status: ${status}`),
      parsed,
      `read piece ${pieceNumber} of`,
    );
  }
  return e;
}

/** Races an opendal call (which takes no AbortSignal) against the request's signal and timeout. */
async function withSignal<T>(
  work: Promise<T>,
  signal: AbortSignal | undefined,
  timeoutMs: number,
): Promise<T> {
  const signals = [AbortSignal.timeout(timeoutMs), ...(signal ? [signal] : [])];
  const any = AbortSignal.any(signals);
  if (any.aborted) throw abortError(any, timeoutMs);
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(abortError(any, timeoutMs));
    any.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([work, aborted]);
  } finally {
    any.removeEventListener('abort', onAbort!);
    // The opendal call is not cancelled; its late rejection must not be unhandled.
    work.catch(() => undefined);
  }
}

function abortError(signal: AbortSignal, timeoutMs: number): DfError {
  const reason = signal.reason as Error | undefined;
  if (reason?.name === 'TimeoutError')
    return new DfError('TIMEOUT', `object storage call timed out after ${timeoutMs} ms`);
  return new DfError('CANCELLED', 'object storage call cancelled');
}
