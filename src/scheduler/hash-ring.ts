// The consistent-hash ring that picks one scheduler per task, bit-for-bit like upstream's `hashring` 0.3.6 ring in
// `dragonfly-client/src/grpc/scheduler.rs` (spec/scheduler.md §7). All peers of a task must reach the same scheduler
// or they never see each other as parents, so Rust peers and ours have to agree on every hash:
// - one point per scheduler `SocketAddr` (no virtual nodes), at SipHash-2-4(keys 0,0) of Rust's `Hash` encoding;
// - the key is the first 5 bytes of the task id as a Rust `String`;
// - lookup takes the first point whose hash is ≥ the key's hash, wrapping to the smallest.
// BigInt keeps the 64-bit arithmetic obviously right; a lookup hashes a handful of bytes, so speed does not matter.

import { formatSocketAddr, parseSocketAddr, type SocketAddr } from './socket-addr.js';

const MASK64 = (1n << 64n) - 1n;

function rotl(x: bigint, b: bigint): bigint {
  return ((x << b) | (x >> (64n - b))) & MASK64;
}

/** SipHash-2-4 of `data` (Rust's `std::hash::SipHasher` with keys (0, 0) by default), as an unsigned 64-bit BigInt. */
export function sipHash24(data: Uint8Array, k0 = 0n, k1 = 0n): bigint {
  let v0 = k0 ^ 0x736f6d6570736575n;
  let v1 = k1 ^ 0x646f72616e646f6dn;
  let v2 = k0 ^ 0x6c7967656e657261n;
  let v3 = k1 ^ 0x7465646279746573n;
  const round = (): void => {
    v0 = (v0 + v1) & MASK64;
    v1 = rotl(v1, 13n) ^ v0;
    v0 = rotl(v0, 32n);
    v2 = (v2 + v3) & MASK64;
    v3 = rotl(v3, 16n) ^ v2;
    v0 = (v0 + v3) & MASK64;
    v3 = rotl(v3, 21n) ^ v0;
    v2 = (v2 + v1) & MASK64;
    v1 = rotl(v1, 17n) ^ v2;
    v2 = rotl(v2, 32n);
  };
  const full = data.length - (data.length % 8);
  for (let i = 0; i < full; i += 8) {
    let m = 0n;
    for (let j = 7; j >= 0; j--) m = (m << 8n) | BigInt(data[i + j]!);
    v3 ^= m;
    round();
    round();
    v0 ^= m;
  }
  // Last block: the remaining bytes little-endian, the length (mod 256) in the top byte.
  let b = BigInt(data.length & 0xff) << 56n;
  for (let j = data.length - 1; j >= full; j--) b |= BigInt(data[j]!) << BigInt(8 * (j - full));
  v3 ^= b;
  round();
  round();
  v0 ^= b;
  v2 ^= 0xffn;
  round();
  round();
  round();
  round();
  return (v0 ^ v1 ^ v2 ^ v3) & MASK64;
}

/** Bytes Rust's `Hash for str` feeds the hasher: the UTF-8 bytes, then 0xFF. */
export function strHashBytes(key: string): Uint8Array {
  const utf8 = Buffer.from(key, 'utf8');
  const out = new Uint8Array(utf8.length + 1);
  out.set(utf8);
  out[utf8.length] = 0xff;
  return out;
}

/**
 * Bytes Rust's derived `Hash for SocketAddr` feeds the hasher (64-bit target, little-endian):
 * - the enum discriminant as isize (8 bytes LE): 0 = V4, 1 = V6;
 * - V4: `Ipv4Addr` hashes as `u32::from_ne_bytes(octets)`, i.e. the 4 octets as they are; then port u16 LE;
 * - V6: `Ipv6Addr` likewise hashes as `u128::from_ne_bytes(octets)`, i.e. the 16 octets with no length prefix
 *   (checked against rustc 1.95: a `[u8; 16]` slice-style hash would add 8 bytes of length); then port u16 LE,
 *   flowinfo u32 LE, scope_id u32 LE.
 */
export function socketAddrHashBytes(addr: SocketAddr): Uint8Array {
  const v4 = addr.family === 4;
  const buf = Buffer.alloc(v4 ? 8 + 4 + 2 : 8 + 16 + 2 + 4 + 4);
  const at = buf.writeBigUInt64LE(v4 ? 0n : 1n, 0);
  buf.set(addr.octets, at);
  const afterPort = buf.writeUInt16LE(addr.port, at + addr.octets.length);
  if (!v4) buf.writeUInt32LE(addr.scopeId, buf.writeUInt32LE(addr.flowinfo, afterPort));
  return buf;
}

/** The ring key of a task: its first 5 bytes (upstream: `task_id[0..5]`; task ids are ASCII hex). */
export function taskRingKey(taskId: string): string {
  return Buffer.from(taskId, 'utf8').subarray(0, 5).toString('utf8');
}

interface RingPoint {
  hash: bigint;
  addr: string;
}

/** One point per scheduler address; immutable (build a new ring when the scheduler list changes). */
export class HashRing {
  readonly #points: RingPoint[];

  /** `addrs` are socket addresses ("ip:port", "[ipv6]:port"); duplicates collapse into one point. */
  constructor(addrs: readonly (string | SocketAddr)[]) {
    const byAddr = new Map<string, RingPoint>();
    for (const a of addrs) {
      const parsed = typeof a === 'string' ? parseSocketAddr(a) : a;
      const addr = formatSocketAddr(parsed);
      byAddr.set(addr, { hash: sipHash24(socketAddrHashBytes(parsed)), addr });
    }
    this.#points = [...byAddr.values()].sort((x, y) => (x.hash < y.hash ? -1 : x.hash > y.hash ? 1 : 0));
  }

  get size(): number {
    return this.#points.length;
  }

  /** The addresses in ring order, with their point. */
  points(): ReadonlyArray<Readonly<RingPoint>> {
    return this.#points;
  }

  /** The node for a raw ring key: the first point ≥ hash(key), wrapping. Undefined for an empty ring. */
  get(key: string): string | undefined {
    const pts = this.#points;
    if (pts.length === 0) return undefined;
    const h = sipHash24(strHashBytes(key));
    let lo = 0;
    let hi = pts.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (pts[mid]!.hash < h) lo = mid + 1;
      else hi = mid;
    }
    return pts[lo === pts.length ? 0 : lo]!.addr;
  }

  /** The scheduler for a task id (keyed by its first 5 bytes, as upstream). */
  pick(taskId: string): string | undefined {
    return this.get(taskRingKey(taskId));
  }
}
