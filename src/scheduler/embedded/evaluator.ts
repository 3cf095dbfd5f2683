// The default evaluator (upstream `scheduler/scheduling/evaluator/{evaluator,evaluator_default}.go`, after v2.4.0):
// which parents are bad, and how the good ones rank (spec/scheduler.md §3.1, §3.2).

import { HostType, PIECE_COST_WINDOW, type Peer, type PeerState } from './resources.js';

const LOAD_QUALITY_WEIGHT = 0.6;
const IDC_AFFINITY_WEIGHT = 0.2;
const LOCATION_AFFINITY_WEIGHT = 0.1;
const HOST_TYPE_WEIGHT = 0.1;

const PEAK_BANDWIDTH_USAGE_WEIGHT = 0.5;
const BANDWIDTH_DURATION_WEIGHT = 0.3;
const CONCURRENCY_WEIGHT = 0.2;

/** The window (s) over which a host's queued upload bytes are compared with its bandwidth. */
const DURATION_WINDOW_S = 60;
/** The piece size the concurrency score assumes when sizing a host's useful parallelism. */
const REFERENCE_PIECE_LENGTH = 16 * 1024 * 1024;
/** Location elements compared, `|`-separated. */
const MAX_LOCATION_ELEMENTS = 5;
/** Fewer cost samples than this and a parent cannot be judged slow. */
const MIN_AVAILABLE_COST_LEN = 2;

const NOT_READY: readonly PeerState[] = ['Pending', 'ReceivedEmpty', 'ReceivedNormal', 'Failed', 'Leave'];

/** The load a host carries from its child edges (see Task.addPeerEdge). */
export interface HostLoad {
  maxTxBandwidth: number;
  txBandwidth: number;
  uploadContentLength: number;
  concurrentUploadPieceCount: number;
}

/**
 * A parent is bad when it cannot serve (Pending, Received*, Failed, Leave) or is slow: its last piece cost more than
 * 20× the mean of the others while the window fills, or more than mean + 3σ once it is full.
 */
export function isBadParent(peer: Pick<Peer, 'state' | 'pieceCosts'>): boolean {
  if (NOT_READY.includes(peer.state)) return true;
  return isSlow(peer.pieceCosts);
}

export function isSlow(costs: readonly number[]): boolean {
  if (costs.length < MIN_AVAILABLE_COST_LEN) return false;
  const last = costs[costs.length - 1]!;
  const others = costs.length - 1;
  let sum = 0;
  for (let i = 0; i < others; i++) sum += costs[i]!;
  const mean = sum / others;
  if (costs.length < PIECE_COST_WINDOW) return last > mean * 20;
  let sq = 0;
  for (let i = 0; i < others; i++) sq += (costs[i]! - mean) ** 2;
  return last > mean + 3 * Math.sqrt(sq / others);
}

export function peakBandwidthUsageScore(h: HostLoad): number {
  if (h.maxTxBandwidth <= 0 || h.txBandwidth >= h.maxTxBandwidth) return 0;
  return Math.max(0, 1 - h.txBandwidth / h.maxTxBandwidth);
}

export function bandwidthDurationScore(h: HostLoad): number {
  if (h.maxTxBandwidth <= 0) return 0;
  if (h.uploadContentLength === 0) return 1;
  const ratio = (h.uploadContentLength * 8) / h.maxTxBandwidth / DURATION_WINDOW_S;
  return ratio >= 1 ? 0 : 1 - ratio;
}

export function concurrencyScore(h: HostLoad): number {
  if (h.maxTxBandwidth <= 0) return 0;
  const needed = h.maxTxBandwidth / REFERENCE_PIECE_LENGTH / 8;
  if (needed <= 1) return 0;
  const c = h.concurrentUploadPieceCount;
  if (c === 0) return 1;
  const ratio = c / needed;
  return ratio <= 1 ? 1 : 1 / ratio;
}

export function loadQualityScore(h: HostLoad): number {
  return (
    PEAK_BANDWIDTH_USAGE_WEIGHT * peakBandwidthUsageScore(h) +
    BANDWIDTH_DURATION_WEIGHT * bandwidthDurationScore(h) +
    CONCURRENCY_WEIGHT * concurrencyScore(h)
  );
}

export function idcAffinityScore(dst: string, src: string): number {
  if (dst === '' || src === '') return 0;
  return dst.toLowerCase() === src.toLowerCase() ? 1 : 0;
}

export function locationAffinityScore(dst: string, src: string): number {
  if (dst === '' || src === '') return 0;
  if (dst.toLowerCase() === src.toLowerCase()) return 1;
  const d = dst.split('|');
  const s = src.split('|');
  const n = Math.min(d.length, s.length, MAX_LOCATION_ELEMENTS);
  let score = 0;
  for (let i = 0; i < n; i++) {
    if (d[i]!.toLowerCase() !== s[i]!.toLowerCase()) break;
    score++;
  }
  return score / MAX_LOCATION_ELEMENTS;
}

/**
 * Upstream's host-type score: seeds rank first while ReceivedNormal or Running, last otherwise — and a triggered
 * seed downloads in BackToSource, so while it is the only holder it ranks below every normal peer.
 */
export function hostTypeScore(parent: Pick<Peer, 'state'> & { host: { type: number } }): number {
  if (parent.host.type !== HostType.NORMAL) {
    return parent.state === 'ReceivedNormal' || parent.state === 'Running' ? 1 : 0;
  }
  return 0.5;
}

/**
 * The swarm's host-type score: normal peers that hold pieces first (they spare the seed's uplink), then seeds in
 * any state that serves (downloading or done: they will have every piece), then normal peers with nothing yet.
 */
export function swarmHostTypeScore(
  parent: Pick<Peer, 'state' | 'holdsPieces'> & { host: { type: number } },
): number {
  if (parent.host.type !== HostType.NORMAL) return 0.5;
  return parent.state === 'Succeeded' || parent.state === 'BackToSource' || parent.holdsPieces() ? 1 : 0.25;
}

export function evaluateParent(parent: Peer, child: Peer, swarm = false): number {
  return (
    LOAD_QUALITY_WEIGHT * loadQualityScore(parent.host) +
    IDC_AFFINITY_WEIGHT * idcAffinityScore(parent.host.idc, child.host.idc) +
    LOCATION_AFFINITY_WEIGHT * locationAffinityScore(parent.host.location, child.host.location) +
    HOST_TYPE_WEIGHT * (swarm ? swarmHostTypeScore(parent) : hostTypeScore(parent))
  );
}

/** Parents sorted best first; `swarm` picks the host-type score. */
export function evaluateParents(parents: readonly Peer[], child: Peer, swarm = false): Peer[] {
  return parents
    .map((p) => ({ p, score: evaluateParent(p, child, swarm) }))
    .sort((a, b) => b.score - a.score)
    .map((x) => x.p);
}
