// PreheatImage / StatImage's first step (Go `pkg/oci/image.go` Resolve, `resolver.go`): fetch the image's manifest
// from its registry, follow an index (manifest list) to the manifests of the wanted platform, and name every blob
// those manifests reference (config and layers) by its blob URL. The registry's auth flow is followed as it asks:
// a Bearer challenge gets a token from its realm for `repository:NAME:pull` (with Basic credentials when given),
// a Basic challenge gets the credentials. The Authorization that worked is handed on with the blob URLs, so the
// peers that fetch the blobs are let in too (Go does the same).
//
// The scheduler fetches on a remote caller's behalf: every connection (the token realm's too) goes through the
// address gate (backend/address-policy.ts, injected: the scheduler layer does not import the backend's).

import type { Dispatcher, buildConnector } from 'undici';
import type { request as undiciRequest } from '../../http-client/undici-core.js';
import { loadUndici } from '../../http-client/lazy-undici.js';
import { isDfError } from '../../core/errors.js';
import { blobUrl, manifestUrl, parseManifestUrl, type OciReference } from '../../core/oci-reference.js';

/** Where the scheduler may connect for a caller: SourceAddressPolicy fits it. */
export interface SourceGate {
  /** PERMISSION_DENIED (a DfError) when the URL's host is an address a remote caller may not reach. */
  checkUrl(url: string): Promise<void>;
  connector(options: buildConnector.BuildOptions): buildConnector.connector;
}

export interface ImageRequest {
  /** http(s)://REGISTRY/v2/REPOSITORY/manifests/TAG_OR_DIGEST */
  url: string;
  username?: string;
  password?: string;
  /** os/arch[/variant]; default this scheduler's own (Go: platforms.DefaultSpec()). */
  platform?: string;
  /** Sent with every registry request; an Authorization here is used as it is (an issued token). */
  header: Record<string, string>;
  insecureSkipVerify: boolean;
  timeoutMs: number;
}

export interface ResolvedImage {
  blobUrls: string[];
  /** The request's header, with the Authorization that the registry accepted. */
  header: Record<string, string>;
}

const INDEX_TYPES = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
];
const MANIFEST_TYPES = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
];
const SCHEMA1_TYPES = [
  'application/vnd.docker.distribution.manifest.v1+prettyjws',
  'application/vnd.docker.distribution.manifest.v1+json',
];
const ACCEPT = [...INDEX_TYPES, ...MANIFEST_TYPES, ...SCHEMA1_TYPES].join(', ');

/** A registry allows manifests up to 4 MiB; a larger answer is not a manifest. */
const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
/** Go's registry client timeout (pkg/oci/image.go defaultRegistryTimeout). */
const REGISTRY_TIMEOUT_MS = 60_000;

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

/** Node's names for CPU architectures → OCI's (GOARCH). */
const OCI_ARCH: Record<string, string> = {
  x64: 'amd64',
  ia32: '386',
  arm64: 'arm64',
  arm: 'arm',
  s390x: 's390x',
};

export function defaultPlatform(): Platform {
  return { os: process.platform, architecture: OCI_ARCH[process.arch] ?? process.arch };
}

export function parsePlatform(text: string | undefined): Platform {
  if (text === undefined || text === '') return defaultPlatform();
  const parts = text.split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => !/^[a-z0-9_.-]+$/i.test(p))) {
    throw new Error(`invalid platform format "${text}", expected "os/arch" (e.g., "linux/amd64")`);
  }
  const [os, architecture, variant] = parts as [string, string, string | undefined];
  return { os: os.toLowerCase(), architecture: architecture.toLowerCase(), variant: variant?.toLowerCase() };
}

function platformMatches(want: Platform, have: Partial<Platform> | undefined): boolean {
  if (!have) return false;
  if (have.os !== want.os || have.architecture !== want.architecture) return false;
  return want.variant === undefined || have.variant === undefined || have.variant === want.variant;
}

interface Descriptor {
  digest?: unknown;
  platform?: Partial<Platform>;
}

interface ManifestJson {
  mediaType?: string;
  schemaVersion?: number;
  manifests?: Descriptor[];
  config?: Descriptor;
  layers?: Descriptor[];
  fsLayers?: { blobSum?: unknown }[];
}

/** WWW-Authenticate: `Bearer realm="…",service="…",scope="…"` or `Basic realm="…"`. */
export function parseChallenge(value: string | undefined): {
  scheme: string;
  params: Record<string, string>;
} {
  const text = (value ?? '').trim();
  const sp = text.indexOf(' ');
  const scheme = (sp < 0 ? text : text.slice(0, sp)).toLowerCase();
  const params: Record<string, string> = {};
  for (const m of (sp < 0 ? '' : text.slice(sp + 1)).matchAll(
    /([A-Za-z_]+)="([^"]*)"|([A-Za-z_]+)=([^,\s]*)/g,
  )) {
    params[(m[1] ?? m[3])!.toLowerCase()] = m[2] ?? m[4] ?? '';
  }
  return { scheme, params };
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

const first = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v);

/** The registry's error body (`{"errors":[{"code","message"}]}`) as a few words, when it has one. */
function registryErrorText(body: Buffer): string {
  try {
    const j = JSON.parse(body.toString('utf8')) as { errors?: { code?: string; message?: string }[] };
    const e = j.errors?.[0];
    if (e?.code || e?.message) return ` (${[e.code, e.message].filter(Boolean).join(': ')})`;
  } catch {
    // not JSON: the status line says enough
  }
  return '';
}

/** Resolves one image per call; holds no state between calls but the gate. */
export class ImageManifestResolver {
  constructor(private readonly gate: SourceGate) {}

  async resolve(req: ImageRequest): Promise<ResolvedImage> {
    const ref = parseManifestUrl(req.url);
    const platform = parsePlatform(req.platform);
    await this.gate.checkUrl(req.url);
    const undici = await loadUndici();
    const agent = new undici.Agent({
      connect: this.gate.connector({ rejectUnauthorized: !req.insecureSkipVerify }),
    });
    const signal = AbortSignal.timeout(Math.min(req.timeoutMs, REGISTRY_TIMEOUT_MS));
    const session = new RegistrySession(agent, undici.request, signal, ref, req);
    try {
      const top = await session.manifest(ref.reference);
      const manifests: ManifestJson[] = [];
      if (isIndex(top.json, top.contentType)) {
        const picked = (top.json.manifests ?? []).filter((d) => platformMatches(platform, d.platform));
        for (const d of picked) {
          const child = await session.manifest(digestOf(d, req.url));
          if (isIndex(child.json, child.contentType)) {
            throw new Error(`manifest ${String(d.digest)} of ${req.url} is an index inside an index`);
          }
          manifests.push(child.json);
        }
      } else {
        manifests.push(top.json);
      }
      const variant = platform.variant ? `/${platform.variant}` : '';
      if (manifests.length === 0) {
        throw new Error(
          `no matching manifest for platform ${platform.os}/${platform.architecture}${variant}`,
        );
      }
      const blobUrls = manifests.flatMap((m) => blobDigests(m, req.url)).map((d) => blobUrl(ref, d));
      const header = { ...req.header };
      if (session.authorization) header['Authorization'] = session.authorization;
      return { blobUrls, header };
    } catch (e) {
      throw unwrap(e, ref);
    } finally {
      await agent.close().catch(() => undefined);
    }
  }
}

function isIndex(json: ManifestJson, contentType: string): boolean {
  return (
    INDEX_TYPES.includes(json.mediaType ?? contentType) || (json.manifests !== undefined && !json.layers)
  );
}

function digestOf(d: Descriptor, url: string): string {
  if (typeof d.digest !== 'string' || !/^[a-z0-9+._-]+:[a-zA-Z0-9=_-]+$/.test(d.digest)) {
    throw new Error(`manifest at ${url} lists an invalid digest ${JSON.stringify(d.digest)}`);
  }
  return d.digest;
}

/** Go's manifest.References(): the config and every layer (schema 1: every fsLayer's blobSum, deduplicated). */
function blobDigests(m: ManifestJson, url: string): string[] {
  if (m.schemaVersion === 1 && m.fsLayers) {
    return [...new Set(m.fsLayers.map((l) => digestOf({ digest: l.blobSum }, url)))];
  }
  if (!m.config && !m.layers) throw new Error(`the answer of ${url} is not an image manifest`);
  return [...(m.config ? [m.config] : []), ...(m.layers ?? [])].map((d) => digestOf(d, url));
}

/** The connection error behind undici's wrapper (the address gate's PERMISSION_DENIED stays as it is). */
function unwrap(e: unknown, ref: OciReference): Error {
  for (let c: unknown = e; c; c = (c as { cause?: unknown }).cause) {
    if (isDfError(c)) return c;
  }
  const err = e as Error & { code?: string; cause?: Error & { code?: string } };
  if (err.name === 'TimeoutError' || err.name === 'AbortError') {
    return new Error(`registry ${ref.registry} did not answer in time`);
  }
  const cause = err.cause ?? err;
  if (cause.code && /^E[A-Z]+/.test(cause.code)) {
    return new Error(`cannot reach registry ${ref.registry}: ${cause.message}`);
  }
  return err;
}

/** One image's conversation with its registry: the manifests, and the Authorization the registry accepted. */
class RegistrySession {
  authorization: string | undefined;
  private readonly issued: boolean;

  constructor(
    private readonly agent: Dispatcher,
    private readonly request: typeof undiciRequest,
    private readonly signal: AbortSignal,
    private readonly ref: OciReference,
    private readonly req: ImageRequest,
  ) {
    const given = Object.entries(req.header).find(([k]) => k.toLowerCase() === 'authorization');
    this.authorization = given?.[1];
    this.issued = given !== undefined;
  }

  async manifest(reference: string): Promise<{ json: ManifestJson; contentType: string }> {
    const url = manifestUrl({ ...this.ref, reference });
    let answer = await this.get(url, { Accept: ACCEPT });
    if (answer.status === 401 && !this.issued) {
      this.authorization = await this.authorize(first(answer.headers['www-authenticate']));
      answer = await this.get(url, { Accept: ACCEPT });
    }
    if (answer.status < 200 || answer.status > 299) {
      const why = answer.status === 401 ? ': the registry refused the credentials' : '';
      throw new Error(`GET ${url}: status ${answer.status}${registryErrorText(answer.body)}${why}`);
    }
    const contentType = (first(answer.headers['content-type']) ?? '').split(';')[0]!.trim();
    try {
      return { json: JSON.parse(answer.body.toString('utf8')) as ManifestJson, contentType };
    } catch {
      throw new Error(`GET ${url}: the answer is not a JSON manifest (${contentType || 'no content type'})`);
    }
  }

  /** Answers the registry's challenge: a Bearer token from its realm, or Basic credentials. */
  private async authorize(challenge: string | undefined): Promise<string> {
    const { scheme, params } = parseChallenge(challenge);
    const { username, password } = this.req;
    const basic =
      username !== undefined && username !== ''
        ? `Basic ${Buffer.from(`${username}:${password ?? ''}`).toString('base64')}`
        : undefined;
    if (scheme === 'basic') {
      if (!basic)
        throw new Error(`registry ${this.ref.registry} asks for credentials: give --username and --password`);
      return basic;
    }
    if (scheme !== 'bearer' || !params['realm']) {
      throw new Error(
        `registry ${this.ref.registry} answered 401 with no usable challenge ("${challenge ?? ''}")`,
      );
    }
    let realm: URL;
    try {
      realm = new URL(params['realm']);
    } catch {
      throw new Error(`registry ${this.ref.registry} names an invalid token realm "${params['realm']}"`);
    }
    if (params['service']) realm.searchParams.set('service', params['service']);
    realm.searchParams.set('scope', `repository:${this.ref.repository}:pull`);
    // The realm is another host the registry names: the agent's connector checks it like the registry itself.
    const answer = await this.get(realm.href, basic ? { Authorization: basic } : {}, false);
    if (answer.status < 200 || answer.status > 299) {
      throw new Error(
        `token request to ${realm.origin}${realm.pathname}: status ${answer.status}${registryErrorText(answer.body)}`,
      );
    }
    let token: unknown;
    try {
      const j = JSON.parse(answer.body.toString('utf8')) as { token?: unknown; access_token?: unknown };
      token = j.token ?? j.access_token;
    } catch {
      // reported below
    }
    if (typeof token !== 'string' || token === '') {
      throw new Error(`token request to ${realm.origin}${realm.pathname}: the answer has no token`);
    }
    return `Bearer ${token}`;
  }

  private async get(url: string, extra: Record<string, string>, withAuth = true): Promise<Answer> {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(this.req.header))
      if (k.toLowerCase() !== 'authorization') headers[k] = v;
    Object.assign(headers, extra);
    if (withAuth && this.authorization) headers['Authorization'] = this.authorization;
    const res = await this.request(url, {
      method: 'GET',
      headers,
      dispatcher: this.agent,
      signal: this.signal,
    });
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > MAX_MANIFEST_BYTES) {
        res.body.destroy();
        throw new Error(`GET ${url}: the answer is larger than ${MAX_MANIFEST_BYTES} bytes`);
      }
      chunks.push(chunk);
    }
    return { status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) };
  }
}
