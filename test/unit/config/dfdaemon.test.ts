import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_FILTERED_QUERY_PARAMS, defaultConfig } from '../../../src/config/dfdaemon.js';
import { SYSTEM_DIRS } from '../../../src/config/dirs.js';

const KIB = 1024;
const MIB = 1024 * KIB;
const GB = 1e9;
const S = 1000;
const M = 60 * S;
const H = 60 * M;
const D = 24 * H;

// Expected values transcribed from upstream dragonfly-client-config/src/dfdaemon.rs (ff17c0b7), named by the
// Rust default function, and dragonfly-client-util/src/ratelimiter/bbr.rs for adaptiveRateLimit.
const UPSTREAM: Array<[string, unknown, string]> = [
  ['server.pluginDir', '/usr/local/lib/dragonfly/plugins/dfdaemon', 'default_dfdaemon_plugin_dir'],
  ['server.cacheDir', '/var/cache/dragonfly/dfdaemon', 'default_dfdaemon_cache_dir'],
  ['server.adaptiveRateLimit.bucketCount', 50, 'default_bucket_count'],
  ['server.adaptiveRateLimit.bucketInterval', 200, 'default_bucket_interval = 200ms'],
  ['server.adaptiveRateLimit.cpuThreshold', 100, 'default_cpu_threshold'],
  ['server.adaptiveRateLimit.memoryThreshold', 90, 'default_memory_threshold'],
  ['server.adaptiveRateLimit.shedCooldown', 5 * S, 'default_shed_cooldown'],
  ['server.adaptiveRateLimit.collectInterval', 3 * S, 'default_collect_interval'],
  ['download.server.socketPath', '/var/run/dragonfly/dfdaemon.sock', 'default_download_unix_socket_path'],
  ['download.server.requestRateLimit', 400, 'default_download_request_rate_limit'],
  ['download.server.requestBufferSize', 50, 'default_download_request_buffer_size'],
  ['download.protocol', 'tcp', 'default_download_protocol'],
  ['download.bandwidthLimit', 50 * GB, 'default_download_bandwidth_limit = ByteSize::gb(50)'],
  ['download.backToSourceBandwidthLimit', 50 * GB, 'default_back_to_source_bandwidth_limit'],
  ['download.pieceTimeout', 360 * S, 'default_download_piece_timeout'],
  ['download.collectedPieceTimeout', 360 * S, 'default_collected_download_piece_timeout'],
  ['download.concurrentPieceCount', 8, 'default_download_concurrent_piece_count'],
  ['upload.server.port', 4000, 'default_upload_grpc_server_port'],
  ['upload.server.requestRateLimit', 400, 'default_upload_request_rate_limit'],
  ['upload.server.requestBufferSize', 50, 'default_upload_request_buffer_size'],
  ['upload.disableShared', false, 'Upload::default'],
  ['upload.bandwidthLimit', 50 * GB, 'default_upload_bandwidth_limit'],
  ['manager.addr', undefined, 'Manager::default (None)'],
  ['scheduler.announceInterval', 300 * S, 'default_scheduler_announce_interval'],
  ['scheduler.scheduleTimeout', 3 * H, 'default_scheduler_schedule_timeout'],
  ['scheduler.maxScheduleCount', 5, 'default_download_max_schedule_count'],
  ['seedPeer.enable', false, 'SeedPeer::default'],
  ['seedPeer.type', 'normal', 'SeedPeer::default (HostType::Normal)'],
  ['dynconfig.refreshInterval', 60 * S, 'default_dynconfig_refresh_interval'],
  ['storage.server.tcpPort', 4005, 'default_storage_server_tcp_port'],
  ['storage.server.tcpFastopen', false, 'StorageServer::default'],
  ['storage.server.quicPort', 4006, 'default_storage_server_quic_port'],
  ['storage.dir', '/var/lib/dragonfly', 'default_storage_dir'],
  ['storage.keep', true, 'default_storage_keep (ours keeps; upstream wipes)'],
  ['storage.writePieceTimeout', 360 * S, 'default_storage_write_piece_timeout'],
  ['storage.writeBufferSize', 512 * KIB, 'default_storage_write_buffer_size'],
  ['storage.readBufferSize', 512 * KIB, 'default_storage_read_buffer_size'],
  ['storage.cacheCapacity', 64 * MIB, 'default_storage_cache_capacity = ByteSize::mib(64)'],
  ['backend.requestHeader', undefined, 'Backend::default (None)'],
  ['backend.maxRetries', 1, 'default_backend_max_retries'],
  ['backend.enableCacheTemporaryRedirect', true, 'default_backend_enable_cache_temporary_redirect'],
  ['backend.cacheTemporaryRedirectTTL', 10 * M, 'default_backend_cache_temporary_redirect_ttl'],
  ['backend.putConcurrentChunkCount', 16, 'default_backend_put_concurrent_chunk_count'],
  ['backend.putChunkSize', 8 * MIB, 'default_backend_put_chunk_size'],
  ['backend.putTimeout', 15 * M, 'default_backend_put_timeout'],
  ['backend.enableHickoryDNS', true, 'default_backend_enable_hickory_dns'],
  ['gc.interval', 900 * S, 'default_gc_interval'],
  ['gc.policy.taskTTL', 30 * D, 'default_gc_policy_task_ttl = 2_592_000s'],
  ['gc.policy.persistentTaskTTL', D, 'default_gc_policy_persistent_task_ttl'],
  ['gc.policy.persistentCacheTaskTTL', D, 'default_gc_policy_persistent_cache_task_ttl'],
  ['gc.policy.pageCacheIdleTimeout', 40 * M, 'default_gc_policy_page_cache_idle_timeout = 2_400s'],
  ['gc.policy.diskThreshold', 0, 'default_gc_policy_disk_threshold = ByteSize::default()'],
  ['gc.policy.diskHighThresholdPercent', 80, 'default_gc_policy_disk_high_threshold_percent'],
  ['gc.policy.diskLowThresholdPercent', 60, 'default_gc_policy_disk_low_threshold_percent'],
  ['proxy.server.port', 4001, 'default_proxy_server_port'],
  ['proxy.server.requestRateLimit', 4000, 'default_proxy_request_rate_limit'],
  ['proxy.server.basicAuth', undefined, 'ProxyServer::default (None)'],
  ['proxy.rules', undefined, 'Proxy::default (None)'],
  ['proxy.registryMirror.addr', 'https://index.docker.io', 'default_proxy_registry_mirror_addr'],
  ['proxy.registryMirror.enableTaskIDBasedBlobDigest', false, 'default_enable_task_id_based_blob_digest'],
  ['proxy.disableBackToSource', false, 'Proxy::default'],
  ['proxy.prefetch', false, 'Proxy::default'],
  ['proxy.prefetchBandwidthLimit', 10 * GB, 'default_prefetch_bandwidth_limit'],
  ['proxy.readBufferSize', 512 * KIB, 'default_proxy_read_buffer_size'],
  ['security.enable', false, 'Security::default'],
  ['network.enableIPv6', false, 'Network::default'],
  ['health.server.port', 4003, 'default_health_server_port'],
  ['metrics.server.port', 4002, 'default_metrics_server_port'],
  ['stats.server.port', 4004, 'default_stats_server_port'],
  ['tracing.protocol', undefined, 'Tracing::default'],
  ['tracing.endpoint', undefined, 'Tracing::default'],
  ['tracing.path', '/v1/traces', 'default_tracing_path'],
];

function get(obj: unknown, key: string): unknown {
  return key.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], obj);
}

test('every default equals upstream', () => {
  assert.ok(UPSTREAM.length >= 40);
  const config = defaultConfig({ dirs: SYSTEM_DIRS, hostname: 'h' });
  for (const [key, expected, rust] of UPSTREAM) {
    assert.deepEqual(get(config, key), expected, `${key} (upstream ${rust})`);
  }
});

test('host defaults: hostname from the machine, no ip until loaded', () => {
  const config = defaultConfig({ hostname: 'peer-1' });
  assert.equal(config.host.hostname, 'peer-1');
  assert.equal(config.host.ip, undefined);
  assert.equal(config.host.idc, undefined);
  assert.equal(config.upload.server.ip, undefined);
  assert.deepEqual(config.tracing.headers, {});
  assert.deepEqual(config.upload.client, {});
});

test('default filtered query params are upstream list, deduplicated', () => {
  assert.equal(DEFAULT_FILTERED_QUERY_PARAMS.length, new Set(DEFAULT_FILTERED_QUERY_PARAMS).size);
  for (const p of [
    'X-Amz-Signature',
    'X-Goog-Signature',
    'OSSAccessKeyId',
    'X-Obs-Security-Token',
    'q-sign-algorithm',
    'ns',
  ])
    assert.ok(DEFAULT_FILTERED_QUERY_PARAMS.includes(p), p);
  assert.equal(DEFAULT_FILTERED_QUERY_PARAMS.length, 30);
});

test('directory defaults follow the given dirs', () => {
  const dirs = { ...SYSTEM_DIRS, runDir: '/home/u/.dragonfly', storageDir: '/home/u/.dragonfly/storage' };
  const config = defaultConfig({ dirs, hostname: 'h' });
  assert.equal(config.download.server.socketPath, '/home/u/.dragonfly/dfdaemon.sock');
  assert.equal(config.storage.dir, '/home/u/.dragonfly/storage');
});
