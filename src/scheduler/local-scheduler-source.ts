// Schedulers from the local dynconfig file (upstream `dynconfig/local.rs`): the static `scheduler.addrs` list when
// it is non-empty, else `scheduler.addr` resolved by DNS (a Kubernetes headless service lists every scheduler).
// The file is read again on every refresh, because it is typically a ConfigMap that changes under us.

import dns from 'node:dns/promises';
import { loadLocalDynconfig } from '../config/dynconfig.js';
import { DfError } from '../core/errors.js';
import type { SchedulerCandidate, SchedulerLog, SchedulerSource } from './scheduler-source-types.js';
import { parseSocketAddr, socketAddrFromIp, sortDedupSocketAddrs, type SocketAddr } from './socket-addr.js';

export type LookupAll = (hostname: string) => Promise<Array<{ address: string; family: number }>>;

const defaultLookup: LookupAll = (hostname) => dns.lookup(hostname, { all: true });

/** Splits "host:port" / "[v6]:port" as tokio's `lookup_host` does. */
function splitHostPort(addr: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(addr);
  const port = Number(m?.[3]);
  if (!m || port > 65_535) {
    throw new DfError('INVALID_CONFIG', `scheduler.addr: expected "host:port", got "${addr}"`);
  }
  return { host: m[1] ?? m[2]!, port };
}

/**
 * Resolves "host:port" to every address of host, keeping only IPv4 when there is any (dual-stack hosts), sorted and
 * de-duplicated so the ring stays the same across refreshes (upstream `resolve_schedulers`).
 */
export async function resolveSchedulerAddr(
  addr: string,
  lookup: LookupAll = defaultLookup,
): Promise<SocketAddr[]> {
  const { host, port } = splitHostPort(addr);
  let found: Array<{ address: string; family: number }>;
  try {
    found = await lookup(host);
  } catch (e) {
    throw new DfError('UNAVAILABLE', `cannot resolve scheduler address ${addr}: ${(e as Error).message}`, {
      cause: e,
    });
  }
  let addrs = found.flatMap((f) => {
    try {
      return [socketAddrFromIp(f.address, port)];
    } catch {
      return []; // e.g. an IPv6 address with a named zone, which Rust could not parse either
    }
  });
  if (addrs.some((a) => a.family === 4)) addrs = addrs.filter((a) => a.family === 4);
  if (addrs.length === 0)
    throw new DfError('UNAVAILABLE', `scheduler address ${addr} resolves to no address`);
  return sortDedupSocketAddrs(addrs);
}

export function localDynconfigSource(
  path: string,
  options: { log: SchedulerLog; lookup?: LookupAll },
): SchedulerSource {
  let warned = false;
  return {
    description: `dynconfig file ${path}`,
    singleCluster: false,
    async list(): Promise<SchedulerCandidate[]> {
      const { config, warnings } = loadLocalDynconfig(path);
      if (!warned) {
        for (const w of warnings) options.log.warn(w);
        warned = true;
      }
      const addrs = config.scheduler.addrs;
      const socketAddrs =
        addrs !== undefined && addrs.length > 0
          ? sortDedupSocketAddrs(addrs.map(parseSocketAddr))
          : await resolveSchedulerAddr(config.scheduler.addr, options.lookup);
      return socketAddrs.map((addr) => ({ addr }));
    },
    close(): void {},
  };
}
