// Garbage collection of the model (upstream `scheduler/resource/standard/{peer,task,host}_manager.go` RunGC,
// spec/scheduler.md §2 "GC"). Three unref'ed timers; each pass is synchronous and bounded by the model's size.

import type { Logger } from 'pino';
import type { SchedulerGcOptions } from './options.js';
import type { Resources } from './resources.js';

/** Above this many peers in a task's DAG, Succeeded peers nobody downloads from are dropped. */
const PEER_COUNT_LIMIT_FOR_TASK = 300;

export class ResourceGc {
  private readonly timers: NodeJS.Timeout[] = [];

  constructor(
    private readonly resources: Resources,
    private readonly o: SchedulerGcOptions,
    private readonly log: Logger,
  ) {}

  start(): void {
    if (this.timers.length > 0) return;
    const every = (ms: number, f: () => void) => {
      const t = setInterval(() => {
        try {
          f();
        } catch (e) {
          this.log.error({ err: (e as Error).message }, 'gc pass failed');
        }
      }, ms);
      t.unref();
      this.timers.push(t);
    };
    every(this.o.peerGCIntervalMs, () => this.collectPeers());
    every(this.o.taskGCIntervalMs, () => this.collectTasks());
    every(this.o.hostGCIntervalMs, () => this.collectHosts());
  }

  stop(): void {
    for (const t of this.timers.splice(0)) clearInterval(t);
  }

  /** Deletes Leave peers; makes stale, failed or unshared ones Leave (deleted on the next pass). */
  collectPeers(now = Date.now()): void {
    const o = this.o;
    for (const peer of [...this.resources.peers.values()]) {
      if (peer.is('Leave') || !peer.task.dag.has(peer.id)) {
        this.resources.deletePeer(peer);
        continue;
      }
      const idle = now - peer.updatedAt.getTime();
      const pieceIdle = now - peer.pieceUpdatedAt.getTime();
      const hostIdle = now - peer.host.updatedAt.getTime();
      const leave =
        peer.host.disableShared ||
        (peer.is('Running', 'BackToSource') && pieceIdle > o.pieceDownloadTimeoutMs) ||
        idle > o.peerTTLMs ||
        hostIdle > o.hostTTLMs ||
        peer.is('Failed');
      if (leave) {
        peer.event('Leave');
        continue;
      }
      const task = peer.task;
      if (
        task.peerCount > PEER_COUNT_LIMIT_FOR_TASK &&
        peer.is('Succeeded') &&
        task.dag.inDegree(peer.id) === 0 &&
        task.dag.outDegree(peer.id) === 0
      ) {
        this.resources.deletePeer(peer);
      }
    }
  }

  collectTasks(): void {
    for (const task of [...this.resources.tasks.values()]) {
      if (task.peerCount === 0) this.resources.tasks.delete(task.id);
    }
  }

  /** Hosts with an interval not announced for more than twice it: their peers leave, the host goes. */
  collectHosts(now = Date.now()): void {
    for (const host of [...this.resources.hosts.values()]) {
      if (host.intervalMs <= 0) continue;
      if (now - host.updatedAt.getTime() > 2 * host.intervalMs) {
        this.log.info({ hostId: host.id }, 'host expired');
        this.resources.deleteHost(host);
      }
    }
  }
}
