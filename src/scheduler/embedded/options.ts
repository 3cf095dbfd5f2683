// Tunables of the embedded scheduler, with upstream's defaults (`scheduler/config/constants.go`). Durations are in
// milliseconds. The YAML keys of dfscheduler map one to one onto these (see src/cli/dfscheduler.ts).

export interface SchedulerGcOptions {
  /** Running/BackToSource peers without a piece for this long leave (`gc.pieceDownloadTimeout`, 30m). */
  pieceDownloadTimeoutMs: number;
  /** How often peers are collected (`gc.peerGCInterval`, 10s). */
  peerGCIntervalMs: number;
  /** Peers idle for longer leave (`gc.peerTTL`, 24h). */
  peerTTLMs: number;
  /** How often tasks without peers are deleted (`gc.taskGCInterval`, 30m). */
  taskGCIntervalMs: number;
  /** How often hosts are collected (`gc.hostGCInterval`, 5m). */
  hostGCIntervalMs: number;
  /** Peers whose host was not announced for longer leave (`gc.hostTTL`, 1h). */
  hostTTLMs: number;
}

export interface SchedulerOptions {
  /** `scheduler.backToSourceCount`: at most this many peers of a task go back to source (200). */
  backToSourceCount: number;
  /** `scheduler.retryBackToSourceLimit`: after this many empty scheduling rounds, NeedBackToSource (4). */
  retryBackToSourceLimit: number;
  /** `scheduler.retryLimit`: after this many empty rounds, FAILED_PRECONDITION (5). */
  retryLimit: number;
  /** `scheduler.retryInterval`: pause between rounds, jittered ×U[0.75, 1.25) (500ms). */
  retryIntervalMs: number;
  /** Peers of a task looked at per round (manager's filterParentLimit, 15). */
  filterParentLimit: number;
  /** Parents offered per reply (manager's candidateParentLimit, 3). */
  candidateParentLimit: number;
  /** Base of the per-host register back-off, d = min(base·2^k, 1s); 0 turns it off (30ms). */
  registerBackoffBaseMs: number;
  /** A failed seed peer disables seed triggering for the task for this long (30m). */
  seedPeerFailedTimeoutMs: number;
  gc: SchedulerGcOptions;
}

export const DEFAULT_SCHEDULER_OPTIONS: SchedulerOptions = {
  backToSourceCount: 200,
  retryBackToSourceLimit: 4,
  retryLimit: 5,
  retryIntervalMs: 500,
  filterParentLimit: 15,
  candidateParentLimit: 3,
  registerBackoffBaseMs: 30,
  seedPeerFailedTimeoutMs: 30 * 60_000,
  gc: {
    pieceDownloadTimeoutMs: 30 * 60_000,
    peerGCIntervalMs: 10_000,
    peerTTLMs: 24 * 3_600_000,
    taskGCIntervalMs: 30 * 60_000,
    hostGCIntervalMs: 5 * 60_000,
    hostTTLMs: 3_600_000,
  },
};

export type PartialSchedulerOptions = Partial<Omit<SchedulerOptions, 'gc'>> & {
  gc?: Partial<SchedulerGcOptions>;
};

export function resolveSchedulerOptions(o: PartialSchedulerOptions = {}): SchedulerOptions {
  const d = DEFAULT_SCHEDULER_OPTIONS;
  const defined = <T extends object>(x: T | undefined) =>
    Object.fromEntries(Object.entries(x ?? {}).filter(([, v]) => v !== undefined)) as Partial<T>;
  return { ...d, ...defined(o), gc: { ...d.gc, ...defined(o.gc) } } as SchedulerOptions;
}
