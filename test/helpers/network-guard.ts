// Keeps a fuzz run inside the test: while installed, every TCP connection this process opens must go to an
// address and port the test allows (its own servers on loopback); any other is refused at once, as if nobody
// listened, and host names other than localhost are not resolved. A fuzzer that mutates the bytes of a URL turns
// 127.0.0.1 into 17.0.0.1 or the origin's port into another program's; the daemon and the proxy would connect
// there. Unix sockets are not affected.

import dns from 'node:dns';
import { syncBuiltinESMExports } from 'node:module';
import net from 'node:net';

export type Allowed = (address: string, port: number) => boolean;

/** Loopback literals and `localhost` on the given ports. */
export function loopbackPorts(ports: () => Iterable<number>): Allowed {
  return (address, port) => {
    const host = address.replace(/^\[|\]$/g, '').toLowerCase();
    const loopback =
      host === 'localhost' ||
      host === '::1' ||
      /^127\.\d+\.\d+\.\d+$/.test(host) ||
      host === '::ffff:127.0.0.1';
    return loopback && [...ports()].includes(port);
  };
}

function refusal(address: string, port: number): NodeJS.ErrnoException {
  return Object.assign(
    new Error(`connect ECONNREFUSED ${address}:${port} (refused by the test's network guard)`),
    {
      code: 'ECONNREFUSED',
      errno: -111,
      syscall: 'connect',
      address,
      port,
    },
  );
}

/** The host and port a Socket#connect call names, or undefined for a unix socket. */
function target(args: unknown[]): { host: string; port: number } | undefined {
  let first = args[0];
  // net.connect passes its normalized [options, cb] pair as one array.
  if (Array.isArray(first)) first = first[0];
  if (first !== null && typeof first === 'object') {
    const o = first as { path?: string; host?: string; port?: number | string };
    if (o.path !== undefined) return undefined;
    return { host: o.host ?? 'localhost', port: Number(o.port) };
  }
  if (typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first))) {
    return { host: typeof args[1] === 'string' ? args[1] : 'localhost', port: Number(first) };
  }
  return undefined;
}

/** Installs the guard; returns the function that removes it. */
export function confineNetwork(allowed: Allowed): () => void {
  const connect = net.Socket.prototype.connect;
  const lookup = dns.lookup;
  const promisesLookup = dns.promises.lookup;
  net.Socket.prototype.connect = function (this: net.Socket, ...args: unknown[]) {
    const t = target(args);
    if (t && !allowed(t.host, t.port)) {
      process.nextTick(() => this.destroy(refusal(t.host, t.port)));
      return this;
    }
    return (connect as (...a: unknown[]) => net.Socket).apply(this, args);
  } as typeof connect;
  const notFound = (host: string) =>
    Object.assign(new Error(`getaddrinfo ENOTFOUND ${host} (the test's network guard)`), {
      code: 'ENOTFOUND',
      hostname: host,
    });
  const guardedLookup = ((host: string, ...rest: unknown[]) => {
    if (host === 'localhost' || net.isIP(host) !== 0)
      return (lookup as (...a: unknown[]) => void)(host, ...rest);
    const cb = rest.at(-1) as (e: Error) => void;
    process.nextTick(() => cb(notFound(host)));
  }) as typeof dns.lookup;
  dns.lookup = guardedLookup;
  dns.promises.lookup = (async (host: string, ...rest: unknown[]) => {
    if (host === 'localhost' || net.isIP(host) !== 0) {
      return (promisesLookup as (...a: unknown[]) => Promise<unknown>)(host, ...rest);
    }
    throw notFound(host);
  }) as typeof dns.promises.lookup;
  // ESM named imports of builtins (`import { lookup } from 'node:dns/promises'`) follow only after this.
  syncBuiltinESMExports();
  return () => {
    net.Socket.prototype.connect = connect;
    dns.lookup = lookup;
    dns.promises.lookup = promisesLookup;
    syncBuiltinESMExports();
  };
}
