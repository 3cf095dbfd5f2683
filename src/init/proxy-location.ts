// `host:port` of dfdaemon's proxy, as upstream derives it for docker and CRI-O/podman (`Url::host_str` and
// `port_or_known_default`): the port defaults to 80 for http and 443 for https; an IPv6 host keeps its brackets.

import { DfError } from '../core/errors.js';

export function proxyLocation(addr: string): string {
  let u: URL;
  try {
    u = new URL(addr);
  } catch (e) {
    throw new DfError('INVALID_CONFIG', `proxy.addr: expected an http URL, got ${JSON.stringify(addr)}`, {
      cause: e,
    });
  }
  if (!u.hostname) throw new DfError('INVALID_CONFIG', `proxy.addr: no host in ${JSON.stringify(addr)}`);
  const port = u.port || (u.protocol === 'https:' ? '443' : '80');
  return `${u.hostname}:${port}`;
}
