// The common.v2 messages the scheduler sends, built from its model (spec/scheduler.md §3.3 step 5, §5). One place,
// so NormalTaskResponse, StatPeer and StatTask describe a peer, task and host the same way.

import type {
  Host as HostMessage,
  Peer as PeerMessage,
  Piece,
  Task as TaskMessage,
} from '../../gen/common.js';
import type { Host, Peer, Task } from './resources.js';

/**
 * uint64 2^64−1, Go's rendering of a content length of −1 ("unknown"). The generated writer takes a decimal string
 * for uint64 (JS numbers cannot hold it), so it travels through the `number` field as a string.
 */
const UNKNOWN_CONTENT_LENGTH = '18446744073709551615' as unknown as number;

import { msToDuration } from '../../core/duration.js';

export { durationToMs, msToDuration } from '../../core/duration.js';

/** The piece as it is kept: never its content. */
export function storedPiece(p: Piece): Piece {
  return { ...p, content: undefined };
}

export function taskMessage(task: Task, opts: { pieces: boolean }): TaskMessage {
  return {
    id: task.id,
    type: task.type,
    url: task.url,
    digest: task.digest,
    tag: task.tag,
    application: task.application,
    filteredQueryParams: task.filteredQueryParams,
    requestHeader: task.requestHeader,
    contentLength: task.contentLength < 0 ? UNKNOWN_CONTENT_LENGTH : task.contentLength,
    pieceCount: Math.max(0, task.pieceCount),
    sizeScope: task.sizeScope(),
    pieces: opts.pieces ? [...task.pieces.values()].sort((a, b) => a.number - b.number) : [],
    state: task.state,
    peerCount: task.peerCount,
    hasAvailablePeer: false,
    createdAt: task.createdAt,
    updatedAt: task.updatedAt,
  };
}

/** The host as a parent is described: without name, scheduler_cluster_id and disable_shared (as Go sends it). */
export function parentHostMessage(host: Host): HostMessage {
  return { ...host.info, name: '', schedulerClusterId: 0, disableShared: false };
}

/** The host as ListHosts returns it: everything announced except the request's cluster id. */
export function hostMessage(host: Host): HostMessage {
  return { ...host.info, schedulerClusterId: 0 };
}

/** A complete Peer (no pieces of its own): NormalTaskResponse candidates and StatPeer. */
export function peerMessage(peer: Peer, opts: { hostName: boolean; taskPieces: boolean }): PeerMessage {
  const host = parentHostMessage(peer.host);
  if (opts.hostName) host.name = peer.host.info.name;
  return {
    id: peer.id,
    range: peer.range ? { start: peer.range.start, length: peer.range.length } : undefined,
    priority: peer.priority,
    pieces: [],
    cost: msToDuration(peer.costMs),
    state: peer.state,
    task: taskMessage(peer.task, { pieces: opts.taskPieces }),
    host,
    needBackToSource: peer.needBackToSource,
    createdAt: peer.createdAt,
    updatedAt: peer.updatedAt,
    concurrentPieceCount: peer.concurrentPieceCount,
  };
}
