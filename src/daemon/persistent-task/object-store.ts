// A persistent task's copy of record: its object, reached through the object storage backend (opendal) with the
// request's credentials. The import writes it (put, under backend.putTimeout), the export reads pieces from it
// when no peer has them. A missing object is TASK_NOT_FOUND (gRPC NOT_FOUND), told in one line.

import type { Backend, GetResponse, ObjectStorageOptions } from '../../backend/backend.js';
import { canPut, type WritableBackend } from '../../backend/backend.js';
import { DfError, isDfError } from '../../core/errors.js';
import type { PieceSpan } from '../../core/piece.js';

export interface ObjectStoreOptions {
  /** The backend of a URL's scheme (BackendFactory.get). */
  backendFor: (url: string) => Backend;
  /** backend.putChunkSize */
  putChunkSize: number;
  /** backend.putConcurrentChunkCount */
  putConcurrentChunkCount: number;
  /** backend.putTimeout: the whole upload, and the existence check before it. */
  putTimeoutMs: number;
  /** download.pieceTimeout: one piece from the store. */
  pieceTimeoutMs: number;
}

export class ObjectStore {
  constructor(private readonly o: ObjectStoreOptions) {}

  async exists(
    taskId: string,
    url: string,
    objectStorage: ObjectStorageOptions | undefined,
    signal?: AbortSignal,
  ): Promise<boolean> {
    return this.writable(url).exists({
      taskId,
      url,
      requestHeader: {},
      timeoutMs: this.o.putTimeoutMs,
      signal,
      objectStorage,
    });
  }

  async put(
    taskId: string,
    url: string,
    path: string,
    objectStorage: ObjectStorageOptions | undefined,
    signal?: AbortSignal,
  ): Promise<void> {
    await this.writable(url).put({
      taskId,
      url,
      path,
      chunkSize: this.o.putChunkSize,
      concurrentChunkCount: this.o.putConcurrentChunkCount,
      timeoutMs: this.o.putTimeoutMs,
      signal,
      objectStorage,
    });
  }

  /**
   * The object's length; TASK_NOT_FOUND when there is no such object. `remoteCaller`: on a scheduler's behalf (a
   * replica), so the endpoint must be one security.allowedPrivateSources allows if it is not public.
   */
  async contentLength(
    taskId: string,
    url: string,
    objectStorage: ObjectStorageOptions | undefined,
    signal: AbortSignal | undefined,
    remoteCaller: boolean,
  ): Promise<number> {
    try {
      const stat = await this.writable(url).stat({
        taskId,
        url,
        requestHeader: {},
        timeoutMs: this.o.pieceTimeoutMs,
        signal,
        objectStorage,
        remoteCaller,
      });
      if (stat.contentLength === undefined) {
        throw new DfError('BACKEND', `${url}: the store did not tell the object's length`);
      }
      return stat.contentLength;
    } catch (e) {
      throw notFound(e);
    }
  }

  async piece(
    taskId: string,
    url: string,
    objectStorage: ObjectStorageOptions | undefined,
    span: PieceSpan,
    signal: AbortSignal,
    remoteCaller: boolean,
  ): Promise<GetResponse> {
    try {
      return await this.writable(url).get({
        taskId,
        pieceNumber: span.number,
        url,
        range: { start: span.offset, length: span.length },
        requestHeader: {},
        timeoutMs: this.o.pieceTimeoutMs,
        signal,
        objectStorage,
        remoteCaller,
      });
    } catch (e) {
      throw notFound(e);
    }
  }

  private writable(url: string): WritableBackend {
    const backend = this.o.backendFor(url);
    if (!canPut(backend)) {
      throw new DfError(
        'INVALID_ARGUMENT',
        `${backend.scheme} cannot hold persistent tasks: use an object storage URL (s3, gs, abs, oss, obs, cos)`,
      );
    }
    return backend;
  }
}

/** The store's 404 as TASK_NOT_FOUND, so that the caller hears NOT_FOUND; its message is kept. */
function notFound(e: unknown): unknown {
  if (
    isDfError(e) &&
    e.code === 'BACKEND' &&
    (e.backend?.statusCode === 404 || /: NOT_FOUND: no such object/.test(e.message))
  ) {
    return new DfError('TASK_NOT_FOUND', e.message);
  }
  return e;
}
