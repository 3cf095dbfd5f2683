// proxy.server.basicAuth (upstream verifies the Authorization header). A forward proxy's clients (curl
// --proxy-user, pip, Go's HTTP_PROXY=http://u:p@host) send Proxy-Authorization, so that is checked first and
// Authorization, as upstream, second; a registry's own bearer token in Authorization is then left alone.

import type { IncomingHttpHeaders } from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import { single } from './headers.js';

export type AuthResult = 'ok' | 'unauthorized' | 'malformed';

export function checkBasicAuth(
  headers: IncomingHttpHeaders,
  expected: { username: string; password: string },
): AuthResult {
  const proxyAuth = single(headers, 'proxy-authorization');
  const auth = single(headers, 'authorization');
  const candidate = proxyAuth ?? (auth && /^basic\s/i.test(auth) ? auth : undefined);
  if (candidate === undefined) return 'unauthorized';
  const m = /^(\S+)\s+(\S+)\s*$/.exec(candidate);
  if (!m) return 'malformed';
  if (m[1]!.toLowerCase() !== 'basic') return 'unauthorized';
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(m[2]!)) return 'malformed';
  const decoded = Buffer.from(m[2]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return 'unauthorized';
  const ok =
    same(decoded.slice(0, colon), expected.username) && same(decoded.slice(colon + 1), expected.password);
  return ok ? 'ok' : 'unauthorized';
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
