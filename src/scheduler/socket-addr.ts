// Scheduler addresses as Rust's `std::net::SocketAddr`: parsed, printed and ordered the same way, because the
// consistent-hash ring hashes the parsed value (hash-ring.ts) and the local dynconfig sorts by Rust's `Ord`.

import net from 'node:net';
import { DfError } from '../core/errors.js';

export interface SocketAddr {
  family: 4 | 6;
  /** 4 or 16 bytes, network order. */
  octets: Uint8Array;
  port: number;
  /** IPv6 only; 0 otherwise. */
  flowinfo: number;
  /** IPv6 only (numeric zone, as Rust parses it); 0 otherwise. */
  scopeId: number;
}

function ipv4Octets(ip: string): Uint8Array {
  return Uint8Array.from(ip.split('.').map(Number));
}

function ipv6Octets(ip: string): Uint8Array {
  let text = ip;
  // An embedded IPv4 tail ("::ffff:1.2.3.4") becomes two hex groups.
  if (text.includes('.')) {
    const at = text.lastIndexOf(':');
    const v4 = ipv4Octets(text.slice(at + 1));
    text = `${text.slice(0, at + 1)}${((v4[0]! << 8) | v4[1]!).toString(16)}:${((v4[2]! << 8) | v4[3]!).toString(16)}`;
  }
  let groups: string[];
  const gap = text.indexOf('::');
  if (gap >= 0) {
    const head = text.slice(0, gap) === '' ? [] : text.slice(0, gap).split(':');
    const tail = text.slice(gap + 2) === '' ? [] : text.slice(gap + 2).split(':');
    groups = [...head, ...new Array<string>(8 - head.length - tail.length).fill('0'), ...tail];
  } else {
    groups = text.split(':');
  }
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    const v = parseInt(g, 16);
    out[2 * i] = v >> 8;
    out[2 * i + 1] = v & 0xff;
  });
  return out;
}

function invalid(text: string, why: string): DfError {
  return new DfError('INVALID_ARGUMENT', `invalid scheduler address "${text}": ${why}`);
}

/** Parses an IP (v4, or v6 with an optional numeric `%zone`) and a port into a SocketAddr. */
export function socketAddrFromIp(ip: string, port: number): SocketAddr {
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw invalid(`${ip}:${port}`, 'bad port');
  if (net.isIPv4(ip)) return { family: 4, octets: ipv4Octets(ip), port, flowinfo: 0, scopeId: 0 };
  const pct = ip.indexOf('%');
  const bare = pct >= 0 ? ip.slice(0, pct) : ip;
  if (!net.isIPv6(bare)) throw invalid(ip, 'not an IP address');
  let scopeId = 0;
  if (pct >= 0) {
    const zone = ip.slice(pct + 1);
    // Rust's SocketAddrV6 parser only takes a numeric scope id.
    if (!/^\d+$/.test(zone) || Number(zone) > 0xffff_ffff) throw invalid(ip, 'the IPv6 zone must be numeric');
    scopeId = Number(zone);
  }
  return { family: 6, octets: ipv6Octets(bare), port, flowinfo: 0, scopeId };
}

/** Parses "1.2.3.4:8002" or "[::1]:8002" / "[fe80::1%2]:8002" (Rust's `SocketAddr::from_str`). */
export function parseSocketAddr(text: string): SocketAddr {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  if (!m) throw invalid(text, 'expected "ip:port" or "[ipv6]:port"');
  const port = Number(m[3]);
  if (m[1] !== undefined) {
    const addr = socketAddrFromIp(m[1], port);
    if (addr.family !== 6) throw invalid(text, 'brackets are for IPv6 only');
    return addr;
  }
  if (!net.isIPv4(m[2]!)) throw invalid(text, 'not an IPv4 address (IPv6 needs brackets)');
  return socketAddrFromIp(m[2]!, port);
}

/** Prints an IP the way Rust's `Display` does (RFC 5952 for IPv6: lowercase, longest zero run as "::"). */
export function formatIp(addr: Pick<SocketAddr, 'family' | 'octets'>): string {
  const o = addr.octets;
  if (addr.family === 4) return Array.from(o).join('.');
  const groups = Array.from({ length: 8 }, (_, i) => (o[2 * i]! << 8) | o[2 * i + 1]!);
  // IPv4-mapped addresses print their IPv4 tail, as Rust does.
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `::ffff:${o[12]}.${o[13]}.${o[14]}.${o[15]}`;
  }
  let bestAt = -1;
  let bestLen = 1; // a single zero group is not compressed
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestAt = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestAt < 0) return hex.join(':');
  return `${hex.slice(0, bestAt).join(':')}::${hex.slice(bestAt + bestLen).join(':')}`;
}

/** Rust's `Display`: "1.2.3.4:8002", "[::1]:8002", "[fe80::1%2]:8002". Also a valid grpc-js target. */
export function formatSocketAddr(addr: SocketAddr): string {
  if (addr.family === 4) return `${formatIp(addr)}:${addr.port}`;
  const zone = addr.scopeId === 0 ? '' : `%${addr.scopeId}`;
  return `[${formatIp(addr)}${zone}]:${addr.port}`;
}

/** Rust's derived `Ord` for `SocketAddr`: every V4 before every V6, then ip, port (, flowinfo, scope_id). */
export function compareSocketAddr(a: SocketAddr, b: SocketAddr): number {
  if (a.family !== b.family) return a.family - b.family;
  for (let i = 0; i < a.octets.length; i++) {
    const d = a.octets[i]! - b.octets[i]!;
    if (d !== 0) return d;
  }
  return a.port - b.port || a.flowinfo - b.flowinfo || a.scopeId - b.scopeId;
}

/** Sorts (Rust order) and removes duplicates, as upstream's `sort(); dedup()`. */
export function sortDedupSocketAddrs(addrs: readonly SocketAddr[]): SocketAddr[] {
  const sorted = [...addrs].sort(compareSocketAddr);
  return sorted.filter((a, i) => i === 0 || compareSocketAddr(sorted[i - 1]!, a) !== 0);
}
