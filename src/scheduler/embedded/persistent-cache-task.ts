// The persistent cache task and peer of the embedded scheduler's model (spec/scheduler.md §6; Go
// scheduler/resource/persistentcache): what the registry (persistent-cache.ts) keeps and the replica placer
// (persistent-cache-replicas.ts) reads, and their common.v2 messages.

import { msToDuration } from '../../core/duration.js';
import type {
  ObjectStorage,
  PersistentCachePeer as PeerMessage,
  PersistentCacheTask as TaskMessage,
} from '../../gen/common.js';
import { hostMessage } from './messages.js';
import type { Host } from './resources.js';

export type PersistentCachePeerState = 'Pending' | 'Uploading' | 'Running' | 'Succeeded' | 'Failed';

export interface PersistentCacheTaskInit {
  id: string;
  persistentReplicaCount: number;
  tag?: string;
  application?: string;
  /** A persistent task's object (dfstore): where replicas fetch what no peer has. */
  url?: string;
  objectStorage?: ObjectStorage;
  pieceLength: number;
  contentLength: number;
  pieceCount: number;
  ttlMs: number;
}

export type PersistentCacheTaskState = 'Uploading' | 'Succeeded' | 'Failed';

export class PersistentCacheTask {
  state: PersistentCacheTaskState = 'Uploading';
  readonly peers = new Map<string, PersistentCachePeer>();
  updatedAt: Date;
  expiry?: NodeJS.Timeout;
  /** Replica placement retries in a row, the pending one, and the hosts whose placement failed (tried last). */
  placementRetries = 0;
  placementRetry?: NodeJS.Timeout;
  readonly failedPlacementHosts = new Set<string>();

  constructor(
    readonly init: PersistentCacheTaskInit,
    readonly createdAt = new Date(),
  ) {
    this.updatedAt = createdAt;
  }

  get id(): string {
    return this.init.id;
  }

  /** Peers that hold the task or are fetching it as persistent replicas. */
  persistentPeers(): PersistentCachePeer[] {
    return [...this.peers.values()].filter(
      (p) => p.persistent && (p.state === 'Succeeded' || p.state === 'Running' || p.state === 'Uploading'),
    );
  }

  message(): TaskMessage {
    const peers = [...this.peers.values()].filter((p) => p.state === 'Succeeded');
    return {
      id: this.id,
      persistentReplicaCount: this.init.persistentReplicaCount,
      currentPersistentReplicaCount: peers.filter((p) => p.persistent).length,
      currentReplicaCount: peers.length,
      tag: this.init.tag,
      application: this.init.application,
      pieceLength: this.init.pieceLength,
      contentLength: this.init.contentLength,
      pieceCount: this.init.pieceCount,
      state: this.state,
      ttl: msToDuration(this.init.ttlMs),
      createdAt: this.createdAt,
      updatedAt: this.updatedAt,
    };
  }
}

export class PersistentCachePeer {
  state: PersistentCachePeerState;
  updatedAt: Date;

  constructor(
    readonly id: string,
    readonly task: PersistentCacheTask,
    readonly host: Host,
    public persistent: boolean,
    state: PersistentCachePeerState,
    readonly createdAt = new Date(),
  ) {
    this.state = state;
    this.updatedAt = createdAt;
  }

  message(): PeerMessage {
    return {
      id: this.id,
      persistent: this.persistent,
      cost: undefined,
      state: this.state,
      task: this.task.message(),
      host: hostMessage(this.host),
      createdAt: this.createdAt,
      updatedAt: this.updatedAt,
      concurrentPieceCount: 0,
    };
  }
}
