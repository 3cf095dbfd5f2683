// The model hubs as data (upstream `hugging_face.rs`, `model_scope.rs`, `opencsg.rs`): how a hub URL
// `scheme://[type/]owner/repo[/path]` names a repository and a file, where the hub serves a file at a revision
// (`.../resolve/{revision}/{path}`) and where its API lists a repository's files. The three hubs differ only in
// these paths and in the listing's JSON, so one backend (hub.ts) serves them all.

import { DfError } from '../core/errors.js';

/** One repository file of a listing: its path in the repository and its size in bytes. */
export interface HubFile {
  path: string;
  size: number;
}

export interface HubSpec {
  scheme: string;
  /** The hub's name, for messages. */
  name: string;
  /** The dfget flags that carry the token and the revision, for messages. */
  tokenFlag: string;
  revisionFlag: string;
  baseUrlFlag: string;
  defaultBaseUrl: string;
  /** Joined to the base URL (WHATWG rules, as upstream's `Url::join`): where the API lives. */
  apiPath: string;
  /** The first path segments that name a repository type; anything else means `models`. */
  repositoryTypes: readonly string[];
  /** The file's path under the base URL. `file` is already percent-encoded. */
  downloadPath(type: string, repository: string, revision: string, file: string): string;
  /** The repository listing's path under the API URL. */
  listingPath(type: string, repository: string, revision: string): string;
  /** The files of a listing answer (directories left out). */
  listingFiles(body: unknown): HubFile[];
}

/** A parsed hub URL. */
export interface HubUrl {
  spec: HubSpec;
  /** `models`, `datasets`, ... */
  type: string;
  /** `owner/repo`. */
  repository: string;
  /** The file's path in the repository, percent-encoded as in the URL; undefined for the repository itself. */
  file?: string;
}

/** Hugging Face's and OpenCSG's resolve path: models have no type prefix. */
function resolveWithoutModelsPrefix(
  type: string,
  repository: string,
  revision: string,
  file: string,
): string {
  const prefix = type === 'models' ? '' : `${type}/`;
  return `${prefix}${repository}/resolve/${revision}/${file}`;
}

function record(v: unknown): Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

function array(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

function size(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : undefined;
}

/** `siblings[]` of a Hugging Face / OpenCSG repository answer; the LFS size is the file's, the plain size the pointer's. */
function siblings(body: unknown): HubFile[] {
  return array(record(body).siblings)
    .map(record)
    .filter((s) => typeof s.rfilename === 'string' && s.type !== 'tree')
    .map((s) => ({ path: s.rfilename as string, size: size(record(s.lfs).size) ?? size(s.size) ?? 0 }));
}

export const HUGGING_FACE: HubSpec = {
  scheme: 'hf',
  name: 'Hugging Face',
  tokenFlag: '--hf-token',
  revisionFlag: '--hf-revision',
  baseUrlFlag: '--hf-base-url',
  defaultBaseUrl: 'https://huggingface.co',
  apiPath: '/api/',
  repositoryTypes: ['models', 'datasets', 'spaces'],
  downloadPath: resolveWithoutModelsPrefix,
  listingPath: (type, repository, revision) => `${type}/${repository}?revision=${revision}`,
  listingFiles: siblings,
};

export const MODEL_SCOPE: HubSpec = {
  scheme: 'modelscope',
  name: 'ModelScope',
  tokenFlag: '--ms-token',
  revisionFlag: '--ms-revision',
  baseUrlFlag: '--ms-base-url',
  defaultBaseUrl: 'https://modelscope.cn',
  apiPath: '/api/v1/',
  repositoryTypes: ['models', 'datasets'],
  downloadPath: (type, repository, revision, file) => `${type}/${repository}/resolve/${revision}/${file}`,
  listingPath: (type, repository, revision) =>
    `${type}/${repository}/repo/files?Revision=${revision}&Recursive=true`,
  listingFiles(body) {
    const answer = record(body);
    // ModelScope answers 200 with its own code in the body.
    if (answer.Code !== 200) {
      const message = typeof answer.Message === 'string' ? answer.Message : '';
      throw new DfError('BACKEND', `ModelScope API error: code=${String(answer.Code)}, message=${message}`);
    }
    return array(record(answer.Data).Files)
      .map(record)
      .filter((f) => typeof f.Path === 'string' && f.Type !== 'tree')
      .map((f) => ({ path: f.Path as string, size: size(f.Size) ?? 0 }));
  },
};

export const OPEN_CSG: HubSpec = {
  scheme: 'opencsg',
  name: 'OpenCSG',
  tokenFlag: '--csg-token',
  revisionFlag: '--csg-revision',
  baseUrlFlag: '--csg-base-url',
  defaultBaseUrl: 'https://hub.opencsg.com/csg/',
  apiPath: 'api/',
  repositoryTypes: ['models', 'datasets', 'spaces', 'codes', 'mcps', 'skills'],
  downloadPath: resolveWithoutModelsPrefix,
  listingPath: (type, repository, revision) =>
    `${type}/${repository}/revision/${revision}${type === 'models' ? '?blobs=true' : ''}`,
  listingFiles: siblings,
};

/** The hubs by scheme. */
export const HUBS: Readonly<Record<string, HubSpec>> = {
  [HUGGING_FACE.scheme]: HUGGING_FACE,
  [MODEL_SCOPE.scheme]: MODEL_SCOPE,
  [OPEN_CSG.scheme]: OPEN_CSG,
};

/** `hf://[datasets/|spaces/]owner/repo[/path]` (and the other hubs' forms) as its parts. */
export function parseHubUrl(url: string): HubUrl {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new DfError('INVALID_ARGUMENT', `invalid url "${url}"`);
  }
  const spec = HUBS[u.protocol.slice(0, -1)];
  if (spec === undefined) throw new DfError('INVALID_ARGUMENT', `${url} is not a model hub URL`);
  // The URL parser folds `.` and `..` (also percent-encoded) away, which would silently name another repository.
  const dots = /\/((?:\.|%2e){1,2})(?=\/|$)/i.exec(url.slice(u.protocol.length));
  if (dots)
    throw new DfError(
      'INVALID_ARGUMENT',
      `invalid ${spec.scheme} URL ${url}: "${dots[1]}" is not a plain name`,
    );
  const segments = `${u.host}${u.pathname}`.split('/').filter((s) => s !== '');
  const typed = spec.repositoryTypes.includes(segments[0] ?? '');
  const type = typed ? segments[0]! : 'models';
  const rest = typed ? segments.slice(1) : segments;
  if (rest.length < 2 || u.search !== '' || u.hash !== '') {
    throw new DfError(
      'INVALID_ARGUMENT',
      `invalid ${spec.scheme} URL ${url}: expected ${spec.scheme}://[${spec.repositoryTypes
        .filter((t) => t !== 'models')
        .join('/|')}/]owner/repo[/path]`,
    );
  }
  for (const s of rest) {
    if (/%2f|%5c/i.test(s)) {
      throw new DfError('INVALID_ARGUMENT', `invalid ${spec.scheme} URL ${url}: "${s}" is not a plain name`);
    }
  }
  return {
    spec,
    type,
    repository: `${rest[0]}/${rest[1]}`,
    file: rest.length > 2 ? rest.slice(2).join('/') : undefined,
  };
}

/**
 * A revision is a branch, tag or commit (`main`, `v1.0`, `refs/pr/1`, a hash): it goes into a URL path and query
 * unescaped as upstream sends it, so anything that would change the URL's shape is refused.
 */
export function checkRevision(spec: HubSpec, revision: string): void {
  if (
    !/^[A-Za-z0-9._\-/]+$/.test(revision) ||
    revision.split('/').some((s) => s === '' || s === '..' || s === '.')
  ) {
    throw new DfError(
      'INVALID_ARGUMENT',
      `invalid ${spec.revisionFlag} "${revision}": expected a branch, tag or commit (letters, digits, . _ - /)`,
    );
  }
}

/** The file's URL at the hub (or its mirror `baseUrl`). */
export function downloadUrl(hub: HubUrl, file: string, revision: string, baseUrl?: string): URL {
  return new URL(hub.spec.downloadPath(hub.type, hub.repository, revision, file), base(hub.spec, baseUrl));
}

/** The repository listing's URL at the hub's API. */
export function listingUrl(hub: HubUrl, revision: string, baseUrl?: string): URL {
  const api = new URL(hub.spec.apiPath, base(hub.spec, baseUrl));
  return new URL(hub.spec.listingPath(hub.type, hub.repository, revision), api);
}

function base(spec: HubSpec, baseUrl: string | undefined): URL {
  const raw = baseUrl || spec.defaultBaseUrl;
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new DfError('INVALID_ARGUMENT', `invalid ${spec.baseUrlFlag} "${raw}"`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new DfError('INVALID_ARGUMENT', `invalid ${spec.baseUrlFlag} "${raw}": expected an http(s) URL`);
  }
  return u;
}
