// What the piece collector needs from a peer-to-peer piece transfer, whatever carries it: TCP Vortex today
// (piece-client.ts), QUIC Vortex later. Upstream picks one by the downloader's `download.protocol`.

/** Which family of tasks the piece belongs to; each has its own request and content tags. */
export type PieceKind = 'standard' | 'persistent' | 'persistent-cache';

export interface PieceRequest {
  /** The parent's address (SyncPiecesResponse ip + tcp_port / quic_port). */
  ip: string;
  port: number;
  taskId: string;
  number: number;
  /** Bounds the whole transfer: connect, request, metadata and every piece byte (download.pieceTimeout). */
  timeoutMs: number;
  signal?: AbortSignal;
  /** Defaults to 'standard'. */
  kind?: PieceKind;
}

/** The metadata a parent sends ahead of the piece bytes, in the units the rest of the daemon uses. */
export interface RemotePiece {
  number: number;
  offset: number;
  /** Exactly this many bytes come out of `body`. */
  length: number;
  /** `crc32:<decimal>` as the parent computed it; the caller verifies the bytes against it (empty: no check). */
  digest: string;
  /** Empty when the parent's piece has none. */
  parentId: string;
  trafficType: number;
  costSecs: number;
  createdAt: Date;
}

export interface DownloadedPiece {
  metadata: RemotePiece;
  /**
   * The piece bytes, streamed as they arrive; iterate once. Throws a DfError if the connection ends early, the
   * time runs out or the signal aborts. Stopping the iteration early releases the connection.
   */
  body: AsyncIterable<Buffer>;
  /** Releases the connection without reading the body. */
  cancel(): void;
}

export interface PieceTransport {
  readonly protocol: 'tcp' | 'quic';
  downloadPiece(request: PieceRequest): Promise<DownloadedPiece>;
}
