// docker: daemon.json `proxies` (Docker 23+), so dockerd pulls through dfdaemon's proxy, as upstream's
// `container_runtime/docker.rs`: `http-proxy` and `https-proxy` both `http://<host>:<port>` of the proxy.
// Upstream replaces the whole `proxies` object; we keep its other keys (`no-proxy`). The file is written as
// upstream writes it (two-space JSON, key order kept) and only when a value changes.

import { DfError } from '../core/errors.js';
import { sameValue } from './toml.js';

/** daemon.json after the change; `text` undefined (no file) or blank counts as `{}`. Pure. */
export function planDockerDaemonJson(text: string | undefined, file: string, proxyLocation: string): string {
  let config: Record<string, unknown> = {};
  if (text !== undefined && text.trim() !== '') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (e) {
      throw new DfError('INVALID_CONFIG', `${file}: invalid JSON: ${(e as Error).message}`, { cause: e });
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
      throw new DfError('INVALID_CONFIG', `${file}: expected a JSON object at the top level`);
    config = parsed as Record<string, unknown>;
  }
  const url = `http://${proxyLocation}`;
  const current = config.proxies;
  const kept = typeof current === 'object' && current !== null && !Array.isArray(current) ? current : {};
  const proxies = { ...kept, 'http-proxy': url, 'https-proxy': url };
  if (text !== undefined && sameValue(current, proxies)) return text;
  config.proxies = proxies;
  return JSON.stringify(config, null, 2) + '\n';
}
