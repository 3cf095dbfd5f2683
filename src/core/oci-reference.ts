// OCI image references for preheat: `dfctl task preheat oci://REGISTRY/REPOSITORY[:TAG|@DIGEST]` becomes the
// manifest URL the scheduler's PreheatImage / StatImage take (upstream dfctl sends
// `https://{registry}/v2/{repository}/manifests/{tag}`), and the scheduler parses that URL back into its parts and
// names each blob by `{scheme}://{registry}/v2/{repository}/blobs/{digest}` (Go `pkg/oci/reference.go`).
// Names are normalised as Docker does: no registry means docker.io (served at registry-1.docker.io), and a
// one-component Docker Hub name gets `library/`.

import { DfError } from './errors.js';

export interface OciReference {
  scheme: 'http' | 'https';
  /** host[:port] */
  registry: string;
  /** e.g. `library/nginx` */
  repository: string;
  /** A tag or a digest (`sha256:…`). */
  reference: string;
}

export const OCI_SCHEME = 'oci://';

// distribution/reference's grammar, in the parts we check.
const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$/;
const DOCKER_HUB = 'docker.io';
const DOCKER_HUB_REGISTRY = 'registry-1.docker.io';

function invalid(image: string, why: string): DfError {
  return new DfError('INVALID_ARGUMENT', `invalid image reference "${image}": ${why}`);
}

/** Whether the first path component names a registry (a dot, a port, or localhost), as Docker decides. */
function isRegistryHost(component: string): boolean {
  return component.includes('.') || component.includes(':') || component === 'localhost';
}

/**
 * Parses `oci://…` (or the bare reference) into registry, repository and tag or digest; the tag defaults to
 * `latest`. `plainHttp` picks http:// for registries that serve no TLS (ours; upstream always uses https).
 */
export function parseImageReference(image: string, plainHttp = false): OciReference {
  const bare = image.startsWith(OCI_SCHEME) ? image.slice(OCI_SCHEME.length) : image;
  if (bare === '') throw invalid(image, 'it is empty');
  let rest = bare;
  let reference: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    reference = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(reference)) throw invalid(image, `"${reference}" is not a digest like sha256:<hex>`);
  }
  const slash = rest.indexOf('/');
  let registry = DOCKER_HUB;
  if (slash > 0 && isRegistryHost(rest.slice(0, slash))) {
    registry = rest.slice(0, slash);
    rest = rest.slice(slash + 1);
  }
  const colon = rest.lastIndexOf(':');
  if (colon >= 0) {
    const tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw invalid(image, `"${tag}" is not a valid tag`);
    // name:tag@digest pulls by the digest, as Docker does.
    reference ??= tag;
  }
  const components = rest.split('/');
  const bad = components.find((c) => !COMPONENT.test(c));
  if (bad !== undefined) {
    throw invalid(image, `repository component "${bad}" must be lowercase letters, digits and separators`);
  }
  let repository = rest;
  if (registry === DOCKER_HUB) {
    if (components.length === 1) repository = `library/${rest}`;
    registry = DOCKER_HUB_REGISTRY;
  }
  return { scheme: plainHttp ? 'http' : 'https', registry, repository, reference: reference ?? 'latest' };
}

export function manifestUrl(ref: OciReference): string {
  return `${ref.scheme}://${ref.registry}/v2/${ref.repository}/manifests/${ref.reference}`;
}

export function blobUrl(ref: OciReference, digest: string): string {
  return `${ref.scheme}://${ref.registry}/v2/${ref.repository}/blobs/${digest}`;
}

const MANIFEST_URL = /^(https?):\/\/([^/?#]+)\/v2\/(.+)\/manifests\/([^/?#]+)$/;

/** A manifest URL back into its parts (PreheatImageRequest.url); INVALID_ARGUMENT naming the expected form. */
export function parseManifestUrl(url: string): OciReference {
  const m = MANIFEST_URL.exec(url);
  if (!m) {
    throw new DfError(
      'INVALID_ARGUMENT',
      `invalid manifest url "${url}": expected http(s)://REGISTRY/v2/REPOSITORY/manifests/TAG_OR_DIGEST`,
    );
  }
  return { scheme: m[1] as 'http' | 'https', registry: m[2]!, repository: m[3]!, reference: m[4]! };
}
