// A stored piece as a common.v2.Piece: the same message in DownloadPieceFinishedResponse (to dfget) and in
// DownloadPieceFinishedRequest (to the scheduler).

import type { Piece } from '../gen/common.js';
import type { PieceRecord } from '../storage/storage.js';

export function pieceMessage(p: PieceRecord, trafficType: number | undefined, content?: Buffer): Piece {
  return {
    number: p.number,
    parentId: p.parentId,
    offset: p.offset,
    length: p.length,
    digest: p.digest,
    content,
    trafficType,
    cost: { seconds: Math.floor(p.costMs / 1000), nanos: Math.round((p.costMs % 1000) * 1e6) },
    createdAt: p.createdAt,
  };
}
