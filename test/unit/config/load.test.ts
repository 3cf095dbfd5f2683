import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadDfdaemonConfig, parseDfdaemonConfig } from '../../../src/config/load.js';
import { SYSTEM_DIRS, type DragonflyDirs } from '../../../src/config/dirs.js';
import { DfError } from '../../../src/core/errors.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'df-config-load-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const dirs: DragonflyDirs = { ...SYSTEM_DIRS };
const noIp = () => undefined;
const parse = (text: string) =>
  parseDfdaemonConfig(text, 'dfdaemon.yaml', { dirs, hostname: 'h', detectHostIp: noIp });

function write(name: string, text: string): string {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, text);
  return file;
}

function assertConfigError(text: string, ...parts: Array<string | RegExp>) {
  assert.throws(
    () => parse(text),
    (e: unknown) => {
      assert.ok(e instanceof DfError, String(e));
      assert.equal(e.code, 'INVALID_CONFIG');
      for (const p of parts) {
        if (typeof p === 'string')
          assert.ok(e.message.includes(p), `${JSON.stringify(e.message)} lacks ${p}`);
        else assert.match(e.message, p);
      }
      return true;
    },
  );
}

const FULL = `
host:
  idc: idc-1
  location: cn|hz
  hostname: peer-a
  ip: 10.0.0.5
  schedulerClusterID: 3
server:
  pluginDir: /opt/df/plugins
  cacheDir: /opt/df/cache
  adaptiveRateLimit:
    bucketCount: 20
    bucketInterval: 100ms
    cpuThreshold: 80
    memoryThreshold: 85
    shedCooldown: 10s
    collectInterval: 1s
download:
  server:
    socketPath: /tmp/df/dfdaemon.sock
    requestRateLimit: 4000
    requestBufferSize: 100
    transferBufferSize: 16MiB
  protocol: quic
  bandwidthLimit: 10GB
  backToSourceBandwidthLimit: 512MiB
  pieceTimeout: 30s
  collectedPieceTimeout: 1m
  concurrentPieceCount: 16
upload:
  server:
    ip: 0.0.0.0
    port: 14000
    caCert: /etc/ssl/ca.crt
    cert: /etc/ssl/server.crt
    key: /etc/ssl/server.key
    requestRateLimit: 1000
    requestBufferSize: 20
  client:
    caCert: /etc/ssl/ca.crt
    cert: /etc/ssl/client.crt
    key: /etc/ssl/client.key
  disableShared: true
  bandwidthLimit: 1GB
manager:
  addr: http://manager:65003
  caCert: /etc/ssl/ca.crt
  cert: /etc/ssl/m.crt
  key: /etc/ssl/m.key
scheduler:
  announceInterval: 1m
  scheduleTimeout: 30s
  maxScheduleCount: 3
  caCert: /etc/ssl/ca.crt
seedPeer:
  enable: true
  type: super
dynconfig:
  refreshInterval: 5m
storage:
  server:
    ip: 127.0.0.1
    tcpPort: 14005
    tcpFastopen: true
    quicPort: 14006
    maxConnections: 300
    cutThrough: true
  dir: /data/dragonfly
  keep: true
  writePieceTimeout: 20s
  writeBufferSize: 8388608
  readBufferSize: 1MiB
  cacheCapacity: 256MB
backend:
  requestHeader:
    X-Custom-Header: value
  maxRetries: 3
  enableCacheTemporaryRedirect: false
  cacheTemporaryRedirectTTL: 15m
  putConcurrentChunkCount: 2
  putChunkSize: 2mib
  putTimeout: 1m
  enableHickoryDNS: false
gc:
  interval: 1h
  policy:
    taskTTL: 12h
    persistentTaskTTL: 24h
    persistentCacheTaskTTL: 48h
    pageCacheIdleTimeout: 1h30m
    diskThreshold: 500GB
    diskHighThresholdPercent: 90
    diskLowThresholdPercent: 70
proxy:
  server:
    ip: 127.0.0.1
    port: 8080
    requestRateLimit: 100
    maxConnections: 500
    caCert: /p/ca.pem
    caKey: /p/ca.key
    basicAuth:
      username: admin
      password: secret
  rules:
    - regex: '^https?://example\\.com/.*$'
      useTLS: true
      redirect: https://mirror.example.com
      filteredQueryParams: [Signature, Expires]
      schedulingPolicy: always
    - regex: 'blobs/sha256.*'
  registryMirror:
    addr: https://mirror.example.com
    cert: /p/cert.pem
    enableTaskIDBasedBlobDigest: true
  disableBackToSource: true
  prefetch: true
  prefetchBandwidthLimit: 1GB
  readBufferSize: 8388608
security:
  enable: false
  trustedSchedulers: [10.0.0.1, 10.1.0.0/16]
  allowedPrivateSources: [127.0.0.1, 10.0.0.0/8, registry.internal]
network:
  enableIPv6: true
health:
  server:
    ip: '::1'
    port: 14003
    maxConnections: 16
metrics:
  server:
    port: 14002
stats:
  server:
    port: 14004
tracing:
  protocol: grpc
  endpoint: localhost:4317
  path: /v1/traces
  headers:
    X-Custom-Header: value
`;

test('a full example file with every section loads without warnings', () => {
  const { config, warnings } = parse(FULL);
  assert.deepEqual(warnings, []);
  assert.deepEqual(config.host, {
    idc: 'idc-1',
    location: 'cn|hz',
    hostname: 'peer-a',
    ip: '10.0.0.5',
    schedulerClusterID: 3,
  });
  assert.deepEqual(config.server.adaptiveRateLimit, {
    bucketCount: 20,
    bucketInterval: 100,
    cpuThreshold: 80,
    memoryThreshold: 85,
    shedCooldown: 10_000,
    collectInterval: 1000,
  });
  assert.equal(config.server.pluginDir, '/opt/df/plugins');
  assert.deepEqual(config.download, {
    server: {
      socketPath: '/tmp/df/dfdaemon.sock',
      requestRateLimit: 4000,
      requestBufferSize: 100,
      transferBufferSize: 16 * 1024 * 1024,
      maxConnections: 1024,
    },
    protocol: 'quic',
    bandwidthLimit: 10e9,
    backToSourceBandwidthLimit: 512 * 1024 * 1024,
    pieceTimeout: 30_000,
    collectedPieceTimeout: 60_000,
    concurrentPieceCount: 16,
  });
  assert.equal(config.upload.server.port, 14000);
  assert.equal(config.upload.server.key, '/etc/ssl/server.key');
  assert.equal(config.upload.client.cert, '/etc/ssl/client.crt');
  assert.equal(config.upload.disableShared, true);
  assert.equal(config.upload.bandwidthLimit, 1e9);
  assert.equal(config.manager.addr, 'http://manager:65003');
  assert.equal(config.scheduler.scheduleTimeout, 30_000);
  assert.equal(config.scheduler.maxScheduleCount, 3);
  assert.deepEqual(config.seedPeer, { enable: true, type: 'super' });
  assert.equal(config.dynconfig.refreshInterval, 300_000);
  assert.deepEqual(config.storage, {
    server: {
      ip: '127.0.0.1',
      tcpPort: 14005,
      tcpFastopen: true,
      quicPort: 14006,
      maxConnections: 300,
      cutThrough: true,
    },
    client: {},
    dir: '/data/dragonfly',
    keep: true,
    writePieceTimeout: 20_000,
    writeBufferSize: 8 * 1024 * 1024,
    readBufferSize: 1024 * 1024,
    cacheCapacity: 256e6,
  });
  assert.deepEqual(config.backend, {
    requestHeader: { 'X-Custom-Header': 'value' },
    maxRetries: 3,
    enableCacheTemporaryRedirect: false,
    cacheTemporaryRedirectTTL: 900_000,
    putConcurrentChunkCount: 2,
    putChunkSize: 2 * 1024 * 1024,
    putTimeout: 60_000,
    enableHickoryDNS: false,
  });
  assert.deepEqual(config.gc, {
    interval: 3_600_000,
    policy: {
      taskTTL: 12 * 3_600_000,
      persistentTaskTTL: 24 * 3_600_000,
      persistentCacheTaskTTL: 48 * 3_600_000,
      pageCacheIdleTimeout: 90 * 60_000,
      diskThreshold: 500e9,
      diskHighThresholdPercent: 90,
      diskLowThresholdPercent: 70,
    },
  });
  assert.deepEqual(config.proxy.server.basicAuth, { username: 'admin', password: 'secret' });
  assert.equal(config.proxy.server.caKey, '/p/ca.key');
  assert.equal(config.proxy.rules?.length, 2);
  assert.deepEqual(config.proxy.rules?.[0], {
    regex: '^https?://example\\.com/.*$',
    useTLS: true,
    redirect: 'https://mirror.example.com',
    filteredQueryParams: ['Signature', 'Expires'],
    schedulingPolicy: 'always',
  });
  assert.equal(config.proxy.rules?.[1]?.useTLS, false);
  assert.equal(config.proxy.rules?.[1]?.schedulingPolicy, 'auto');
  assert.ok(config.proxy.rules?.[1]?.filteredQueryParams.includes('X-Amz-Signature'));
  assert.deepEqual(config.proxy.registryMirror, {
    addr: 'https://mirror.example.com',
    cert: '/p/cert.pem',
    enableTaskIDBasedBlobDigest: true,
  });
  assert.equal(config.proxy.prefetchBandwidthLimit, 1e9);
  assert.deepEqual(config.security, {
    enable: false,
    trustedSchedulers: ['10.0.0.1', '10.1.0.0/16'],
    allowedPrivateSources: ['127.0.0.1', '10.0.0.0/8', 'registry.internal'],
  });
  assert.equal(config.network.enableIPv6, true);
  assert.equal(config.health.server.ip, '::1');
  assert.equal(config.health.server.maxConnections, 16);
  assert.equal(config.metrics.server.maxConnections, 64);
  assert.equal(config.proxy.server.maxConnections, 500);
  assert.equal(config.upload.server.maxConnections, 1024);
  assert.equal(config.metrics.server.port, 14002);
  assert.equal(config.stats.server.port, 14004);
  assert.deepEqual(config.tracing, {
    protocol: 'grpc',
    endpoint: 'localhost:4317',
    path: '/v1/traces',
    headers: { 'X-Custom-Header': 'value' },
  });
  // convert(): unset listen IPs become the unspecified address of the family (IPv6 here).
  assert.equal(config.metrics.server.ip, '::');
  assert.equal(config.stats.server.ip, '::');
  assert.equal(config.upload.server.ip, '0.0.0.0');
});

test('an empty file gives the defaults with IPv4 listen addresses', () => {
  const { config, warnings } = parse('');
  assert.deepEqual(warnings, []);
  assert.equal(config.download.pieceTimeout, 360_000);
  for (const s of [config.upload.server, config.storage.server, config.health.server])
    assert.equal(s.ip, '0.0.0.0');
  // Ours: the proxy listens on loopback unless its address is named (no open proxy by default).
  assert.equal(config.proxy.server.ip, '127.0.0.1');
  assert.equal(parse('network:\n  enableIPv6: true\n').config.proxy.server.ip, '::1');
  assert.equal(parse('proxy:\n  server:\n    ip: 0.0.0.0\n').config.proxy.server.ip, '0.0.0.0');
  assert.equal(config.host.ip, undefined);
  assert.deepEqual(config.security, { enable: false, trustedSchedulers: [], allowedPrivateSources: [] });
});

test('security.enable: true is refused at start, saying why and what to use instead; false is accepted', () => {
  // Upstream declares security.enable and reads it nowhere: true would promise security and turn nothing on.
  assertConfigError(
    'security:\n  enable: true\n',
    /^security\.enable: true is refused: upstream dfdaemon reads this key nowhere/,
    'upload.server.caCert/cert/key (mTLS on the upload port)',
    'storage.server.caCert/cert/key (TLS on Vortex)',
    '(dfdaemon.yaml:2)',
  );
  const { config, warnings } = parse('security:\n  enable: false\n');
  assert.equal(config.security.enable, false);
  assert.deepEqual(warnings, []);
});

test('TLS keys: a set that cannot work is an error naming the key and what it lacks', () => {
  assertConfigError(
    'upload:\n  server:\n    cert: /s.crt\n',
    'upload.server.key: expected the private key of upload.server.cert (a file path): upload.server.cert is set without it',
  );
  assertConfigError(
    'storage:\n  server:\n    key: /s.key\n',
    'storage.server.cert: expected the certificate of storage.server.key (a file path)',
  );
  assertConfigError(
    'upload:\n  server:\n    caCert: /ca.crt\n',
    /upload\.server\.caCert: needs upload\.server\.cert and upload\.server\.key: a server asks for client certificates/,
  );
  assertConfigError(
    'embeddedScheduler:\n  caCert: /ca.crt\n',
    /embeddedScheduler\.caCert: needs embeddedScheduler\.cert and embeddedScheduler\.key/,
  );
  for (const section of ['upload.client', 'storage.client', 'scheduler', 'manager']) {
    const [a, b] = section.split('.');
    const yaml = b
      ? `${a}:\n  ${b}:\n    cert: /c.crt\n    key: /c.key\n`
      : `${a}:\n  cert: /c.crt\n  key: /c.key\n`;
    assertConfigError(
      yaml,
      `${section}.caCert: expected the CA certificate that signed the servers' certificates (a file path)`,
    );
  }
});

test('TLS keys: what turns TLS on is accepted, in every section that has them', () => {
  const { config, warnings } = parse(`upload:
  server: { cert: /s.crt, key: /s.key }
  client: { caCert: /ca.crt }
storage:
  server: { caCert: /ca.crt, cert: /s.crt, key: /s.key }
  client: { caCert: /ca.crt, cert: /c.crt, key: /c.key }
scheduler: { caCert: /ca.crt }
manager: { addr: http://manager:65003, caCert: /ca.crt, cert: /c.crt, key: /c.key }
embeddedScheduler: { cert: /s.crt, key: /s.key, maxConnections: 100 }
download:
  server: { maxConnections: 10 }
`);
  assert.deepEqual(warnings, []);
  assert.deepEqual(config.storage.client, { caCert: '/ca.crt', cert: '/c.crt', key: '/c.key' });
  assert.equal(config.storage.server.caCert, '/ca.crt');
  assert.equal(config.embeddedScheduler.cert, '/s.crt');
  assert.equal(config.embeddedScheduler.maxConnections, 100);
  assert.equal(config.download.server.maxConnections, 10);
  assert.equal(parse('').config.download.server.maxConnections, 1024);
  assert.equal(parse('').config.embeddedScheduler.maxConnections, 4096);
});

test('security address lists: a bad entry is an error naming the key and the expected form', () => {
  assert.throws(
    () => parse('security:\n  trustedSchedulers: [registry.internal]\n'),
    (e: Error) => {
      assert.match(e.message, /security\.trustedSchedulers.*expected a list of IPs and CIDRs/);
      return true;
    },
  );
  assert.throws(
    () => parse('security:\n  allowedPrivateSources: [10.0.0.0/40]\n'),
    (e: Error) => {
      assert.match(e.message, /security\.allowedPrivateSources.*expected a list of IPs, CIDRs/);
      return true;
    },
  );
});

test('null sections and keys take defaults; adaptiveRateLimit: null turns it off', () => {
  const { config } = parse('download:\nupload:\n  bandwidthLimit:\nserver:\n  adaptiveRateLimit: null\n');
  assert.equal(config.download.concurrentPieceCount, 8);
  assert.equal(config.upload.bandwidthLimit, 50e9);
  assert.equal(config.server.adaptiveRateLimit, null);
});

test('seedPeer present without type is super, as upstream (field-level serde default)', () => {
  assert.equal(parse('seedPeer:\n  enable: true\n').config.seedPeer.type, 'super');
  assert.equal(parse('').config.seedPeer.type, 'normal');
});

test('unknown keys are warnings naming the full dotted key', () => {
  const { config, warnings } = parse(
    'download:\n  foo: 1\n  pieceTimeout: 10s\nbogus: true\nproxy:\n  rules:\n    - regex: a\n      nope: 1\n',
  );
  assert.equal(config.download.pieceTimeout, 10_000);
  assert.equal(warnings.length, 3);
  assert.match(warnings[0]!, /unknown key download\.foo \(line 2\)/);
  assert.match(warnings[1]!, /unknown key bogus/);
  assert.match(warnings[2]!, /unknown key proxy\.rules\[0\]\.nope/);
  // Free-form maps are not checked.
  assert.deepEqual(parse('backend:\n  requestHeader:\n    X-A: b\n').warnings, []);
});

test('renamed keys are warnings naming old and new key, and the value is honoured', () => {
  const { config, warnings } = parse(
    [
      'download:',
      '  rateLimit: 1GB',
      'upload:',
      '  rateLimit: 2GB',
      'proxy:',
      '  prefetchRateLimit: 3GB',
      '  registryMirror:',
      '    certs: /c.pem',
      'network:',
      '  enableIpv6: true',
      'storage:',
      '  server:',
      '    protocol: quic',
      'manager:',
      '  addrs: ["m1:65003", "m2:65003"]',
    ].join('\n'),
  );
  assert.equal(config.download.bandwidthLimit, 1e9);
  assert.equal(config.upload.bandwidthLimit, 2e9);
  assert.equal(config.proxy.prefetchBandwidthLimit, 3e9);
  assert.equal(config.proxy.registryMirror.cert, '/c.pem');
  assert.equal(config.network.enableIPv6, true);
  assert.equal(config.download.protocol, 'quic');
  assert.equal(config.manager.addr, 'm1:65003');
  assert.equal(warnings.length, 7);
  assert.ok(warnings.some((w) => w.includes('download.rateLimit') && w.includes('download.bandwidthLimit')));
  assert.ok(warnings.some((w) => w.includes('network.enableIpv6') && w.includes('network.enableIPv6')));
  assert.ok(warnings.every((w) => !w.startsWith('unknown key')));
});

test('a renamed key loses to its new key when both are set', () => {
  const { config, warnings } = parse('download:\n  rateLimit: 1GB\n  bandwidthLimit: 2GB\n');
  assert.equal(config.download.bandwidthLimit, 2e9);
  assert.match(warnings[0]!, /download\.rateLimit.*ignoring it because download\.bandwidthLimit is also set/);
});

test('gc dist* spellings are accepted as aliases of disk*', () => {
  const { config, warnings } = parse(
    'gc:\n  policy:\n    distThreshold: 100GB\n    distHighThresholdPercent: 90\n    distLowThresholdPercent: 70\n',
  );
  assert.equal(config.gc.policy.diskThreshold, 100e9);
  assert.equal(config.gc.policy.diskHighThresholdPercent, 90);
  assert.equal(config.gc.policy.diskLowThresholdPercent, 70);
  assert.equal(warnings.length, 3);
  assert.match(warnings[1]!, /gc\.policy\.distHighThresholdPercent .*gc\.policy\.diskHighThresholdPercent/);
});

test('removed keys are warnings with a hint', () => {
  const { warnings } = parse('seedPeer:\n  clusterID: 1\nscheduler:\n  enableBackToSource: true\n');
  assert.equal(warnings.length, 2);
  assert.match(
    warnings[0]!,
    /scheduler\.enableBackToSource .*no longer supported.*proxy\.disableBackToSource/,
  );
  assert.match(warnings[1]!, /seedPeer\.clusterID/);
});

test('malformed YAML names the file and the line', () => {
  const file = write('bad.yaml', 'download:\n  pieceTimeout: 10s\n  bad: [1, 2\nupload: {}\n');
  assert.throws(
    () => loadDfdaemonConfig(file, { dirs }),
    (e: unknown) => e instanceof DfError && e.code === 'INVALID_CONFIG' && e.message.startsWith(`${file}:4:`),
  );
  assertConfigError('a: 1\na: 2\n', 'dfdaemon.yaml:2', 'invalid YAML');
  assertConfigError('- 1\n', 'expected a mapping');
});

test('invalid values name the key and the expected form', () => {
  assertConfigError(
    'download:\n  pieceTimeout: abc\n',
    'download.pieceTimeout: expected a duration like "360s", got "abc"',
    'dfdaemon.yaml:2',
  );
  assertConfigError('download:\n  pieceTimeout: 360\n', 'download.pieceTimeout: expected a duration');
  assertConfigError(
    'upload:\n  bandwidthLimit: 10XB\n',
    'upload.bandwidthLimit: expected a size like "50GB"',
    '"10XB"',
  );
  assertConfigError('download:\n  protocol: udp\n', 'download.protocol: expected "tcp" or "quic", got "udp"');
  assertConfigError('seedPeer:\n  type: strong\n', 'seedPeer.type: expected "normal" or "super"');
  assertConfigError(
    'proxy:\n  server:\n    port: 70000\n',
    'proxy.server.port: expected a port number',
    '70000',
  );
  assertConfigError('upload:\n  server:\n    port: "4000"\n', 'upload.server.port: expected a port number');
  assertConfigError('storage:\n  keep: yes\n', 'storage.keep: expected true or false, got "yes"');
  assertConfigError('host:\n  ip: not-an-ip\n', 'host.ip: expected an IP address');
  assertConfigError(
    'download:\n  concurrentPieceCount: 0\n',
    'download.concurrentPieceCount: expected an integer from 1',
  );
  assertConfigError('scheduler:\n  maxScheduleCount: 0\n', 'scheduler.maxScheduleCount');
  assertConfigError(
    'gc:\n  policy:\n    diskHighThresholdPercent: 100\n',
    'gc.policy.diskHighThresholdPercent: expected an integer percent from 1 to 99, got 100',
  );
  assertConfigError(
    'proxy:\n  rules:\n    - regex: "(unclosed"\n',
    'proxy.rules[0].regex: expected a regular expression',
  );
  assertConfigError(
    'proxy:\n  rules:\n    - regex: a\n      schedulingPolicy: sometimes\n',
    'proxy.rules[0].schedulingPolicy: expected "auto" or "always"',
  );
  assertConfigError('download: 5\n', 'download: expected a mapping of keys, got 5');
  assertConfigError(
    'server:\n  adaptiveRateLimit:\n    cpuThreshold: 101\n',
    'server.adaptiveRateLimit.cpuThreshold',
  );
  assertConfigError('tracing:\n  protocol: udp\n', 'tracing.protocol: expected "http" or "https" or "grpc"');
});

test('an invalid value reached through a renamed key names both keys', () => {
  assertConfigError(
    'download:\n  rateLimit: lots\n',
    'download.bandwidthLimit (set as download.rateLimit)',
    'dfdaemon.yaml:2',
  );
});

test('cross-field: gc low threshold must be below high threshold', () => {
  assertConfigError(
    'gc:\n  policy:\n    diskHighThresholdPercent: 70\n    diskLowThresholdPercent: 75\n',
    'gc.policy.diskLowThresholdPercent: expected a percent lower than gc.policy.diskHighThresholdPercent (70), got 75',
  );
  assertConfigError(
    'gc:\n  policy:\n    diskHighThresholdPercent: 50\n',
    'gc.policy.diskLowThresholdPercent',
  );
});

test('several invalid values are reported together', () => {
  assertConfigError(
    'download:\n  pieceTimeout: x\n  bandwidthLimit: y\n',
    'download.pieceTimeout',
    'download.bandwidthLimit',
  );
});

test('missing file: defaults at the default path, an error at an explicit path', () => {
  const home = fs.mkdtempSync(path.join(tmp, 'home-'));
  const sysDirs = { ...SYSTEM_DIRS, configDir: path.join(tmp, 'no-etc') };
  const loaded = loadDfdaemonConfig(undefined, { dirs: sysDirs, homeDir: home, detectHostIp: noIp });
  assert.equal(loaded.path, undefined);
  assert.equal(loaded.config.download.pieceTimeout, 360_000);
  assert.ok(loaded.notes.some((n) => n.includes('using defaults')));
  assert.equal(loaded.logDir, '/var/log/dragonfly/dfdaemon');

  assert.throws(
    () => loadDfdaemonConfig(path.join(tmp, 'nope.yaml'), { dirs }),
    (e: unknown) => e instanceof DfError && e.code === 'INVALID_CONFIG' && e.message.includes('nope.yaml'),
  );
});

test('default path: the ~/.dragonfly/config file is used when /etc has none', () => {
  const home = fs.mkdtempSync(path.join(tmp, 'home-'));
  fs.mkdirSync(path.join(home, '.dragonfly', 'config'), { recursive: true });
  const file = path.join(home, '.dragonfly', 'config', 'dfdaemon.yaml');
  fs.writeFileSync(file, 'download:\n  concurrentPieceCount: 3\n');
  const sysDirs = { ...SYSTEM_DIRS, configDir: path.join(tmp, 'no-etc') };
  const loaded = loadDfdaemonConfig(undefined, { dirs: sysDirs, homeDir: home, detectHostIp: noIp });
  assert.equal(loaded.path, file);
  assert.equal(loaded.config.download.concurrentPieceCount, 3);
});

test('an explicit file loads, with directory fallback noted once and used for defaults', () => {
  const home = fs.mkdtempSync(path.join(tmp, 'home-'));
  const file = write('ok.yaml', 'download:\n  pieceTimeout: 1m\n');
  const loaded = loadDfdaemonConfig(file, {
    homeDir: home,
    canWrite: () => false,
    detectHostIp: () => '10.1.1.1',
  });
  assert.equal(loaded.config.download.pieceTimeout, 60_000);
  assert.equal(loaded.config.host.ip, '10.1.1.1');
  assert.equal(loaded.config.download.server.socketPath, path.join(home, '.dragonfly', 'dfdaemon.sock'));
  assert.equal(loaded.config.storage.dir, path.join(home, '.dragonfly', 'storage'));
  assert.equal(loaded.logDir, path.join(home, '.dragonfly', 'logs', 'dfdaemon'));
  assert.equal(loaded.notes.length, 1);
  assert.match(loaded.notes[0]!, /cannot write \/var\/run\/dragonfly/);
});

// Found by test/unit/config/loaders.fuzz.test.ts: each of these inputs broke a loader convention.

test('regression (fuzz): an alias bomb is INVALID_CONFIG naming the file, not a ReferenceError', () => {
  assertConfigError(
    'a: &a [1, 2]\nb: [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n',
    'dfdaemon.yaml: invalid YAML: ',
    'alias',
  );
});

test('regression (fuzz): keys named like Object members (constructor, toString, __proto__) are unknown keys', () => {
  const { warnings } = parse(
    'constructor: 1\ntoString: 2\nhost:\n  __proto__: {ip: 10.0.0.1}\n  hasOwnProperty: 3\n',
  );
  assert.deepEqual(warnings, [
    'unknown key constructor (line 1) is ignored',
    'unknown key toString (line 2) is ignored',
    'unknown key host.__proto__ (line 4) is ignored',
    'unknown key host.hasOwnProperty (line 5) is ignored',
  ]);
});

test('regression (fuzz): YAML 1.1 tags (!!omap, !!set, !!binary) no longer hide a section from validation', () => {
  // `!!omap` made `download` a Map, taken for an empty section: -5 was silently dropped.
  assertConfigError('download: !!omap [concurrentPieceCount: -5]\n', 'download: expected a mapping of keys');
  assertConfigError('host: !!binary aGVsbG8=\n', 'host: expected a mapping of keys, got "aGVsbG8="');
  assert.deepEqual(parse('download: !!set {concurrentPieceCount}\n').config.download.concurrentPieceCount, 8);
  assertConfigError('download: {pieceTimeout: !!timestamp 2001-12-14}\n', 'download.pieceTimeout');
});

test('regression (fuzz): an unknown key holding a newline is one warning line', () => {
  const { warnings } = parse('"a\\nb\\u0007": 1\n');
  assert.deepEqual(warnings, ['unknown key a\\nb\\u0007 (line 1) is ignored']);
});

test('storage.server.queueLimit (ours): unset by default (no busy answers), a count when set, negative refused', () => {
  assert.equal(parse('').config.storage.server.queueLimit, undefined);
  assert.equal(parse('storage:\n  server:\n    queueLimit: 2\n').config.storage.server.queueLimit, 2);
  assert.throws(() => parse('storage:\n  server:\n    queueLimit: -1\n'), /storage\.server\.queueLimit/);
});

test('storage.server.cutThrough (ours): off by default, true turns relaying on, a non-boolean refused', () => {
  assert.equal(parse('').config.storage.server.cutThrough, false);
  assert.equal(parse('storage:\n  server:\n    cutThrough: true\n').config.storage.server.cutThrough, true);
  assert.throws(
    () => parse('storage:\n  server:\n    cutThrough: sometimes\n'),
    /storage\.server\.cutThrough/,
  );
});
