// How many connections each listener of dfdaemon holds at once (issue 16, items 11 and 5). Without a cap, 1100 idle
// connections to the Vortex port of a daemon limited to 1024 open files took every descriptor: dfget's socket,
// content files and /healthy all failed until those connections timed out. Each listener has a configured cap
// (`maxConnections` of storage.server, upload.server, proxy.server, health.server, metrics.server, stats.server,
// download.server and embeddedScheduler); at start, each is lowered, if need be, to its share of the process's
// open-file limit, so that the listeners together can never take the descriptors that downloads and storage need:
//
//   Vortex 1/6 (each connection may also hold a content file open), upload gRPC 1/10, proxy 1/12 (each request
//   may also hold a connection to the origin), the download socket (one connection per dfget), the embedded
//   scheduler (one per peer of the cluster), health, metrics and stats 1/32 each.
//
// With 1024 files that is 170 + 102 + 85 + 5 × 32 listener sockets and at most 255 descriptors behind them,
// leaving over 250 for everything else: content files, origins, parents, SQLite, logs. (Before the download
// socket had a cap, dfget's connections came out of those; a limit of 1024 is rare, Node raises the soft limit
// to the hard one, and the defaults hold from 65536 files up.)

import { readFileSync } from 'node:fs';
import type { DfdaemonConfig } from '../config/dfdaemon.js';

export type Listener =
  'vortex' | 'upload' | 'proxy' | 'download' | 'scheduler' | 'health' | 'metrics' | 'stats';

export type ConnectionCaps = Record<Listener, number>;

/** Each listener's share of the open-file limit, and its config key. */
const LISTENERS: Record<Listener, { share: number; key: string }> = {
  vortex: { share: 1 / 6, key: 'storage.server.maxConnections' },
  upload: { share: 1 / 10, key: 'upload.server.maxConnections' },
  proxy: { share: 1 / 12, key: 'proxy.server.maxConnections' },
  download: { share: 1 / 32, key: 'download.server.maxConnections' },
  scheduler: { share: 1 / 32, key: 'embeddedScheduler.maxConnections' },
  health: { share: 1 / 32, key: 'health.server.maxConnections' },
  metrics: { share: 1 / 32, key: 'metrics.server.maxConnections' },
  stats: { share: 1 / 32, key: 'stats.server.maxConnections' },
};

/**
 * The soft RLIMIT_NOFILE of this process from /proc/self/limits (Node raises the soft limit to the hard one at
 * start), or undefined where it cannot be read (no /proc, "unlimited").
 */
export function openFileLimit(limitsText?: string): number | undefined {
  let text = limitsText;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/limits', 'utf8');
    } catch {
      return undefined;
    }
  }
  const m = /^Max open files\s+(\d+|unlimited)\s/m.exec(text);
  if (!m || m[1] === 'unlimited') return undefined;
  return Number(m[1]);
}

/**
 * The caps to apply: the configured ones, each lowered to its share of `fileLimit` (at least 1). `lowered` lists
 * what was lowered, for a warning that names the key.
 */
export function connectionCaps(
  config: Pick<
    DfdaemonConfig,
    'storage' | 'upload' | 'proxy' | 'download' | 'embeddedScheduler' | 'health' | 'metrics' | 'stats'
  >,
  fileLimit: number | undefined,
): { caps: ConnectionCaps; lowered: Array<{ key: string; configured: number; cap: number }> } {
  const configured: ConnectionCaps = {
    vortex: config.storage.server.maxConnections,
    upload: config.upload.server.maxConnections,
    proxy: config.proxy.server.maxConnections,
    download: config.download.server.maxConnections,
    scheduler: config.embeddedScheduler.maxConnections,
    health: config.health.server.maxConnections,
    metrics: config.metrics.server.maxConnections,
    stats: config.stats.server.maxConnections,
  };
  const caps = { ...configured };
  const lowered: Array<{ key: string; configured: number; cap: number }> = [];
  if (fileLimit !== undefined) {
    for (const name of Object.keys(LISTENERS) as Listener[]) {
      const share = Math.max(1, Math.floor(fileLimit * LISTENERS[name].share));
      if (caps[name] > share) {
        caps[name] = share;
        lowered.push({ key: LISTENERS[name].key, configured: configured[name], cap: share });
      }
    }
  }
  return { caps, lowered };
}
