// ScheduleCandidateParents (upstream `scheduler/scheduling/scheduling.go`, spec/scheduler.md §3.1, §3.3): filter the
// task's peers, rank them, add the edges, and reply NormalTaskResponse; with nothing to offer, retry after a
// jittered pause, and after `retryBackToSourceLimit` rounds tell the peer to go back to source.

import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { evaluateParents, isBadParent } from './evaluator.js';
import { peerMessage } from './messages.js';
import type { SchedulerOptions } from './options.js';
import { HostType, type Peer } from './resources.js';
import { failedPrecondition } from './status.js';

/** U[0.75, 1.25) × interval, as Go's `RandomDelayWithJitter`. */
export function jittered(intervalMs: number, random = Math.random): number {
  return intervalMs * (0.75 + 0.5 * random());
}

/**
 * The parents `peer` may download from, unranked: from a random sample of the task's peers, drop the blocked ones,
 * those on a disable_shared host or on the peer's own host, those outside the DAG, normal-host peers that have
 * nothing yet (in-degree 0 and neither BackToSource nor Succeeded), bad parents, and those whose edge would close a
 * cycle (a descendant of the peer).
 */
export function filterCandidateParents(
  peer: Peer,
  blocklist: ReadonlySet<string>,
  filterParentLimit: number,
): Peer[] {
  const task = peer.task;
  const out: Peer[] = [];
  for (const c of task.loadRandomPeers(filterParentLimit)) {
    if (c.id === peer.id || blocklist.has(c.id)) continue;
    if (c.host.disableShared) continue;
    if (c.host.id === peer.host.id) continue;
    const inDegree = task.dag.inDegree(c.id);
    if (inDegree === undefined) continue;
    if (c.host.type === HostType.NORMAL && inDegree === 0 && !c.is('BackToSource', 'Succeeded')) continue;
    if (isBadParent(c)) continue;
    if (!task.canAddPeerEdge(c.id, peer.id)) continue;
    out.push(c);
  }
  return out;
}

/** Filtered, ranked best first and cut to `candidateParentLimit`; empty unless the peer is ReceivedNormal/Running. */
export function findCandidateParents(
  peer: Peer,
  blocklist: ReadonlySet<string>,
  o: Pick<SchedulerOptions, 'filterParentLimit' | 'candidateParentLimit'>,
): Peer[] {
  if (!peer.is('ReceivedNormal', 'Running')) return [];
  const candidates = filterCandidateParents(peer, blocklist, o.filterParentLimit);
  return evaluateParents(candidates, peer).slice(0, o.candidateParentLimit);
}

export class Scheduling {
  constructor(
    private readonly options: SchedulerOptions,
    private readonly log: Logger,
  ) {}

  /**
   * Replies to `peer` on its stream: NeedBackToSource, or NormalTaskResponse with the parents whose edge was added.
   * Throws FAILED_PRECONDITION after `retryLimit` empty rounds or without a stream; rejects when `signal` aborts.
   */
  async scheduleCandidateParents(
    peer: Peer,
    blocklist: ReadonlySet<string>,
    signal: AbortSignal,
  ): Promise<void> {
    const o = this.options;
    const task = peer.task;
    const log = this.log.child({ peerId: peer.id, taskId: task.id });
    for (let n = 0; ;) {
      signal.throwIfAborted();
      if (task.canBackToSource()) {
        if (peer.needBackToSource) {
          this.needBackToSource(peer, "peer's NeedBackToSource is true");
          return;
        }
        if (n >= o.retryBackToSourceLimit) {
          this.needBackToSource(peer, 'scheduling exceeded RetryBackToSourceLimit');
          return;
        }
      }
      if (n >= o.retryLimit) throw failedPrecondition('scheduling exceeded RetryLimit');

      task.deletePeerInEdges(peer.id);
      const candidates = findCandidateParents(peer, blocklist, o);
      const added = candidates.filter((parent) => task.addPeerEdge(parent, peer));
      if (added.length === 0) {
        n++;
        log.debug({ round: n }, 'no candidate parents, retrying');
        await sleep(jittered(o.retryIntervalMs), undefined, { signal });
        continue;
      }
      const stream = peer.stream;
      if (!stream) {
        task.deletePeerInEdges(peer.id);
        throw failedPrecondition('load stream failed');
      }
      log.info({ parents: added.map((p) => p.id) }, 'send NormalTaskResponse');
      stream.send({
        normalTaskResponse: {
          candidateParents: added.map((p) => peerMessage(p, { hostName: false, taskPieces: false })),
        },
      });
      return;
    }
  }

  private needBackToSource(peer: Peer, description: string): void {
    const stream = peer.stream;
    if (!stream) throw failedPrecondition('load stream failed');
    this.log.info({ peerId: peer.id, taskId: peer.task.id, description }, 'send NeedBackToSourceResponse');
    stream.send({ needBackToSourceResponse: { description } });
  }
}
