// Task ids: the content address every peer, seed peer and scheduler must agree on, so each byte hashed here is
// fixed by upstream (dragonfly-client-util/src/id_generator/mod.rs, spec §3). A different id is not an error
// anywhere: it silently splits the swarm, which is why the URL normalisation mirrors the Rust `url` crate.

import { createHash } from 'node:crypto';
import { formatDigest, parseDigest, type Digest } from './digest.js';
import { DfError } from './errors.js';

// The default --filtered-query-param list lives in its own module: dfget needs the list, not the hashing (whose
// node:crypto and digest code would add to its start-up).
export { DEFAULT_FILTERED_QUERY_PARAMS } from './filtered-query-params.js';

/** Proto enum value names of common.v2.TaskType; upstream hashes these literal strings as id suffixes. */
export const TASK_TYPE_NAMES = Object.freeze({
  STANDARD: 0,
  PERSISTENT: 1,
  PERSISTENT_CACHE: 2,
  CACHE: 3,
} as const);

function sha256Hex(parts: readonly (string | Uint8Array | undefined)[]): string {
  const hash = createHash('sha256');
  for (const part of parts) if (part !== undefined) hash.update(part);
  return hash.digest('hex');
}

/**
 * The URL string that enters a URL-based task id.
 *
 * WHATWG parsing (lowercased scheme and host, '/' path for special schemes, default port dropped). Query pairs
 * whose decoded key equals (case-sensitively) a filtered name are dropped; the rest are re-serialised in their
 * original order as application/x-www-form-urlencoded — always, even when nothing was filtered, because upstream
 * rebuilds the query unconditionally. With no pairs left the '?' goes. Finally trailing '/' characters are
 * stripped only when the path is exactly '/' (so `https://example.com/` hashes as `https://example.com`, while
 * `https://example.com/?a=b` keeps its slash). URLSearchParams uses the same serialiser as Rust's
 * form_urlencoded, so the strings are byte-identical.
 */
export function normalizeUrl(url: string, filteredQueryParams: readonly string[] = []): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (cause) {
    throw new DfError('INVALID_ARGUMENT', `invalid url "${url}"`, { cause });
  }

  const filtered = new Set(filteredQueryParams);
  const kept = new URLSearchParams();
  for (const [key, value] of parsed.searchParams) {
    if (!filtered.has(key)) kept.append(key, value);
  }
  // Assigning '' removes the '?' (upstream set_query(None)); the serialised form holds only characters the
  // query setter leaves alone, so the assignment does not re-encode it.
  parsed.search = kept.size === 0 ? '' : kept.toString();

  const s = parsed.href;
  // Upstream uses trim_end_matches('/'), which removes every trailing slash (even one ending a fragment).
  return parsed.pathname === '/' ? s.replace(/\/+$/, '') : s;
}

export interface UrlTaskIdParams {
  url: string;
  tag?: string;
  application?: string;
  /** Repository revision for Hugging Face / ModelScope / OpenCSG downloads. */
  revision?: string;
  /** Only an explicitly requested piece length; the computed one never enters the id. */
  pieceLength?: number;
  /**
   * Query keys to ignore. Undefined or empty filters nothing, as the upstream daemon does with the request's
   * (possibly empty) list; clients that want the defaults pass DEFAULT_FILTERED_QUERY_PARAMS, as dfget does.
   */
  filteredQueryParams?: readonly string[];
}

/**
 * sha256(normalizedUrl ‖ tag ‖ application ‖ revision ‖ decimal(pieceLength) ‖ "STANDARD"), lowercase hex, no
 * separators; absent (or empty) fields contribute nothing. The suffix is always STANDARD, whatever
 * Download.type says.
 */
export function taskIdFromUrl(params: UrlTaskIdParams): string {
  const url = normalizeUrl(params.url, params.filteredQueryParams ?? []);
  return sha256Hex([
    url,
    params.tag,
    params.application,
    params.revision,
    params.pieceLength === undefined ? undefined : String(params.pieceLength),
    'STANDARD',
  ]);
}

/** Download.content_for_calculating_task_id: sha256 of the content alone, no suffix. */
export function taskIdFromContent(content: string | Uint8Array): string {
  return sha256Hex([content]);
}

// http(s)://<registry>/v2/<repository>/blobs/<digest>[?query] (util/src/digest/mod.rs BLOB_URL_REGEX).
// Written with [^\n] where upstream has '.', because Rust's '.' excludes only '\n' while JavaScript's also
// excludes '\r' and the Unicode line separators.
const BLOB_URL = /^([^\n]*):\/\/([^\n]*)\/v2\/([^\n]*)\/blobs\/([^?]+)(?:\?[^\n]*)?$/;

/** Whether the URL looks like an OCI blob URL (pattern only; the digest in it may still be malformed). */
export function isBlobUrl(url: string): boolean {
  return BLOB_URL.test(url);
}

/** The digest in an OCI blob URL, or undefined when the URL is not a blob URL or its digest does not parse. */
export function blobDigestFromUrl(url: string): Digest | undefined {
  const m = BLOB_URL.exec(url);
  if (!m) return undefined;
  try {
    return parseDigest(m[4]);
  } catch {
    return undefined;
  }
}

/**
 * With enable_task_id_based_blob_digest: the task id is the blob digest's encoded part itself (no hashing), so
 * the same layer pulled from any registry or repository is one task.
 */
export function taskIdFromBlobDigest(url: string): string {
  const digest = blobDigestFromUrl(url);
  if (!digest)
    throw new DfError('INVALID_ARGUMENT', `invalid blob url "${url}": no valid digest after /blobs/`);
  return digest.encoded;
}

/** Persistent task (object storage backed): sha256(url ‖ region ‖ endpoint ‖ "PERSISTENT"). */
export function persistentTaskId(params: { url: string; region: string; endpoint: string }): string {
  return sha256Hex([params.url, params.region, params.endpoint, 'PERSISTENT']);
}

/** The fields besides the file's bytes that enter a file-content-based persistent cache task id. */
export interface PersistentCacheIdFields {
  tag?: string;
  application?: string;
  pieceLength?: number;
}

/**
 * sha256(file bytes ‖ tag ‖ application ‖ decimal(pieceLength) ‖ "PERSISTENT_CACHE"), fed the file as it is read,
 * so that one pass over a large file both hashes it and copies it.
 */
export class PersistentCacheTaskIdHasher {
  private readonly hash = createHash('sha256');

  update(chunk: Uint8Array | string): void {
    this.hash.update(chunk);
  }

  /** The id; the hasher is spent afterwards. */
  digest(fields: PersistentCacheIdFields): string {
    if (fields.tag !== undefined) this.hash.update(fields.tag);
    if (fields.application !== undefined) this.hash.update(fields.application);
    if (fields.pieceLength !== undefined) this.hash.update(String(fields.pieceLength));
    this.hash.update('PERSISTENT_CACHE');
    return this.hash.digest('hex');
  }
}

/**
 * Persistent cache task: sha256(content) when content_for_calculating_task_id is given; otherwise
 * sha256(file bytes ‖ tag ‖ application ‖ decimal(pieceLength) ‖ "PERSISTENT_CACHE"). Core does no I/O, so the
 * caller passes the file's bytes (or chunks, to hash a large file without holding it whole).
 */
export function persistentCacheTaskId(
  params:
    | { content: string }
    | ({ fileContent: Uint8Array | string | Iterable<Uint8Array> } & PersistentCacheIdFields),
): string {
  if ('content' in params) return taskIdFromContent(params.content);
  const hasher = new PersistentCacheTaskIdHasher();
  const { fileContent } = params;
  if (typeof fileContent === 'string' || fileContent instanceof Uint8Array) hasher.update(fileContent);
  else for (const chunk of fileContent) hasher.update(chunk);
  return hasher.digest(params);
}

/**
 * The fields of common.v2.Download that choose a task id. Structural, so a generated Download passes as is
 * without core depending on generated code.
 */
export interface TaskIdSource {
  url: string;
  tag?: string;
  application?: string;
  pieceLength?: number;
  filteredQueryParams: readonly string[];
  contentForCalculatingTaskId?: string;
  enableTaskIdBasedBlobDigest?: boolean;
  huggingFace?: { revision: string };
  modelScope?: { revision: string };
  openCsg?: { revision: string };
}

/** First present of hugging_face, model_scope, open_csg revision (upstream repository_revision). */
export function repositoryRevision(
  download: Pick<TaskIdSource, 'huggingFace' | 'modelScope' | 'openCsg'>,
): string | undefined {
  return download.huggingFace?.revision ?? download.modelScope?.revision ?? download.openCsg?.revision;
}

/**
 * The task id of a Download, chosen as the upstream download/upload services and proxy do: content if given,
 * else the blob digest when enabled and the URL is a blob URL, else URL based.
 */
export function selectTaskId(download: TaskIdSource): string {
  if (download.contentForCalculatingTaskId !== undefined) {
    return taskIdFromContent(download.contentForCalculatingTaskId);
  }
  if (download.enableTaskIdBasedBlobDigest && isBlobUrl(download.url)) {
    return taskIdFromBlobDigest(download.url);
  }
  return taskIdFromUrl({
    url: download.url,
    tag: download.tag,
    application: download.application,
    revision: repositoryRevision(download),
    pieceLength: download.pieceLength,
    filteredQueryParams: download.filteredQueryParams,
  });
}

/**
 * How a task's id was derived from its Download. The id alone cannot tell: `sha256(content)` of a well-chosen
 * content_for_calculating_task_id equals the id of any URL (its id input is public), and a blob digest is the
 * sha256 of whatever bytes were pushed. A task records its derivation, and a request that derives the same id
 * another way is not served that task (see TaskManager.start and docs/security.md).
 */
export type TaskIdDerivation = 'url' | 'content' | 'blob-digest';

export interface TaskIdentity {
  id: string;
  derivation: TaskIdDerivation;
  /**
   * The digest the whole content must have, known from the request's identity itself (never a client's claim):
   * the digest of an OCI blob URL (`sha256:<hex>` or `sha512:<hex>`). Checked before the task counts as finished.
   */
  knownDigest?: string;
}

/**
 * The endings of every task id input upstream hashes after a URL, a file or other fields: "STANDARD",
 * "PERSISTENT" and "PERSISTENT_CACHE" (its own ending "CACHE" is also the CACHE type's). Bytes hashed into an id
 * on their own — a content label, or the content of a blob addressed by its digest — that end with one of them
 * could be another task's id input, and so would take over that task's id.
 */
const TYPED_ID_ENDINGS: readonly string[] = ['STANDARD', 'PERSISTENT', 'CACHE'];

/** The task type name an id input ends with, if any (see TYPED_ID_ENDINGS). */
export function typedIdEnding(bytes: string | Uint8Array): string | undefined {
  const tail = typeof bytes === 'string' ? bytes : Buffer.from(bytes).toString('latin1');
  return TYPED_ID_ENDINGS.find((e) => tail.endsWith(e));
}

/** Blob digests that identify content (a crc32 "digest" in a blob URL is no identity: it is forged at will). */
function identifyingBlobDigest(url: string): Digest | undefined {
  const digest = blobDigestFromUrl(url);
  return digest && digest.algorithm !== 'crc32' ? digest : undefined;
}

/**
 * The id of a Download (exactly upstream's, selectTaskId) with how it was derived and the digest its content must
 * have when the request itself names one. Refuses, as INVALID_ARGUMENT, a content_for_calculating_task_id that
 * ends like another kind of task's id input (TYPED_ID_ENDINGS): it would name that task (upstream accepts it).
 */
export function taskIdentity(download: TaskIdSource): TaskIdentity {
  const id = selectTaskId(download);
  const content = download.contentForCalculatingTaskId;
  if (content !== undefined) {
    const ending = typedIdEnding(content);
    if (ending !== undefined) {
      throw new DfError(
        'INVALID_ARGUMENT',
        `content_for_calculating_task_id must not end with "${ending}": that is how the id of another kind of ` +
          `task (a URL's) is formed, so this label could stand for that task`,
      );
    }
    return { id, derivation: 'content' };
  }
  const blob = identifyingBlobDigest(download.url);
  if (download.enableTaskIdBasedBlobDigest && isBlobUrl(download.url)) {
    if (!blob) {
      throw new DfError(
        'INVALID_ARGUMENT',
        `blob url "${download.url}": a task id based on the blob digest needs a sha256 or sha512 digest`,
      );
    }
    return { id, derivation: 'blob-digest', knownDigest: formatDigest(blob) };
  }
  return { id, derivation: 'url', knownDigest: blob ? formatDigest(blob) : undefined };
}
