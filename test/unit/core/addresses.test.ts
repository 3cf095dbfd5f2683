import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AddressList,
  ipOfPeer,
  isLoopbackIp,
  normalizeIp,
  specialAddressKind,
} from '../../../src/core/addresses.js';

test('normalizeIp: brackets, zones and IPv4-mapped IPv6 go; host names are not IPs', () => {
  assert.deepEqual(normalizeIp('[::1]'), { ip: '::1', family: 'ipv6' });
  assert.deepEqual(normalizeIp('fe80::1%eth0'), { ip: 'fe80::1', family: 'ipv6' });
  assert.deepEqual(normalizeIp('::ffff:127.0.0.1'), { ip: '127.0.0.1', family: 'ipv4' });
  assert.equal(normalizeIp('localhost'), undefined);
  assert.equal(isLoopbackIp('::ffff:127.0.0.2'), true);
  assert.equal(isLoopbackIp('10.0.0.1'), false);
});

test('specialAddressKind: loopback, private, link-local (metadata), CGNAT, ULA, NAT64 of a private address', () => {
  const cases: Array<[string, RegExp | undefined]> = [
    ['127.0.0.1', /loopback/],
    ['127.5.5.5', /loopback/],
    ['::1', /loopback/],
    ['::ffff:127.0.0.1', /loopback/],
    ['10.1.2.3', /private/],
    ['172.16.0.1', /private/],
    ['172.31.255.255', /private/],
    ['192.168.1.1', /private/],
    ['169.254.169.254', /link-local/],
    ['100.100.100.200', /shared/],
    ['192.0.0.192', /IETF/],
    ['0.0.0.0', /this network/],
    ['fd00:ec2::254', /unique local/],
    ['fe80::1', /link-local/],
    ['64:ff9b::7f00:1', /loopback behind NAT64/],
    ['224.0.0.1', /multicast/],
    // public
    ['8.8.8.8', undefined],
    ['172.32.0.1', undefined],
    ['64:ff9b::808:808', undefined],
    ['2001:4860:4860::8888', undefined],
    ['192.0.2.2', undefined],
  ];
  for (const [ip, want] of cases) {
    const kind = specialAddressKind(ip);
    if (want) assert.match(kind ?? '', want, ip);
    else assert.equal(kind, undefined, ip);
  }
});

test('AddressList: IPs, CIDRs and (where allowed) host names; bad entries name the key', () => {
  const l = new AddressList(['127.0.0.1', '10.0.0.0/8', 'fd00::/8', 'Registry.Internal.'], 'k', {
    hostNames: true,
  });
  assert.equal(l.hasIp('127.0.0.1'), true);
  assert.equal(l.hasIp('::ffff:127.0.0.1'), true);
  assert.equal(l.hasIp('127.0.0.2'), false);
  assert.equal(l.hasIp('10.200.0.1'), true);
  assert.equal(l.hasIp('fd12::1'), true);
  assert.equal(l.hasHost('registry.internal'), true);
  assert.equal(l.hasHost('REGISTRY.internal'), true);
  assert.equal(l.hasHost('10.3.3.3'), true);
  assert.equal(l.hasHost('other.internal'), false);
  assert.throws(() => new AddressList(['registry.internal'], 'security.trustedSchedulers'), {
    code: 'INVALID_CONFIG',
    message:
      /security\.trustedSchedulers: expected an IP or a CIDR like "10\.0\.0\.0\/8", got "registry\.internal"/,
  });
  assert.throws(() => new AddressList(['10.0.0.0/33'], 'k'), { code: 'INVALID_CONFIG' });
  assert.throws(() => new AddressList(['not a host'], 'k', { hostNames: true }), { code: 'INVALID_CONFIG' });
});

test('ipOfPeer reads grpc-js getPeer() forms', () => {
  assert.equal(ipOfPeer('10.0.0.5:41234'), '10.0.0.5');
  assert.equal(ipOfPeer('::ffff:127.0.0.1:41234'), '127.0.0.1');
  assert.equal(ipOfPeer('[::1]:41234'), '::1');
  assert.equal(ipOfPeer('::1:41234'), '::1');
  assert.equal(ipOfPeer('fd00::5:4000'), 'fd00::5');
  assert.equal(ipOfPeer('[fd00::5]:8002'), 'fd00::5');
  assert.equal(ipOfPeer('127.0.0.1'), '127.0.0.1');
  assert.equal(ipOfPeer('unknown'), undefined);
  assert.equal(ipOfPeer('/tmp/dfdaemon.sock'), undefined);
});
