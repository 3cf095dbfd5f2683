// Registry mirror mode (upstream make_registry_mirror_request): a request whose URI has no host is meant for a
// registry. Which one: the X-Dragonfly-Registry header, else containerd's `ns` query parameter, else
// `proxy.registryMirror.addr`.

import type { IncomingHttpHeaders } from 'node:http';
import { H, single } from './headers.js';

/**
 * The registry base URL (scheme://authority) for a mirror request.
 *
 * `ns` carries only an authority (containerd sends `ns=docker.io`); upstream prepends https://. When that authority
 * is the one of `registryMirror.addr`, we take the configured address instead, so a plain-HTTP mirror address
 * keeps its scheme (upstream would try HTTPS against it and fail).
 */
export function mirrorUpstream(
  pathAndQuery: string,
  headers: IncomingHttpHeaders,
  mirrorAddr: string,
): string {
  const explicit = single(headers, H.registry)?.trim();
  if (explicit) return withScheme(explicit);
  const ns = new URLSearchParams(pathAndQuery.split('?')[1] ?? '').get('ns');
  if (ns) {
    if (ns.includes('://')) return ns;
    try {
      if (new URL(mirrorAddr).host === new URL(`https://${ns}`).host) return mirrorAddr;
    } catch {
      // An unparseable ns falls through to https://ns, which the URL check in the caller reports.
    }
    return `https://${ns}`;
  }
  return mirrorAddr;
}

function withScheme(addr: string): string {
  return addr.includes('://') ? addr : `https://${addr}`;
}

/** The absolute URL of a mirror request: the registry base plus the request's path and query. */
export function mirrorUrl(base: string, pathAndQuery: string): URL {
  // Trailing slashes trimmed by hand: /\/+$/ backtracks quadratically on a header full of slashes.
  let end = base.length;
  while (end > 0 && base[end - 1] === '/') end--;
  return new URL(base.slice(0, end) + (pathAndQuery.startsWith('/') ? pathAndQuery : `/${pathAndQuery}`));
}
