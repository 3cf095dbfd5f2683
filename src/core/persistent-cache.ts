// Limits of a persistent cache task (dfcache import), checked alike by dfcache, dfdaemon and the embedded scheduler.
// The TTL range is what upstream's code enforces (dfcache import.rs validate_args, the Go scheduler's validator):
// 5 minutes to 7 days, whatever dfcache's help text says (1m).

import { DfError } from './errors.js';
import { formatDuration } from './humantime.js';

export const MIN_PERSISTENT_CACHE_TTL_MS = 5 * 60 * 1000;
export const MAX_PERSISTENT_CACHE_TTL_MS = 7 * 24 * 60 * 60 * 1000;
/** dfcache import --persistent-replica-count's default. */
export const DEFAULT_PERSISTENT_REPLICA_COUNT = 2;
/**
 * Ours: upstream takes any count ≥ 1. A count this high is a typo (each replica is a full copy on another host),
 * and a cluster past it is out of the embedded scheduler's league anyway.
 */
export const MAX_PERSISTENT_REPLICA_COUNT = 1000;

export function checkPersistentCacheTtl(ttlMs: number): void {
  if (!(ttlMs >= MIN_PERSISTENT_CACHE_TTL_MS && ttlMs <= MAX_PERSISTENT_CACHE_TTL_MS)) {
    throw new DfError(
      'INVALID_ARGUMENT',
      `ttl must be between 5 minutes and 7 days, but got ${Number.isFinite(ttlMs) ? formatDuration(ttlMs) : String(ttlMs)}`,
    );
  }
}

export function checkPersistentReplicaCount(count: number): void {
  if (!Number.isSafeInteger(count) || count < 1) {
    throw new DfError('INVALID_ARGUMENT', `persistent replica count must be at least 1, but got ${count}`);
  }
  if (count > MAX_PERSISTENT_REPLICA_COUNT) {
    throw new DfError(
      'INVALID_ARGUMENT',
      `persistent replica count must be at most ${MAX_PERSISTENT_REPLICA_COUNT}, but got ${count}`,
    );
  }
}
