// The piece collector (resource/piece_collector.rs): opens DfdaemonUpload.SyncPieces to every candidate parent
// and hands each announced piece (which parent, where its Vortex server listens, whether it is a seed) to the
// listener — the piece picker decides what to do with it. One collector serves every parent set of a task run,
// rescheduled parents included.

import type { ClientReadableStream } from '@grpc/grpc-js';
import type { Host, Peer } from '../gen/common.js';
import type { DfdaemonUploadClient, SyncPiecesRequest, SyncPiecesResponse } from '../gen/dfdaemon.js';
import type { PieceHolder } from './piece-picker.js';

/** What the collector needs of a parent: a common.v2.Peer, or a PersistentCachePeer. */
export interface CollectedParent {
  id: string;
  host?: Host;
}

/**
 * The RPC that streams a parent's pieces: SyncPieces, or SyncPersistentCachePieces (same request and answer
 * fields) for persistent cache tasks.
 */
export type SyncPiecesCall = (
  client: DfdaemonUploadClient,
  req: SyncPiecesRequest,
) => ClientReadableStream<SyncPiecesResponse>;

const syncStandardPieces: SyncPiecesCall = (client, req) => client.syncPieces(req);

export interface PieceCollectorOptions {
  hostId: string;
  taskId: string;
  interested: number[];
  /** The upload gRPC client of a parent's host (`host.ip:host.port`). */
  uploadClient: (ip: string, port: number) => DfdaemonUploadClient;
  /** A parent announced a piece. */
  onPiece: (number: number, holder: PieceHolder) => void;
  /** A parent's stream ended (it sent every interested piece it will have, or it failed). */
  onParentEnded?: (parentId: string, err?: Error) => void;
  log: { debug(o: object, m: string): void; warn(o: object, m: string): void };
  /** Default SyncPieces. */
  sync?: SyncPiecesCall;
}

/** common.v2.HostType NORMAL: every other type is a seed peer. */
const HOST_TYPE_NORMAL = 0;

export class PieceCollector<P extends CollectedParent = Peer> {
  private readonly o: PieceCollectorOptions;
  private readonly streams = new Map<string, ClientReadableStream<SyncPiecesResponse>>();
  private readonly knownParents = new Map<string, P>();
  private closed = false;

  constructor(options: PieceCollectorOptions) {
    this.o = options;
  }

  /** Parents ever given to this collector, in order (the candidate list for ReschedulePeer). */
  get parents(): P[] {
    return [...this.knownParents.values()];
  }

  /** Whether the parent was given to this collector before. */
  knows(parentId: string): boolean {
    return this.knownParents.has(parentId);
  }

  /** Parents whose SyncPieces stream is still open. */
  get activeParents(): number {
    return this.streams.size;
  }

  /** Starts following new parents; parents already known are left as they are. */
  addParents(parents: P[]): void {
    if (this.closed) return;
    for (const parent of parents) {
      if (this.knownParents.has(parent.id) || !parent.host) continue;
      this.knownParents.set(parent.id, parent);
      this.sync(parent);
    }
  }

  private sync(parent: P): void {
    const host = parent.host!;
    const seed = host.type !== HOST_TYPE_NORMAL;
    const client = this.o.uploadClient(host.ip, host.port);
    const stream = (this.o.sync ?? syncStandardPieces)(client, {
      hostId: this.o.hostId,
      taskId: this.o.taskId,
      interestedPieceNumbers: this.o.interested,
    });
    this.streams.set(parent.id, stream);
    stream.on('data', (r: SyncPiecesResponse) => {
      if (r.tcpPort === undefined) return; // only Vortex TCP is spoken here (QUIC may come later)
      this.o.log.debug({ parent: parent.id, piece: r.number }, 'parent announced a piece');
      this.o.onPiece(r.number, {
        parentId: parent.id,
        hostId: host.id,
        ip: r.ip || host.ip,
        tcpPort: r.tcpPort,
        seed,
      });
    });
    const done = (err?: Error) => {
      if (this.streams.get(parent.id) !== stream) return;
      this.streams.delete(parent.id);
      if (err) this.o.log.debug({ parent: parent.id, err: err.message }, 'SyncPieces ended with an error');
      this.o.onParentEnded?.(parent.id, err);
    };
    stream.on('error', done);
    stream.on('end', () => done());
  }

  /** Stops following a parent that is gone: its stream no longer counts as active. */
  drop(parentId: string): void {
    const stream = this.streams.get(parentId);
    if (!stream) return;
    this.streams.delete(parentId);
    stream.cancel();
  }

  close(): void {
    this.closed = true;
    const streams = [...this.streams.values()];
    this.streams.clear();
    for (const s of streams) s.cancel();
  }
}
