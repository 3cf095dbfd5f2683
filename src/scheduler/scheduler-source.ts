// Where the list of candidate schedulers comes from: the local dynconfig file, or the manager when `manager.addr`
// is set (upstream `dynconfig/mod.rs` `Dynconfig::backend`). The selector health-checks whatever a source lists.

import type { ChannelCredentials } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { DfdaemonConfig } from '../config/dfdaemon.js';
import { localDynconfigSource } from './local-scheduler-source.js';
import { managerSchedulerSource } from './manager-scheduler-source.js';
import type { SocketAddr } from './socket-addr.js';

export type SchedulerLog = Pick<Logger, 'debug' | 'info' | 'warn' | 'error'>;

export interface SchedulerCandidate {
  addr: SocketAddr;
  /** The manager's scheduler cluster; absent for the local dynconfig file. */
  clusterId?: number;
}

export interface SchedulerSource {
  /** For logs and errors: "dynconfig file /etc/dragonfly/dynconfig.yaml", "manager http://manager:65003". */
  readonly description: string;
  /** Keep only the cluster of the first healthy scheduler (upstream does so for the manager's list). */
  readonly singleCluster: boolean;
  /** The candidates, in the order the selector keeps them; rejects when the list cannot be had at all. */
  list(): Promise<SchedulerCandidate[]>;
  close(): void;
}

export interface SchedulerSourceOptions {
  /** The local dynconfig file, used when `manager.addr` is not set. */
  dynconfigPath: string;
  /** Sent to the manager as `version`. */
  version: string;
  /** Sent to the manager as `commit`; upstream sends its short git hash. */
  commit?: string;
  log: SchedulerLog;
  /** TLS extension point for the manager channel (manager.caCert/cert/key); default insecure. */
  managerCredentials?: ChannelCredentials;
}

/** The manager when `manager.addr` is set, else the local dynconfig file — upstream's choice. */
export function schedulerSourceFromConfig(
  config: DfdaemonConfig,
  options: SchedulerSourceOptions,
): SchedulerSource {
  const addr = config.manager.addr;
  if (addr === undefined || addr === '') {
    return localDynconfigSource(options.dynconfigPath, { log: options.log });
  }
  return managerSchedulerSource({
    addr,
    credentials: options.managerCredentials,
    request: {
      sourceType: config.seedPeer.enable ? 'SEED_PEER' : 'PEER',
      hostname: config.host.hostname,
      ip: config.host.ip ?? '',
      idc: config.host.idc,
      location: config.host.location,
      version: options.version,
      commit: options.commit ?? '',
      schedulerClusterId: config.host.schedulerClusterID ?? 0,
    },
  });
}
