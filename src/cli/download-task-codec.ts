// DfdaemonDownload.DownloadTask's messages on the wire, written by hand over core/protobuf-wire.ts so that dfget
// loads neither the generated code nor its protobuf runtime (docs/benchmarks.md, "Start-up"). Field numbers are
// proto/common.proto's and proto/dfdaemon.proto's; test/unit/cli/download-task-codec.test.ts checks both
// directions against the generated code, so a drift from the protos fails there.

import { ProtoReader, ProtoWriter } from '../core/protobuf-wire.js';
import type { Download } from '../gen/common.js';

/** The gRPC method path of DownloadTask. */
export const DOWNLOAD_TASK_PATH = '/dfdaemon.v2.DfdaemonDownload/DownloadTask';

/** Enum values of common.v2 dfget sends (the generated enums would load the generated module). */
export const TASK_TYPE_STANDARD = 0;
export const SCHEDULING_POLICY = { auto: 0, always: 1 } as const;

/** A DownloadTaskRequest holding `download`. */
export function encodeDownloadTaskRequest(download: Download): Buffer {
  return new ProtoWriter().message(1, (w) => writeDownload(w, download)).finish();
}

function writeDownload(w: ProtoWriter, d: Download): void {
  w.string(1, d.url)
    .string(2, d.digest, true)
    .message(3, d.range && ((r) => r.uint(1, d.range!.start).uint(2, d.range!.length)))
    .uint(4, d.type)
    .string(5, d.tag, true)
    .string(6, d.application, true)
    .uint(7, d.priority);
  for (const p of d.filteredQueryParams) w.string(8, p, true);
  w.stringMap(9, d.requestHeader)
    .uint(10, d.pieceLength, true)
    .string(11, d.outputPath, true)
    .message(12, d.timeout && ((t) => t.uint(1, d.timeout!.seconds).uint(2, d.timeout!.nanos)))
    .bool(13, d.disableBackToSource)
    .bool(14, d.needBackToSource);
  for (const c of d.certificateChain) w.bytes(15, c, true);
  w.bool(16, d.prefetch)
    .message(17, d.objectStorage && ((o) => writeObjectStorage(o, d.objectStorage!)))
    .message(18, d.hdfs && ((h) => h.string(1, d.hdfs!.delegationToken, true)))
    .bool(19, d.isPrefetch)
    .bool(20, d.needPieceContent)
    .bool(22, d.forceHardLink)
    .string(23, d.contentForCalculatingTaskId, true)
    .string(24, d.remoteIp, true)
    .uint(25, d.concurrentPieceCount, true)
    .bool(26, d.overwrite)
    .uint(27, d.actualPieceLength, true)
    .uint(28, d.actualContentLength, true)
    .uint(29, d.actualPieceCount, true)
    .bool(30, d.enableTaskIdBasedBlobDigest)
    .message(31, d.huggingFace && ((h) => writeHub(h, d.huggingFace!)))
    .message(32, d.modelScope && ((h) => writeHub(h, d.modelScope!)))
    .bool(33, d.metadataOnly)
    .message(34, d.openCsg && ((h) => writeHub(h, d.openCsg!)))
    .uint(35, d.schedulingPolicy);
}

function writeObjectStorage(w: ProtoWriter, o: NonNullable<Download['objectStorage']>): void {
  w.string(1, o.region, true)
    .string(2, o.endpoint, true)
    .string(3, o.accessKeyId, true)
    .string(4, o.accessKeySecret, true)
    .string(5, o.sessionToken, true)
    .string(6, o.credentialPath, true)
    .string(7, o.predefinedAcl, true)
    .string(8, o.securityToken, true)
    .bool(9, o.insecureSkipVerify, true);
}

/** HuggingFace, ModelScope and OpenCSG share their fields: token = 1, revision = 2, base_url = 3. */
function writeHub(w: ProtoWriter, h: { token?: string; revision: string; baseUrl?: string }): void {
  w.string(1, h.token, true).string(2, h.revision).string(3, h.baseUrl, true);
}

/** The part of common.v2.Piece dfget reads. */
export interface ResponsePiece {
  number: number;
  offset: number;
  length: number;
  digest: string;
  content?: Buffer;
  /** common.v2.TrafficType, when dfdaemon sent it. */
  trafficType?: number;
}

/** The part of DownloadTaskResponse dfget reads: one of the two responses is set. */
export interface DownloadTaskResponseView {
  taskId: string;
  peerId: string;
  started?: { contentLength: number; pieces: ResponsePiece[] };
  piece?: ResponsePiece;
}

export function decodeDownloadTaskResponse(buf: Buffer): DownloadTaskResponseView {
  const r = new ProtoReader(buf);
  const out: DownloadTaskResponseView = { taskId: '', peerId: '' };
  for (let f = r.next(); f; f = r.next()) {
    if (f === 2) out.taskId = r.string();
    else if (f === 3) out.peerId = r.string();
    else if (f === 4) out.started = readStarted(r.message());
    else if (f === 5) {
      const finished = r.message();
      for (let g = finished.next(); g; g = finished.next()) {
        if (g === 1) out.piece = readPiece(finished.message());
        else finished.skip();
      }
    } else r.skip();
  }
  return out;
}

function readStarted(r: ProtoReader): NonNullable<DownloadTaskResponseView['started']> {
  const out = { contentLength: 0, pieces: [] as ResponsePiece[] };
  for (let f = r.next(); f; f = r.next()) {
    if (f === 1) out.contentLength = r.varint();
    else if (f === 4) out.pieces.push(readPiece(r.message()));
    else r.skip();
  }
  return out;
}

function readPiece(r: ProtoReader): ResponsePiece {
  const p: ResponsePiece = { number: 0, offset: 0, length: 0, digest: '' };
  for (let f = r.next(); f; f = r.next()) {
    if (f === 1) p.number = r.varint();
    else if (f === 3) p.offset = r.varint();
    else if (f === 4) p.length = r.varint();
    else if (f === 5) p.digest = r.string();
    else if (f === 6) p.content = r.bytes();
    else if (f === 7) p.trafficType = r.varint();
    else r.skip();
  }
  return p;
}
