// The scheduler serves from memory; its store (core/scheduler-state.ts) is only the copy a restart reads back. A write
// to that copy that fails — a full disk (SQLITE_FULL) is the usual cause — must therefore not fail the RPC that
// changed the model: a daemon restarted on a full disk announces its host before its first GC pass has freed
// anything, and an AnnounceHost answered INTERNAL there would stop that daemon from starting at all. The failed
// write is logged (at most every WARN_EVERY_MS, with how many were skipped) and the next write tries again.

import type { Logger } from 'pino';
import type { SchedulerStateStore } from '../../core/scheduler-state.js';

const WARN_EVERY_MS = 10_000;

type WriteKey = 'saveHost' | 'deleteHost' | 'saveTask' | 'deleteTask' | 'savePeer' | 'deletePeer';

/** `store` with every write made best effort: a failure is logged, not thrown. Reads and close are unchanged. */
export function bestEffortWrites(
  store: SchedulerStateStore,
  log: Logger,
  now: () => number = Date.now,
): SchedulerStateStore {
  let warnedAt = -Infinity;
  let unlogged = 0;
  const guarded =
    <K extends WriteKey>(key: K) =>
    (...args: Parameters<SchedulerStateStore[K]>): void => {
      try {
        (store[key] as (...a: Parameters<SchedulerStateStore[K]>) => void)(...args);
      } catch (err) {
        if (now() - warnedAt < WARN_EVERY_MS) {
          unlogged++;
          return;
        }
        log.warn(
          { err, write: key, failedSinceLastWarning: unlogged },
          `scheduler state not saved (${key}): ${err instanceof Error ? err.message : String(err)}; ` +
            'the scheduler goes on from memory, and a restart before the next successful write forgets this change',
        );
        warnedAt = now();
        unlogged = 0;
      }
    };
  return {
    saveHost: guarded('saveHost'),
    deleteHost: guarded('deleteHost'),
    saveTask: guarded('saveTask'),
    deleteTask: guarded('deleteTask'),
    savePeer: guarded('savePeer'),
    deletePeer: guarded('deletePeer'),
    hosts: () => store.hosts(),
    tasks: () => store.tasks(),
    peers: () => store.peers(),
    close: () => store.close(),
  };
}
