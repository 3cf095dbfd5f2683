// ScheduleCandidateParents (upstream `scheduler/scheduling/scheduling.go`, spec/scheduler.md §3.1, §3.3): filter the
// task's peers, rank them, add the edges, and reply NormalTaskResponse; with nothing to offer, retry after a
// jittered pause, and after `retryBackToSourceLimit` rounds tell the peer to go back to source. With the `swarm`
// option (ours, on by default) seeds and piece-holding peers are always considered, offers mix a seed with normal
// peers, and a starting seed does not send waiting peers to the source (docs/cluster.md, "Scheduling a swarm").

import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { evaluateParents, isBadParent } from './evaluator.js';
import { peerMessage } from './messages.js';
import type { SchedulerOptions } from './options.js';
import { HostType, type Peer, type Task } from './resources.js';
import { failedPrecondition } from './status.js';

/** U[0.75, 1.25) × interval, as Go's `RandomDelayWithJitter`. */
export function jittered(intervalMs: number, random = Math.random): number {
  return intervalMs * (0.75 + 0.5 * random());
}

type FilterOptions = Pick<SchedulerOptions, 'filterParentLimit' | 'swarm'>;
type FindOptions = Pick<
  SchedulerOptions,
  'filterParentLimit' | 'candidateParentLimit' | 'swarm' | 'seedPeerChildLimit'
>;

/**
 * The peers looked at: a random sample and, with `swarm`, every seed peer of the task — a sample can miss the
 * seed, which early on is the only peer with anything to give.
 */
function candidatePool(task: Task, o: FilterOptions): Peer[] {
  const pool = task.loadRandomPeers(o.filterParentLimit);
  if (!o.swarm) return pool;
  const seen = new Set(pool.map((p) => p.id));
  for (const seed of task.seedPeers()) if (!seen.has(seed.id)) pool.push(seed);
  return pool;
}

/**
 * Whether a peer on a normal host has or will have pieces to give: it has parents, came from the source, or
 * finished. With `swarm` also a Running peer that already holds pieces (its parents may be gone, e.g. while it
 * reschedules): peers learn of its pieces over SyncPieces as they arrive.
 */
function normalPeerCanServe(c: Peer, inDegree: number, swarm: boolean): boolean {
  if (inDegree > 0 || c.is('BackToSource', 'Succeeded')) return true;
  return swarm && c.is('Running') && c.holdsPieces();
}

/**
 * The parents `peer` may download from, unranked: from the candidate pool, drop the blocked ones, those on a
 * disable_shared host or on the peer's own host, those outside the DAG, normal-host peers that have nothing to
 * give, bad parents, and those whose edge would close a cycle (a descendant of the peer).
 */
export function filterCandidateParents(peer: Peer, blocklist: ReadonlySet<string>, o: FilterOptions): Peer[] {
  const task = peer.task;
  const out: Peer[] = [];
  for (const c of candidatePool(task, o)) {
    if (c.id === peer.id || blocklist.has(c.id)) continue;
    if (c.host.disableShared) continue;
    if (c.host.id === peer.host.id) continue;
    const inDegree = task.dag.inDegree(c.id);
    if (inDegree === undefined) continue;
    if (c.host.type === HostType.NORMAL && !normalPeerCanServe(c, inDegree, o.swarm)) continue;
    if (isBadParent(c)) continue;
    if (!task.canAddPeerEdge(c.id, peer.id)) continue;
    out.push(c);
  }
  return out;
}

/**
 * Cuts ranked parents to `candidateParentLimit` so that an offer holds a seed and normal peers when both exist:
 * seeds below `seedPeerChildLimit` children take slots first (they will have every piece), normal peers fill the
 * rest, so most peers also trade with each other. A seed at its cap is offered only when nothing else is.
 * Normal peers with fewer children go first (in pairs: 0–1 children, then 2–3, …; ranked order within), and one
 * with `candidateParentLimit` children or more only when too few others are left: parents are kept for the whole
 * download, and ranking alone gave the few peers that held pieces first to nearly every peer of a 32-peer swarm —
 * four uplinks carried the swarm while the others idled. The result keeps the ranked order.
 */
export function selectSwarmParents(
  ranked: readonly Peer[],
  task: Task,
  o: Pick<SchedulerOptions, 'candidateParentLimit' | 'seedPeerChildLimit'>,
): Peer[] {
  const limit = o.candidateParentLimit;
  const isSeed = (p: Peer) => p.host.type === HostType.SUPER_SEED;
  const children = (p: Peer) => task.dag.outDegree(p.id) ?? 0;
  const seeds = ranked.filter(isSeed);
  const others = ranked.filter((p) => !isSeed(p));
  const cap = o.seedPeerChildLimit;
  const open = seeds.filter((s) => cap <= 0 || children(s) < cap);
  const offeredSeeds = (open.length > 0 || others.length > 0 ? open : seeds).slice(0, limit);
  const byLoad = others
    .map((p, rank) => ({ p, rank, band: Math.min(Math.floor(children(p) / 2), Math.ceil(limit / 2)) }))
    .sort((a, b) => a.band - b.band || a.rank - b.rank)
    .map((x) => x.p);
  const picked = new Set([...offeredSeeds, ...byLoad.slice(0, limit - offeredSeeds.length)]);
  return ranked.filter((p) => picked.has(p));
}

/** Filtered, ranked best first and cut to `candidateParentLimit`; empty unless the peer is ReceivedNormal/Running. */
export function findCandidateParents(peer: Peer, blocklist: ReadonlySet<string>, o: FindOptions): Peer[] {
  if (!peer.is('ReceivedNormal', 'Running')) return [];
  const candidates = filterCandidateParents(peer, blocklist, o);
  const ranked = evaluateParents(candidates, peer, o.swarm);
  if (!o.swarm) return ranked.slice(0, o.candidateParentLimit);
  return selectSwarmParents(ranked, peer.task, o);
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
        if (this.waitsForSeedPeer(peer, blocklist)) {
          log.debug({ round: n }, 'no candidate parents while the seed peer starts, waiting');
        } else {
          n++;
          log.debug({ round: n }, 'no candidate parents, retrying');
        }
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

  /**
   * With `swarm`, an empty round does not count toward back-to-source while the task's triggered seed is still
   * starting: the seed is about to be a parent, and sending peers to the source then makes the origin serve the
   * file twice. Bounded by seedPeerFailedTimeout and by the seed's own failure.
   */
  private waitsForSeedPeer(peer: Peer, blocklist: ReadonlySet<string>): boolean {
    const o = this.options;
    return o.swarm && peer.task.isSeedPeerStarting(blocklist, o.seedPeerFailedTimeoutMs);
  }

  private needBackToSource(peer: Peer, description: string): void {
    const stream = peer.stream;
    if (!stream) throw failedPrecondition('load stream failed');
    this.log.info({ peerId: peer.id, taskId: peer.task.id, description }, 'send NeedBackToSourceResponse');
    stream.send({ needBackToSourceResponse: { description } });
  }
}
