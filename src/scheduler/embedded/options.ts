// Tunables of the embedded scheduler, with upstream's defaults (`scheduler/config/constants.go`) except where
// `swarm` says otherwise. Durations are in milliseconds. The YAML keys of dfscheduler map one to one onto these
// (see src/cli/dfscheduler.ts).

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
  /** Parents offered per reply (manager's candidateParentLimit: upstream 3; 8 with `swarm`, so peers trade). */
  candidateParentLimit: number;
  /**
   * Our parent selection for swarms (docs/cluster.md, "Scheduling a swarm"): the task's seed peers are always candidates,
   * Running peers that hold pieces are parents, a seed's children are capped, peers holding pieces rank above
   * seeds, two normal peers may be each other's parents, and empty rounds while a triggered seed starts do not
   * lead to back-to-source. false = upstream's rules.
   */
  swarm: boolean;
  /** With `swarm`: a seed peer takes at most this many children while other parents exist (0 = no cap). */
  seedPeerChildLimit: number;
  /** Base of the per-host register back-off, d = min(base·2^k, 1s); 0 turns it off (30ms). */
  registerBackoffBaseMs: number;
  /**
   * A failed seed peer disables seed triggering for the task for this long (30m). With `swarm` it also bounds
   * how long peers wait for a triggered seed that has not become a parent yet.
   */
  seedPeerFailedTimeoutMs: number;
  /**
   * Ours: hosts the scheduler keeps at most (`scheduler.maxHosts`); AnnounceHost of one more is
   * RESOURCE_EXHAUSTED until hosts leave (DeleteHost, or GC after gc.hostTTL). Upstream has no bound.
   */
  maxHosts: number;
  gc: SchedulerGcOptions;
}

export const DEFAULT_SCHEDULER_OPTIONS: SchedulerOptions = {
  backToSourceCount: 200,
  retryBackToSourceLimit: 4,
  retryLimit: 5,
  retryIntervalMs: 500,
  filterParentLimit: 15,
  candidateParentLimit: 8,
  swarm: true,
  seedPeerChildLimit: 4,
  registerBackoffBaseMs: 30,
  seedPeerFailedTimeoutMs: 30 * 60_000,
  maxHosts: 10_000,
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

/** Upstream's candidateParentLimit, the default when `swarm` is off. */
export const UPSTREAM_CANDIDATE_PARENT_LIMIT = 3;

/**
 * Fills in defaults. `swarm: false` alone gives upstream's behaviour, so an unset candidateParentLimit then takes
 * upstream's 3 rather than the swarm default.
 */
export function resolveSchedulerOptions(o: PartialSchedulerOptions = {}): SchedulerOptions {
  const d = DEFAULT_SCHEDULER_OPTIONS;
  const defined = <T extends object>(x: T | undefined) =>
    Object.fromEntries(Object.entries(x ?? {}).filter(([, v]) => v !== undefined)) as Partial<T>;
  const r = { ...d, ...defined(o), gc: { ...d.gc, ...defined(o.gc) } } as SchedulerOptions;
  if (!r.swarm && o.candidateParentLimit === undefined)
    r.candidateParentLimit = UPSTREAM_CANDIDATE_PARENT_LIMIT;
  return r;
}
