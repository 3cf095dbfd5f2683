// The contract between the scheduler selector and wherever its candidate schedulers come from. Kept apart from
// scheduler-source.ts (which picks a source from the config and so imports every source) so that the sources can
// implement it without importing their own factory: imports point one way, factory → sources → these types.

import type { Logger } from 'pino';
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
