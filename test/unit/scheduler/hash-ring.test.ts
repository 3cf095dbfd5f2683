// The ring must agree with upstream's `hashring` 0.3.6 ring bit for bit, or a task's Rust peers and ours land on
// different schedulers and never share (spec/scheduler.md §7).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  HashRing,
  sipHash24,
  socketAddrHashBytes,
  strHashBytes,
  taskRingKey,
} from '../../../src/scheduler/hash-ring.js';
import {
  compareSocketAddr,
  formatSocketAddr,
  parseSocketAddr,
  sortDedupSocketAddrs,
} from '../../../src/scheduler/socket-addr.js';

const nodeHash = (addr: string): bigint => sipHash24(socketAddrHashBytes(parseSocketAddr(addr)));
const keyHash = (key: string): bigint => sipHash24(strHashBytes(key));

test('SipHash-2-4 reference vector (Aumasson & Bernstein, key 00..0f, input 00..0e)', () => {
  const k0 = 0x0706050403020100n;
  const k1 = 0x0f0e0d0c0b0a0908n;
  const input = Uint8Array.from({ length: 15 }, (_, i) => i);
  assert.equal(sipHash24(input, k0, k1), 0xa129ca6149be45e5n);
  // Empty input with zero keys, as Rust's SipHasher::new().finish().
  assert.equal(sipHash24(new Uint8Array(0)), 2202906307356721367n);
});

test('node hashes: every vector of spec/scheduler.md §7', () => {
  assert.equal(nodeHash('127.0.0.1:8002'), 3184271735162631494n);
  assert.equal(nodeHash('127.0.0.2:8002'), 773254993169733840n);
  assert.equal(nodeHash('10.0.0.1:8002'), 11045254673571024366n);
});

test('key hashes: every vector of spec/scheduler.md §7', () => {
  assert.equal(keyHash('5844f'), 17288273808646522682n);
  assert.equal(keyHash('00000'), 3613695785626336352n);
});

test('picks: every vector of spec/scheduler.md §7', () => {
  const ring = new HashRing(['127.0.0.1:8002', '127.0.0.2:8002', '10.0.0.1:8002']);
  assert.equal(ring.get('5844f'), '127.0.0.2:8002');
  assert.equal(ring.get('00000'), '10.0.0.1:8002');
  // A task id is keyed by its first 5 characters.
  assert.equal(ring.pick('5844f' + 'a'.repeat(59)), '127.0.0.2:8002');
  assert.equal(ring.pick('00000' + 'f'.repeat(59)), '10.0.0.1:8002');
});

test('IPv6 nodes and more keys (computed with rustc 1.95 std::hash::SipHasher over a derived-Hash SocketAddr)', () => {
  assert.equal(nodeHash('[::1]:8002'), 4562922474015370019n);
  assert.equal(nodeHash('[fe80::1%2]:8002'), 5955234000384351004n);
  assert.equal(nodeHash('[2001:db8::5]:65535'), 3091004181209981015n);
  assert.equal(keyHash('abcde'), 17639949557903276638n);
  assert.equal(keyHash(''), 2368135510806073586n);
  assert.equal(keyHash('ü1234'), 15854799833581517132n);
});

test('lookup wraps past the largest point to the smallest', () => {
  // Points: 127.0.0.2 (7.7e17) < 127.0.0.1 (3.2e18) < 10.0.0.1 (1.1e19). "5844f" hashes to 1.73e19, above all.
  const ring = new HashRing(['127.0.0.1:8002', '127.0.0.2:8002', '10.0.0.1:8002']);
  assert.deepEqual(
    ring.points().map((p) => p.addr),
    ['127.0.0.2:8002', '127.0.0.1:8002', '10.0.0.1:8002'],
  );
  assert.ok(keyHash('5844f') > ring.points()[2]!.hash);
  assert.equal(ring.get('5844f'), ring.points()[0]!.addr);
  // "00000" (3.6e18) falls between 127.0.0.1 and 10.0.0.1: the next point up.
  assert.equal(ring.get('00000'), '10.0.0.1:8002');
});

test('choice is stable: order and duplicates of the input do not matter, a one-node ring takes everything', () => {
  const a = new HashRing(['127.0.0.1:8002', '127.0.0.2:8002', '10.0.0.1:8002']);
  const b = new HashRing(['10.0.0.1:8002', '127.0.0.1:8002', '127.0.0.2:8002', '10.0.0.1:8002']);
  assert.equal(b.size, 3);
  for (let i = 0; i < 200; i++) {
    const id = i.toString(16).padStart(5, '0') + 'deadbeef';
    assert.equal(a.pick(id), b.pick(id));
    assert.equal(a.pick(id), a.pick(id));
  }
  const one = new HashRing(['127.0.0.1:8002']);
  assert.equal(one.pick('5844fabc'), '127.0.0.1:8002');
  assert.equal(new HashRing([]).pick('5844fabc'), undefined);
});

test('removing a scheduler only moves the tasks it owned', () => {
  const full = new HashRing(['127.0.0.1:8002', '127.0.0.2:8002', '10.0.0.1:8002']);
  const less = new HashRing(['127.0.0.1:8002', '10.0.0.1:8002']);
  for (let i = 0; i < 300; i++) {
    const id = (i * 7919).toString(16).padStart(5, '0');
    const before = full.pick(id);
    if (before !== '127.0.0.2:8002') assert.equal(less.pick(id), before);
  }
});

test('task ring key is the first 5 bytes', () => {
  assert.equal(taskRingKey('5844fabcdef'), '5844f');
  assert.equal(taskRingKey('abc'), 'abc');
});

test('socket addresses parse, print and sort as Rust does', () => {
  assert.equal(formatSocketAddr(parseSocketAddr('[2001:0db8:0:0:0:0:0:5]:80')), '[2001:db8::5]:80');
  assert.equal(formatSocketAddr(parseSocketAddr('[fe80::1%2]:8002')), '[fe80::1%2]:8002');
  assert.equal(formatSocketAddr(parseSocketAddr('[::ffff:1.2.3.4]:1')), '[::ffff:1.2.3.4]:1');
  assert.equal(formatSocketAddr(parseSocketAddr('[1:0:0:2:0:0:0:3]:1')), '[1:0:0:2::3]:1');
  assert.equal(formatSocketAddr(parseSocketAddr('[1:0:2:3:4:5:6:7]:1')), '[1:0:2:3:4:5:6:7]:1');
  assert.throws(() => parseSocketAddr('::1:8002'), /invalid scheduler address/);
  assert.throws(() => parseSocketAddr('host:8002'), /invalid scheduler address/);
  assert.throws(() => parseSocketAddr('1.2.3.4:70000'), /invalid scheduler address/);
  const sorted = sortDedupSocketAddrs(
    ['[::1]:1', '10.0.0.2:1', '10.0.0.1:9', '10.0.0.1:2', '10.0.0.2:1'].map(parseSocketAddr),
  ).map(formatSocketAddr);
  assert.deepEqual(sorted, ['10.0.0.1:2', '10.0.0.1:9', '10.0.0.2:1', '[::1]:1']);
  assert.ok(compareSocketAddr(parseSocketAddr('9.0.0.0:1'), parseSocketAddr('10.0.0.0:1')) < 0);
});
