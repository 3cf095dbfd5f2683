// Where the list of candidate schedulers comes from: the local dynconfig file, or the manager when `manager.addr`
// is set (upstream `dynconfig/mod.rs` `Dynconfig::backend`). The selector health-checks whatever a source lists.

import type { ChannelCredentials } from '@grpc/grpc-js';
import type { DfdaemonConfig } from '../config/dfdaemon.js';
import { localDynconfigSource } from './local-scheduler-source.js';
import { managerSchedulerSource } from './manager-scheduler-source.js';
import type { SchedulerLog, SchedulerSource } from './scheduler-source-types.js';

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
