// The Backend interface: how the daemon reaches a task's source (back-to-source). One implementation per source
// family (http.ts for http/https, object-storage.ts for s3/gs/abs/oss/obs/cos, hdfs.ts for hdfs, hub.ts for
// hf/modelscope/opencsg; JS plugins from plugins.ts), chosen by URL scheme in factory.ts.
// Mirrors upstream `dragonfly-client-backend/src/lib.rs` (`trait Backend`), keeping only what the daemon calls:
// `stat` before a task starts, `get` per piece, and directory listing for the schemes that have directories.

import type { SourceValidator } from '../core/validator.js';
import type { HDFS, HuggingFace } from '../gen/common.js';

/**
 * Revision, token and mirror base URL of a model hub download: common.v2 HuggingFace, ModelScope and OpenCSG have
 * the same three fields.
 */
export type HubOptions = HuggingFace;

/** The hub message a Download (or ListTaskEntries request) carries, whichever hub it is for. */
export function hubOptionsOf(m: {
  huggingFace?: HubOptions;
  modelScope?: HubOptions;
  openCsg?: HubOptions;
}): HubOptions | undefined {
  return m.huggingFace ?? m.modelScope ?? m.openCsg;
}

/** The delegation token of an hdfs:// download (common.v2.HDFS: dfget's --hdfs-delegation-token). */
export type HdfsOptions = HDFS;

/**
 * How to reach an object store (common.v2.ObjectStorage, field for field): dfget's `--storage-*` flags, carried in
 * the Download so that a seed peer fetching on a child's behalf signs with the child's credentials.
 */
export interface ObjectStorageOptions {
  region?: string;
  endpoint?: string;
  accessKeyId?: string;
  accessKeySecret?: string;
  sessionToken?: string;
  credentialPath?: string;
  predefinedAcl?: string;
  securityToken?: string;
  insecureSkipVerify?: boolean;
}

/** Ask the source for the size and headers of an object, before the task's pieces are planned. */
export interface StatRequest {
  taskId: string;
  url: string;
  /** Headers from the download request; the backend's configured defaults are merged under these. */
  requestHeader: Record<string, string>;
  /** Bound on the whole call, retries included. */
  timeoutMs: number;
  signal?: AbortSignal;
  /**
   * Made on a remote caller's behalf (a scheduler's trigger, a proxy client on another host): the source may not
   * be a loopback, link-local or private address unless security.allowedPrivateSources names it.
   */
  remoteCaller?: boolean;
  /** Credentials and endpoint for the object storage schemes; ignored by the others. */
  objectStorage?: ObjectStorageOptions;
  /** Revision, token and mirror base URL for the model hub schemes (hf, modelscope, opencsg); ignored by the others. */
  hub?: HubOptions;
  /** The WebHDFS delegation token for hdfs; ignored by the others. */
  hdfs?: HdfsOptions;
}

export interface StatResponse {
  /** Total length of the object; undefined when the source does not say (the daemon then refuses the task). */
  contentLength?: number;
  /** The source's headers, shaped like a full (non-ranged) response: no Content-Range, Content-Length = total. */
  responseHeader: Record<string, string>;
  statusCode: number;
}

/** A byte range of the object: `length` bytes starting at `start` (HTTP `bytes=start-(start+length-1)`). */
export interface ByteRange {
  start: number;
  length: number;
}

/** Fetch one piece (or the whole object when `range` is absent) from the source. */
export interface GetRequest {
  taskId: string;
  pieceNumber: number;
  url: string;
  range?: ByteRange;
  requestHeader: Record<string, string>;
  /**
   * The version of the object the task started with (the stat's ETag / Last-Modified). When given, the request
   * is conditional on it and an answer of another version fails with SOURCE_CHANGED instead of yielding bytes.
   */
  validator?: SourceValidator;
  /** Bound on the whole call including reading the body, as upstream's per-piece `pieceTimeout`. */
  timeoutMs: number;
  signal?: AbortSignal;
  /** As StatRequest.remoteCaller. */
  remoteCaller?: boolean;
  /** As StatRequest.objectStorage. */
  objectStorage?: ObjectStorageOptions;
  /** As StatRequest.hub. */
  hub?: HubOptions;
  /** As StatRequest.hdfs. */
  hdfs?: HdfsOptions;
}

export interface GetResponse {
  statusCode: number;
  responseHeader: Record<string, string>;
  /**
   * The body, streamed, read once. It yields exactly the requested bytes or ends with an error (a DfError):
   * a short or overlong body never looks like a finished piece. A chunk is valid only until the next one is asked
   * for (a backend may read into a buffer it reuses); a reader that keeps bytes copies them.
   */
  body: AsyncIterable<Buffer>;
}

/**
 * Write a local file as the object at `url` (dfstore import; upstream `Backend::put`): in chunks of `chunkSize`
 * bytes, up to `concurrentChunkCount` of them in flight (a multipart upload where the store has one).
 */
export interface PutRequest {
  taskId: string;
  url: string;
  /** The file to write (the daemon's stored copy). */
  path: string;
  /** backend.putChunkSize */
  chunkSize: number;
  /** backend.putConcurrentChunkCount */
  concurrentChunkCount: number;
  /** backend.putTimeout: bound on the whole upload. */
  timeoutMs: number;
  signal?: AbortSignal;
  objectStorage?: ObjectStorageOptions;
}

/** One entry of a directory listing (upstream `DirEntry`), for recursive downloads. */
export interface DirEntry {
  url: string;
  contentLength: number;
  isDir: boolean;
}

export interface Backend {
  /** The URL scheme this backend serves, e.g. `https`. */
  readonly scheme: string;
  stat(request: StatRequest): Promise<StatResponse>;
  get(request: GetRequest): Promise<GetResponse>;
  /**
   * Lists the entries under a directory URL (a URL ending in `/`). Optional: only backends whose sources have
   * directories (object storage, hdfs, hf) implement it; see `unsupportedDownloadDirectory`.
   */
  listEntries?(request: StatRequest): Promise<DirEntry[]>;
  /** Writes a file as the object (object storage only: the backing store of dfstore's persistent tasks). */
  put?(request: PutRequest): Promise<void>;
  /** Whether the object exists (object storage only). */
  exists?(request: StatRequest): Promise<boolean>;
  /** Releases connections; idempotent. */
  close(): Promise<void>;
}

/** A backend that can list directories. */
export type ListingBackend = Backend & Required<Pick<Backend, 'listEntries'>>;

export function canListEntries(backend: Backend): backend is ListingBackend {
  return typeof backend.listEntries === 'function';
}

/** A backend that can write objects (dfstore's object storage). */
export type WritableBackend = Backend & Required<Pick<Backend, 'put' | 'exists'>>;

export function canPut(backend: Backend): backend is WritableBackend {
  return typeof backend.put === 'function' && typeof backend.exists === 'function';
}

/** The schemes that have no notion of a directory, so a recursive download of them is refused (as upstream). */
const SCHEMES_WITHOUT_DIRECTORIES: ReadonlySet<string> = new Set(['http', 'https']);

/** Whether a recursive (directory) download is impossible for this scheme. */
export function unsupportedDownloadDirectory(scheme: string): boolean {
  return SCHEMES_WITHOUT_DIRECTORIES.has(scheme);
}
