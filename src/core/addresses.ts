// Network addresses as the security rules see them (docs/security.md, issue 16 items 5–7): which addresses
// are this machine's or a private network's (loopback, link-local and its cloud metadata services, private and
// other non-public ranges), lists of addresses from the config (IPs, CIDRs, host names), and the caller's address
// as a gRPC or HTTP server reports it. Pure: no DNS, no sockets.

import { BlockList, isIP } from 'node:net';
import { DfError } from './errors.js';

export type IpFamily = 'ipv4' | 'ipv6';

/**
 * An IP without brackets or zone, IPv4-mapped IPv6 (`::ffff:127.0.0.1`, as dual-stack sockets report IPv4 peers)
 * as the IPv4 address; undefined when it is not an IP.
 */
export function normalizeIp(address: string): { ip: string; family: IpFamily } | undefined {
  let a = address.trim();
  if (a.startsWith('[') && a.endsWith(']')) a = a.slice(1, -1);
  const zone = a.indexOf('%');
  if (zone >= 0) a = a.slice(0, zone);
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(a);
  if (mapped) a = mapped[1]!;
  const v = isIP(a);
  if (v === 4) return { ip: a, family: 'ipv4' };
  if (v === 6) return { ip: a.toLowerCase(), family: 'ipv6' };
  return undefined;
}

/** Whether an address is this host's loopback (127.0.0.0/8, ::1, or IPv4-mapped loopback). */
export function isLoopbackIp(address: string | undefined): boolean {
  const n = address === undefined ? undefined : normalizeIp(address);
  if (!n) return false;
  return n.family === 'ipv4' ? n.ip.startsWith('127.') : n.ip === '::1';
}

/**
 * Ranges that are not the public internet, with what they are. A remote caller must not make this daemon fetch
 * from them (they reach this machine, its private network, or a cloud's instance metadata service).
 */
const SPECIAL_RANGES: ReadonlyArray<readonly [prefix: string, bits: number, family: IpFamily, what: string]> =
  [
    ['0.0.0.0', 8, 'ipv4', 'this network'],
    ['10.0.0.0', 8, 'ipv4', 'private'],
    ['100.64.0.0', 10, 'ipv4', 'shared address space (carrier-grade NAT, cloud metadata)'],
    ['127.0.0.0', 8, 'ipv4', 'loopback'],
    ['169.254.0.0', 16, 'ipv4', 'link-local (cloud metadata)'],
    ['172.16.0.0', 12, 'ipv4', 'private'],
    ['192.0.0.0', 24, 'ipv4', 'IETF protocol assignments (cloud metadata)'],
    ['192.168.0.0', 16, 'ipv4', 'private'],
    ['198.18.0.0', 15, 'ipv4', 'benchmarking'],
    ['224.0.0.0', 4, 'ipv4', 'multicast'],
    ['240.0.0.0', 4, 'ipv4', 'reserved'],
    ['::', 128, 'ipv6', 'unspecified'],
    ['::1', 128, 'ipv6', 'loopback'],
    ['64:ff9b::', 96, 'ipv6', 'NAT64'],
    ['64:ff9b:1::', 48, 'ipv6', 'local-use NAT64'],
    ['fc00::', 7, 'ipv6', 'unique local (private, cloud metadata)'],
    ['fe80::', 10, 'ipv6', 'link-local'],
    ['fec0::', 10, 'ipv6', 'site-local'],
    ['ff00::', 8, 'ipv6', 'multicast'],
  ];

const SPECIAL = SPECIAL_RANGES.map(([prefix, bits, family, what]) => {
  const list = new BlockList();
  list.addSubnet(prefix, bits, family);
  return { list, family, what, nat64: prefix === '64:ff9b::' };
});

/** The IPv4 address in the last 32 bits of an IPv6 address (NAT64's well-known prefix embeds one there). */
function embeddedIpv4(ipv6: string): string {
  // The URL parser writes an IPv6 host in its canonical form; its last two groups are the 32 bits.
  const canonical = new URL(`http://[${ipv6}]/`).hostname.slice(1, -1);
  const groups = canonical.split(':');
  const lo = parseInt(groups.at(-1) || '0', 16);
  const hi = parseInt(groups.at(-2) || '0', 16);
  return [hi >> 8, hi & 0xff, lo >> 8, lo & 0xff].join('.');
}

/** What kind of non-public address `address` is ("loopback", "private", ...), or undefined for a public one. */
export function specialAddressKind(address: string): string | undefined {
  const n = normalizeIp(address);
  if (!n) return undefined;
  for (const range of SPECIAL) {
    if (range.family !== n.family || !range.list.check(n.ip, n.family)) continue;
    if (range.nat64) {
      const inner = specialAddressKind(embeddedIpv4(n.ip));
      return inner === undefined ? undefined : `${inner} behind NAT64`;
    }
    return range.what;
  }
  return undefined;
}

/** A host name as written in a URL or a config entry: lower case, without a trailing dot. */
function normalizeHostName(name: string): string {
  return name.trim().toLowerCase().replace(/\.$/, '');
}

const HOST_NAME =
  /^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$/;

/**
 * What a config list of addresses holds: IPs ("10.0.0.5", "::1"), CIDRs ("10.0.0.0/8", "fd00::/8") and, where
 * `hostNames` allows, host names ("registry.internal"), matched exactly and case-insensitively. Entries are
 * checked when the list is built: a bad one is an INVALID_CONFIG naming `key` and the entry.
 */
export class AddressList {
  private readonly blocks = new BlockList();
  private readonly names = new Set<string>();
  readonly entries: readonly string[];

  constructor(entries: readonly string[], key: string, opts: { hostNames?: boolean } = {}) {
    this.entries = entries;
    for (const entry of entries) {
      const problem = this.add(entry, opts.hostNames ?? false);
      if (problem !== undefined) {
        throw new DfError('INVALID_CONFIG', `${key}: ${problem}, got "${entry}"`);
      }
    }
  }

  get size(): number {
    return this.entries.length;
  }

  /** Adds one entry; returns what is wrong with it, if anything. */
  private add(entry: string, hostNames: boolean): string | undefined {
    const text = entry.trim();
    const expected = hostNames
      ? 'expected an IP, a CIDR like "10.0.0.0/8" or a host name'
      : 'expected an IP or a CIDR like "10.0.0.0/8"';
    const slash = text.indexOf('/');
    if (slash >= 0) {
      const ip = normalizeIp(text.slice(0, slash));
      const bitsText = text.slice(slash + 1);
      const bits = /^\d{1,3}$/.test(bitsText) ? Number(bitsText) : NaN;
      if (!ip || !(bits <= (ip.family === 'ipv4' ? 32 : 128))) return expected;
      this.blocks.addSubnet(ip.ip, bits, ip.family);
      return undefined;
    }
    const ip = normalizeIp(text);
    if (ip) {
      this.blocks.addAddress(ip.ip, ip.family);
      return undefined;
    }
    const name = normalizeHostName(text);
    if (!hostNames || !HOST_NAME.test(name)) return expected;
    this.names.add(name);
    return undefined;
  }

  /** Whether the list holds this IP (or a range containing it). */
  hasIp(address: string): boolean {
    const n = normalizeIp(address);
    return n !== undefined && this.blocks.check(n.ip, n.family);
  }

  /** Whether the list names this host (an IP literal is looked up as an IP). */
  hasHost(host: string): boolean {
    if (normalizeIp(host)) return this.hasIp(host);
    return this.names.has(normalizeHostName(host));
  }
}

/**
 * The IP of a caller as grpc-js `call.getPeer()` reports it — `${remoteAddress}:${remotePort}`, so an IPv6 peer
 * is unbracketed ("10.0.0.5:41234", "::ffff:127.0.0.1:41234", "::1:41234") — or of a scheduler address
 * ("[::1]:8002"). Undefined for a unix socket peer or an unknown one.
 */
export function ipOfPeer(peer: string | undefined): string | undefined {
  if (!peer || peer === 'unknown') return undefined;
  const bracketed = /^\[([^\]]+)\]:\d+$/.exec(peer);
  if (bracketed) return normalizeIp(bracketed[1]!)?.ip;
  const at = peer.lastIndexOf(':');
  if (at > 0 && /^\d+$/.test(peer.slice(at + 1))) {
    const ip = normalizeIp(peer.slice(0, at));
    if (ip) return ip.ip;
  }
  return normalizeIp(peer)?.ip;
}
