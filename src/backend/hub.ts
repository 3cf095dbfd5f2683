// The model hub backend: hf://, modelscope:// and opencsg:// (upstream `hugging_face.rs`, `model_scope.rs`,
// `opencsg.rs`). A hub URL names a file at a revision; it is fetched from the hub's (or a mirror's)
// `.../resolve/{revision}/{path}` over the http backend, so redirects to the hub's CDN, ranged-answer checks,
// retries and the source address policy are the http backend's. The token goes as `Authorization: Bearer`, which
// the http backend drops when a redirect leaves the hub's origin. A repository URL is listed through the hub's API,
// each file its own task (dfget -r).

import { DfError } from '../core/errors.js';
import type {
  Backend,
  DirEntry,
  GetRequest,
  GetResponse,
  HubOptions,
  StatRequest,
  StatResponse,
} from './backend.js';
import { HttpBackend, type HttpBackendOptions } from './http.js';
import { readBoundedText } from './bounded-text.js';
import { checkRevision, downloadUrl, listingUrl, parseHubUrl, type HubUrl } from './hub-url.js';

/** A repository listing larger than this is refused rather than held in memory. */
const MAX_LISTING_BYTES = 64 * 1024 * 1024;

export class HubBackend implements Backend {
  readonly scheme: string;
  private readonly http: HttpBackend;

  constructor(scheme: string, options: HttpBackendOptions) {
    this.scheme = scheme;
    // The scheme only labels the http backend; it fetches http and https base URLs alike.
    this.http = new HttpBackend('https', options);
  }

  async stat(req: StatRequest): Promise<StatResponse> {
    const { hub, revision, options } = this.resolve(req.url, req.hub);
    if (hub.file === undefined) {
      throw new DfError(
        'INVALID_ARGUMENT',
        `${req.url} is a ${hub.spec.name} repository, not a file: download it with -r (or name a file in it)`,
      );
    }
    const url = downloadUrl(hub, hub.file, revision, options.baseUrl).href;
    try {
      return await this.http.stat({ ...req, url, requestHeader: withToken(req.requestHeader, options) });
    } catch (e) {
      throw hubError(e, hub, req.url, 'stat', revision);
    }
  }

  async get(req: GetRequest): Promise<GetResponse> {
    const { hub, revision, options } = this.resolve(req.url, req.hub);
    if (hub.file === undefined) {
      throw new DfError('INVALID_ARGUMENT', `${req.url} is a ${hub.spec.name} repository, not a file`);
    }
    const url = downloadUrl(hub, hub.file, revision, options.baseUrl).href;
    try {
      return await this.http.get({ ...req, url, requestHeader: withToken(req.requestHeader, options) });
    } catch (e) {
      throw hubError(e, hub, req.url, 'get', revision);
    }
  }

  /** The repository's files as URLs under the requested one (so dfget writes each at its path in the repository). */
  async listEntries(req: StatRequest): Promise<DirEntry[]> {
    const { hub, revision, options } = this.resolve(req.url, req.hub);
    if (hub.file !== undefined) {
      throw new DfError(
        'INVALID_ARGUMENT',
        `${req.url} names a file in a ${hub.spec.name} repository: only a whole repository (${hub.spec.scheme}://[type/]owner/repo/) is listed`,
      );
    }
    const url = listingUrl(hub, revision, options.baseUrl).href;
    let body: unknown;
    try {
      const res = await this.http.get({
        taskId: req.taskId,
        pieceNumber: 0,
        url,
        requestHeader: withToken({ ...req.requestHeader, accept: 'application/json' }, options),
        timeoutMs: req.timeoutMs,
        signal: req.signal,
        remoteCaller: req.remoteCaller,
      });
      body = JSON.parse(
        await readBoundedText(res.body, MAX_LISTING_BYTES, `list ${req.url}: the repository listing`),
      );
    } catch (e) {
      if (e instanceof SyntaxError) {
        throw new DfError(
          'BACKEND',
          `list ${req.url}: the ${hub.spec.name} API answered something that is not JSON`,
        );
      }
      throw hubError(e, hub, req.url, 'list', revision);
    }
    let files;
    try {
      files = hub.spec.listingFiles(body);
    } catch (e) {
      throw new DfError('BACKEND', `list ${req.url}: ${(e as Error).message}`);
    }
    const directory = req.url.endsWith('/') ? req.url : `${req.url}/`;
    return files.map((f) => ({
      url: directory + f.path.split('/').map(encodeURIComponent).join('/'),
      contentLength: f.size,
      isDir: false,
    }));
  }

  async close(): Promise<void> {
    await this.http.close();
  }

  private resolve(
    url: string,
    given: HubOptions | undefined,
  ): { hub: HubUrl; revision: string; options: HubOptions } {
    const hub = parseHubUrl(url);
    // Upstream refuses a hub request without its message; dfget always sends one, with the default revision.
    if (given === undefined || given.revision === '') {
      throw new DfError(
        'INVALID_ARGUMENT',
        `${url}: the download carries no ${hub.spec.name} revision (${hub.spec.revisionFlag})`,
      );
    }
    checkRevision(hub.spec, given.revision);
    return { hub, revision: given.revision, options: given };
  }
}

/** The request's headers with the hub token as a bearer token (the token wins over a client's Authorization). */
function withToken(headers: Record<string, string>, options: HubOptions): Record<string, string> {
  if (!options.token) return headers;
  const out = Object.fromEntries(
    Object.entries(headers).filter(([k]) => k.toLowerCase() !== 'authorization'),
  );
  out.authorization = `Bearer ${options.token}`;
  return out;
}

/**
 * The http backend's error for a hub URL as one line that names the hub URL (not the resolve URL, which may be a
 * mirror's), the scheme and what to do. 401 and 403 are the token's: the hub answers 401 for a private or gated
 * repository without a valid token.
 */
function hubError(e: unknown, hub: HubUrl, url: string, operation: string, revision: string): unknown {
  if (!(e instanceof DfError) || e.code !== 'BACKEND') return e;
  const status = e.backend?.statusCode;
  const where = `${operation} ${url}`;
  if (status === 401 || status === 403) {
    return new DfError(
      'PERMISSION_DENIED',
      `${where}: permission denied by the ${hub.spec.scheme} hub (HTTP ${status}): check ${hub.spec.tokenFlag}`,
    );
  }
  if (status === 404) {
    const what =
      hub.file === undefined ? 'repository' : `file in the ${hub.spec.name} repository ${hub.repository}`;
    const message = `${where}: NOT_FOUND: no such ${what} at revision ${revision} (HTTP 404)`;
    return new DfError('BACKEND', message, { backend: { ...e.backend!, message } });
  }
  return e;
}
