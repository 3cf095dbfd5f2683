// The scheduler's in-memory model (upstream `scheduler/resource/standard/{host,task,peer}.go`): hosts announced by
// peers, tasks keyed by task id, and peers (one download of one task on one host) with their state machines. A
// task's peers form a DAG (parent → child) and each edge charges the parent's host with the child's expected load,
// which the evaluator reads (spec/scheduler.md §2, §3.2).

import type { Host as HostMessage, Piece, Range } from '../../gen/common.js';
import { TaskType } from '../../gen/common.js';
import type { AnnouncePeerResponse } from '../../gen/scheduler.js';
import { DfError } from '../../core/errors.js';
import { Dag } from './dag.js';

/** Host types as announced (`host.type`): only type 1 (super seed) acts as a seed; 2 and 3 are neither. */
export const HostType = { NORMAL: 0, SUPER_SEED: 1 } as const;

/** Go's `SizeScope_UNKNOW`, absent from the upstream proto the TS code is generated from. */
export const SIZE_SCOPE_UNKNOW = 4;
export const TINY_FILE_SIZE = 128;
/** Pieces whose costs are remembered per peer for the bad-parent check. */
export const PIECE_COST_WINDOW = 2000;
export const DEFAULT_CONCURRENT_PIECE_COUNT = 8;

export type TaskState = 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Leave';
export type TaskEvent = 'Download' | 'DownloadSucceeded' | 'DownloadFailed' | 'Leave';
export type PeerState =
  | 'Pending'
  | 'ReceivedEmpty'
  | 'ReceivedNormal'
  | 'Running'
  | 'BackToSource'
  | 'Succeeded'
  | 'Failed'
  | 'Leave';
export type PeerEvent =
  | 'RegisterEmpty'
  | 'RegisterNormal'
  | 'Download'
  | 'DownloadBackToSource'
  | 'DownloadSucceeded'
  | 'DownloadFailed'
  | 'Leave';

const TASK_FSM: Record<TaskEvent, { from: readonly TaskState[]; to: TaskState }> = {
  Download: { from: ['Pending', 'Succeeded', 'Failed', 'Leave'], to: 'Running' },
  DownloadSucceeded: { from: ['Running', 'Failed', 'Leave'], to: 'Succeeded' },
  DownloadFailed: { from: ['Running'], to: 'Failed' },
  Leave: { from: ['Pending', 'Running', 'Succeeded', 'Failed'], to: 'Leave' },
};

const RECEIVED: readonly PeerState[] = ['ReceivedEmpty', 'ReceivedNormal'];
const PEER_FSM: Record<PeerEvent, { from: readonly PeerState[]; to: PeerState }> = {
  RegisterEmpty: { from: ['Pending'], to: 'ReceivedEmpty' },
  RegisterNormal: { from: ['Pending'], to: 'ReceivedNormal' },
  Download: { from: RECEIVED, to: 'Running' },
  DownloadBackToSource: { from: [...RECEIVED, 'Running'], to: 'BackToSource' },
  DownloadSucceeded: { from: [...RECEIVED, 'Running', 'BackToSource'], to: 'Succeeded' },
  DownloadFailed: {
    from: ['Pending', ...RECEIVED, 'Running', 'BackToSource', 'Succeeded'],
    to: 'Failed',
  },
  Leave: {
    from: ['Pending', ...RECEIVED, 'Running', 'BackToSource', 'Succeeded', 'Failed'],
    to: 'Leave',
  },
};

function transitionError(what: string, event: string, state: string): DfError {
  return new DfError('INTERNAL', `${what}: event ${event} inappropriate in current state ${state}`);
}

/** Where scheduling replies go: the peer's AnnouncePeer stream while it is open. */
export interface AnnouncePeerStream {
  send(response: AnnouncePeerResponse): void;
}

export class Host {
  readonly id: string;
  /** The last announced message, kept whole for ListHosts and the Peer messages of replies. */
  info: HostMessage;
  /** Announce interval in ms; 0 when the host did not send one (then it is never collected). */
  intervalMs = 0;
  /** The gRPC peer address ("ipv4:127.0.0.1:51234") of the connection of the last accepted AnnounceHost. */
  announcedVia = '';
  readonly createdAt: Date;
  updatedAt: Date;
  /**
   * The address the host was announced from (the AnnounceHost caller's IP). Only a caller at this address may
   * change or delete the host, or register peers on it; undefined for hosts made in-process (tests).
   */
  announcedFrom?: string;
  readonly peers = new Map<string, Peer>();
  uploadFailedCount = 0;
  concurrentRegisterCount = 0;
  /** Load charged by the child edges of this host's peers (§3.2): bits/s, bytes, pieces. */
  txBandwidth = 0;
  uploadContentLength = 0;
  concurrentUploadPieceCount = 0;

  constructor(info: HostMessage, now = new Date()) {
    this.id = info.id;
    this.info = { ...info, schedulerClusterId: 0 };
    this.createdAt = now;
    this.updatedAt = now;
  }

  get type(): number {
    return this.info.type;
  }
  get disableShared(): boolean {
    return this.info.disableShared;
  }
  get idc(): string {
    return this.info.network?.idc ?? '';
  }
  get location(): string {
    return this.info.network?.location ?? '';
  }
  /** The host's upload capacity in bits per second (0 = unknown). */
  get maxTxBandwidth(): number {
    return this.info.network?.maxTxBandwidth ?? 0;
  }
}

interface EdgeLoad {
  host: Host;
  tx: number;
  bytes: number;
  pieces: number;
}

export interface TaskInit {
  id: string;
  type: TaskType;
  url: string;
  digest?: string;
  tag: string;
  application: string;
  filteredQueryParams: string[];
  requestHeader: Record<string, string>;
  pieceLength: number;
  contentLength: number;
  pieceCount: number;
  backToSourceLimit: number;
  /**
   * Ours (the `swarm` option): two normal peers may be each other's parents. Upstream's graph is acyclic, so a
   * peer never takes pieces from its descendants: in a 32-peer swarm the first peers to register had 14–15
   * children each and sent up to 31 pieces, while the last ones, everyone's descendants, sent 0–2.
   */
  peersTradeBothWays?: boolean;
}

export class Task {
  readonly id: string;
  readonly type: TaskType;
  url: string;
  readonly digest?: string;
  readonly tag: string;
  readonly application: string;
  filteredQueryParams: string[];
  requestHeader: Record<string, string>;
  readonly pieceLength: number;
  /** −1 once a back-to-source download failed (Go's "unknown"; sent as 2^64−1). */
  contentLength: number;
  pieceCount: number;
  readonly backToSourceLimit: number;
  readonly peersTradeBothWays: boolean;
  state: TaskState = 'Pending';
  readonly backToSourcePeers = new Set<string>();
  /** Pieces reported by back-to-source downloads only (StatTask). */
  readonly pieces = new Map<number, Piece>();
  readonly dag = new Dag<Peer>();
  peerFailedCount = 0;
  readonly createdAt: Date;
  updatedAt: Date;
  private readonly edgeLoads = new Map<string, EdgeLoad>();
  /** The last seed trigger for this task (see seedTriggered). */
  private seedTrigger?: { at: number; ended: boolean };

  constructor(init: TaskInit, now = new Date()) {
    this.id = init.id;
    this.type = init.type;
    this.url = init.url;
    this.digest = init.digest;
    this.tag = init.tag;
    this.application = init.application;
    this.filteredQueryParams = init.filteredQueryParams;
    this.requestHeader = init.requestHeader;
    this.pieceLength = init.pieceLength;
    this.contentLength = init.contentLength;
    this.pieceCount = init.pieceCount;
    this.backToSourceLimit = init.backToSourceLimit;
    this.peersTradeBothWays = init.peersTradeBothWays ?? false;
    this.createdAt = now;
    this.updatedAt = now;
  }

  event(e: TaskEvent, now = new Date()): void {
    const t = TASK_FSM[e];
    if (!t.from.includes(this.state)) throw transitionError(`task ${this.id}`, e, this.state);
    this.state = t.to;
    this.updatedAt = now;
  }

  /** Go's `SizeScope()`: UNKNOW (4) for a negative length, EMPTY, TINY (≤ 128 B), SMALL (1 piece), NORMAL. */
  sizeScope(): number {
    if (this.contentLength < 0 || this.pieceCount < 0) return SIZE_SCOPE_UNKNOW;
    if (this.contentLength === 0) return 3; // EMPTY
    if (this.contentLength <= TINY_FILE_SIZE) return 2; // TINY
    if (this.pieceCount === 1) return 1; // SMALL
    return 0; // NORMAL
  }

  canBackToSource(): boolean {
    return this.backToSourcePeers.size <= this.backToSourceLimit && this.type !== TaskType.PERSISTENT_CACHE;
  }

  get peerCount(): number {
    return this.dag.size;
  }

  peers(): Peer[] {
    return [...this.dag.values()];
  }

  addPeer(peer: Peer): void {
    this.dag.addVertex(peer.id, peer);
  }

  /** Removes the peer and every edge it had (freeing the load those edges charged). */
  deletePeer(id: string): void {
    for (const [p, c] of this.dag.deleteVertex(id)) this.releaseEdge(p, c);
  }

  /** At most `limit` peers in random order (Go's map-order sample). */
  loadRandomPeers(limit: number): Peer[] {
    const all = this.peers();
    for (let i = all.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [all[i], all[j]] = [all[j]!, all[i]!];
    }
    return all.slice(0, limit);
  }

  canAddPeerEdge(parentId: string, childId: string): boolean {
    return this.dag.canAddEdge(parentId, childId, this.mayCycle(parentId, childId));
  }

  /** Adds parent → child and charges the parent's host with the child's expected load. */
  addPeerEdge(parent: Peer, child: Peer): boolean {
    if (!this.dag.addEdge(parent.id, child.id, this.mayCycle(parent.id, child.id))) return false;
    const load: EdgeLoad = {
      host: parent.host,
      tx: this.pieceLength * child.concurrentPieceCount * 8,
      bytes: Math.max(0, this.contentLength),
      pieces: child.concurrentPieceCount,
    };
    parent.host.txBandwidth += load.tx;
    parent.host.uploadContentLength += load.bytes;
    parent.host.concurrentUploadPieceCount += load.pieces;
    this.edgeLoads.set(edgeKey(parent.id, child.id), load);
    return true;
  }

  /**
   * Whether the edge may close a cycle: with peersTradeBothWays, between two normal-host peers. Never into a
   * seed: a seed that took pieces from its own children would wait on them for pieces only it can fetch.
   */
  private mayCycle(parentId: string, childId: string): boolean {
    if (!this.peersTradeBothWays) return false;
    const normal = (id: string) => this.dag.get(id)?.host.type === HostType.NORMAL;
    return normal(parentId) && normal(childId);
  }

  deletePeerInEdges(childId: string): void {
    for (const p of this.dag.deleteInEdges(childId)) this.releaseEdge(p, childId);
  }

  private releaseEdge(parentId: string, childId: string): void {
    const key = edgeKey(parentId, childId);
    const load = this.edgeLoads.get(key);
    if (!load) return;
    this.edgeLoads.delete(key);
    load.host.txBandwidth -= load.tx;
    load.host.uploadContentLength -= load.bytes;
    load.host.concurrentUploadPieceCount -= load.pieces;
  }

  /** Go's `HasAvailablePeer`: a peer on another host, not blocked, Running, Succeeded or BackToSource. */
  hasAvailablePeer(hostId: string, blocklist: ReadonlySet<string>): boolean {
    for (const p of this.dag.values()) {
      if (p.host.id === hostId || blocklist.has(p.id)) continue;
      if (p.state === 'Running' || p.state === 'Succeeded' || p.state === 'BackToSource') return true;
    }
    return false;
  }

  /** Go's `IsSeedPeerFailed`: the newest seed peer of the task failed less than `timeoutMs` ago. */
  isSeedPeerFailed(timeoutMs: number, now = Date.now()): boolean {
    const newest = this.newestSeedPeer();
    return !!newest && newest.state === 'Failed' && now - newest.createdAt.getTime() < timeoutMs;
  }

  /** The task's peers on seed hosts (type 1). */
  seedPeers(): Peer[] {
    return this.peers().filter((p) => p.host.type === HostType.SUPER_SEED);
  }

  private newestSeedPeer(): Peer | undefined {
    let newest: Peer | undefined;
    for (const p of this.seedPeers()) if (!newest || p.createdAt > newest.createdAt) newest = p;
    return newest;
  }

  /**
   * Records that a seed was asked to download the task (§4). The seed's peer only appears once it registers, so
   * until then this is the scheduler's only sign that a parent is coming. Call the returned function when the
   * DownloadTask call ends.
   */
  seedTriggered(now = Date.now()): () => void {
    const trigger = { at: now, ended: false };
    this.seedTrigger = trigger;
    return () => {
      trigger.ended = true;
    };
  }

  /**
   * Whether a seed is on its way to serving a peer that blocks `blocklist`: a seed was triggered after the newest
   * seed peer registered (so it has not registered for this trigger yet), less than `timeoutMs` ago, and its
   * DownloadTask call is still open; or the newest seed peer is still registering or downloading, is not blocked
   * and showed life less than `timeoutMs` ago.
   */
  isSeedPeerStarting(blocklist: ReadonlySet<string>, timeoutMs: number, now = Date.now()): boolean {
    const t = this.seedTrigger;
    const seed = this.newestSeedPeer();
    if (t && (!seed || seed.createdAt.getTime() < t.at)) return !t.ended && now - t.at < timeoutMs;
    if (!seed || blocklist.has(seed.id) || !seed.is(...SEED_PEER_WORKING)) return false;
    return now - seed.updatedAt.getTime() < timeoutMs;
  }
}

/** States of a seed peer that will (still) lead to pieces: registering, or downloading. */
const SEED_PEER_WORKING: PeerState[] = [
  'Pending',
  'ReceivedEmpty',
  'ReceivedNormal',
  'Running',
  'BackToSource',
];

function edgeKey(parentId: string, childId: string): string {
  return `${parentId}\n${childId}`;
}

export interface PeerInit {
  id: string;
  task: Task;
  host: Host;
  priority: number;
  range?: Range;
  concurrentPieceCount?: number;
  stream?: AnnouncePeerStream;
}

export class Peer {
  readonly id: string;
  readonly task: Task;
  readonly host: Host;
  readonly priority: number;
  readonly range?: Range;
  readonly concurrentPieceCount: number;
  state: PeerState = 'Pending';
  readonly finishedPieces = new Set<number>();
  /** Costs (ms) of the last PIECE_COST_WINDOW pieces. */
  readonly pieceCosts: number[] = [];
  costMs = 0;
  readonly blockParents = new Set<string>();
  needBackToSource = false;
  /** The open AnnouncePeer stream; dropped when the stream ends. */
  stream?: AnnouncePeerStream;
  readonly createdAt: Date;
  updatedAt: Date;
  pieceUpdatedAt: Date;

  constructor(init: PeerInit, now = new Date()) {
    this.id = init.id;
    this.task = init.task;
    this.host = init.host;
    this.priority = init.priority;
    this.range = init.range;
    this.concurrentPieceCount = init.concurrentPieceCount || DEFAULT_CONCURRENT_PIECE_COUNT;
    this.stream = init.stream;
    this.createdAt = now;
    this.updatedAt = now;
    this.pieceUpdatedAt = now;
  }

  is(...states: PeerState[]): boolean {
    return states.includes(this.state);
  }

  /** Fires a state-machine event with upstream's side effects on the task (§2 "Side effects"). */
  event(e: PeerEvent, now = new Date()): void {
    const t = PEER_FSM[e];
    const from = this.state;
    if (!t.from.includes(from)) throw transitionError(`peer ${this.id}`, e, from);
    this.state = t.to;
    this.updatedAt = now;
    const task = this.task;
    if (from === 'BackToSource' && t.to !== 'BackToSource') task.backToSourcePeers.delete(this.id);
    switch (t.to) {
      case 'BackToSource':
        task.backToSourcePeers.add(this.id);
        task.deletePeerInEdges(this.id);
        break;
      case 'Succeeded':
        task.peerFailedCount = 0;
        task.deletePeerInEdges(this.id);
        break;
      case 'Failed':
        if (from === 'BackToSource') task.peerFailedCount++;
        task.deletePeerInEdges(this.id);
        break;
      case 'Leave':
        task.deletePeerInEdges(this.id);
        break;
      default:
        break;
    }
  }

  /** Whether the peer reported a finished piece (DownloadPiece*Finished): it can serve those pieces. */
  holdsPieces(): boolean {
    return this.finishedPieces.size > 0;
  }

  appendPieceCost(ms: number): void {
    this.pieceCosts.push(ms);
    if (this.pieceCosts.length > PIECE_COST_WINDOW) this.pieceCosts.shift();
  }
}

/** The three indexes, and the deletions that must keep them and the DAGs consistent. */
export class Resources {
  readonly hosts = new Map<string, Host>();
  readonly tasks = new Map<string, Task>();
  readonly peers = new Map<string, Peer>();
  private readonly hostDeletedListeners = new Set<(host: Host) => void>();
  private readonly hostAnnouncedListeners = new Set<(host: Host) => void>();

  seedHosts(): Host[] {
    return [...this.hosts.values()].filter((h) => h.type === HostType.SUPER_SEED);
  }

  storePeer(peer: Peer): void {
    this.peers.set(peer.id, peer);
    peer.task.addPeer(peer);
    peer.host.peers.set(peer.id, peer);
  }

  /** Removes a peer from every index and its task's DAG (its edges and their load go with it). */
  deletePeer(peer: Peer): void {
    if (peer.state !== 'Leave') peer.event('Leave');
    peer.stream = undefined;
    peer.task.deletePeer(peer.id);
    peer.host.peers.delete(peer.id);
    this.peers.delete(peer.id);
  }

  /** Deletes a host and all of its peers. */
  deleteHost(host: Host): void {
    for (const peer of [...host.peers.values()]) this.deletePeer(peer);
    this.hosts.delete(host.id);
    for (const listener of this.hostDeletedListeners) listener(host);
  }

  /** Tells the listeners that an AnnounceHost registered or refreshed the host. */
  hostAnnounced(host: Host): void {
    for (const listener of this.hostAnnouncedListeners) listener(host);
  }

  /** Runs `listener` whenever an AnnounceHost registered or refreshed a host: the store keeps it. */
  onHostAnnounced(listener: (host: Host) => void): void {
    this.hostAnnouncedListeners.add(listener);
  }

  /** Runs `listener` whenever a host is deleted (DeleteHost or host GC): persistent cache replicas follow it. */
  onHostDeleted(listener: (host: Host) => void): void {
    this.hostDeletedListeners.add(listener);
  }
}
