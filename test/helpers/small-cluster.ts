// A dfscheduler process and a few dfdaemons using it: the P2P fixture of the integration tests that need peers
// but nothing else special. Everything is ended by PID in stop(), also after a failed start.

import { startDaemon, stopDaemon, type DaemonHandle } from './daemon.js';
import { startScheduler, stopScheduler, type SchedulerHandle } from './scheduler-process.js';

export interface SmallCluster {
  scheduler: SchedulerHandle;
  daemons: DaemonHandle[];
  stop(): Promise<void>;
}

/** Starts the scheduler, then `peers` dfdaemons announcing to it (with `options` each). */
export async function startSmallCluster(
  peers: number,
  options: Omit<Parameters<typeof startDaemon>[0], 'schedulerAddr'> = {},
): Promise<SmallCluster> {
  const daemons: DaemonHandle[] = [];
  let scheduler: SchedulerHandle | undefined;
  const stop = async () => {
    for (const d of daemons) await stopDaemon(d);
    if (scheduler) await stopScheduler(scheduler);
  };
  try {
    scheduler = await startScheduler();
    for (let i = 0; i < peers; i++)
      daemons.push(await startDaemon({ ...options, schedulerAddr: scheduler.addr }));
  } catch (e) {
    await stop();
    throw e;
  }
  return { scheduler, daemons, stop };
}

/** A seed fetches on the scheduler's behalf (a remote caller): a loopback source must be allowed. */
export const LOOPBACK_SEED_CONFIG =
  'seedPeer:\n  enable: true\n  type: super\nsecurity:\n  allowedPrivateSources: [127.0.0.1]\n';

export interface SeededCluster extends SmallCluster {
  seed: DaemonHandle;
  peers: DaemonHandle[];
}

/** The scheduler, a seed peer that may fetch from loopback sources, then `peers` plain dfdaemons. */
export async function startSeededCluster(peers: number): Promise<SeededCluster> {
  const cluster = await startSmallCluster(0);
  try {
    const start = (extraConfig?: string) =>
      startDaemon({ extraConfig, schedulerAddr: cluster.scheduler.addr });
    cluster.daemons.push(await start(LOOPBACK_SEED_CONFIG));
    for (let i = 0; i < peers; i++) cluster.daemons.push(await start());
  } catch (e) {
    await cluster.stop();
    throw e;
  }
  return { ...cluster, seed: cluster.daemons[0]!, peers: cluster.daemons.slice(1) };
}
