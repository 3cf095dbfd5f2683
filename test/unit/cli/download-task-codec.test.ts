// dfget's hand-written DownloadTask codec (cli/download-task-codec.ts over core/protobuf-wire.ts) against the
// generated code of the same protos: what we encode decodes to the same Download, what dfdaemon encodes decodes
// to the same fields, so a field number or type that drifts from proto/ fails here.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Priority, SchedulingPolicy, TaskType, TrafficType, type Download } from '../../../src/gen/common.js';
import { DownloadTaskRequest, DownloadTaskResponse } from '../../../src/gen/dfdaemon.js';
import {
  decodeDownloadTaskResponse,
  encodeDownloadTaskRequest,
  SCHEDULING_POLICY,
  TASK_TYPE_STANDARD,
} from '../../../src/cli/download-task-codec.js';
import { ProtoReader, ProtoWriter } from '../../../src/core/protobuf-wire.js';
import { testDownload } from '../../helpers/download.js';

const MINIMAL: Download = testDownload('http://example.com/f', { priority: Priority.LEVEL0 });

/** Every field set, optional ones to their zero values too (proto3 `optional` keeps them on the wire). */
const FULL: Download = {
  url: 'hf://owner/repo/file.bin',
  digest: 'sha256:' + 'a'.repeat(64),
  range: { start: 2 ** 40, length: 7 },
  type: TaskType.PERSISTENT_CACHE,
  tag: '',
  application: 'app',
  priority: Priority.LEVEL6,
  filteredQueryParams: ['X-Amz-Signature', 'Expires'],
  requestHeader: { Authorization: 'Bearer ü', 'X-Empty': '' },
  pieceLength: 16 * 1024 * 1024,
  outputPath: '/tmp/out file',
  timeout: { seconds: 7200, nanos: 5e8 },
  disableBackToSource: true,
  needBackToSource: true,
  certificateChain: [Buffer.from([1, 2, 3]), Buffer.alloc(0)],
  prefetch: true,
  objectStorage: { region: 'r', endpoint: 'http://e', accessKeyId: '', insecureSkipVerify: false },
  hdfs: { delegationToken: 't' },
  isPrefetch: true,
  needPieceContent: true,
  forceHardLink: true,
  contentForCalculatingTaskId: 'id-content',
  remoteIp: '10.0.0.1',
  concurrentPieceCount: 0,
  overwrite: true,
  actualPieceLength: 4 * 1024 * 1024,
  actualContentLength: 2 ** 50,
  actualPieceCount: 3,
  enableTaskIdBasedBlobDigest: true,
  huggingFace: { token: 'hf', revision: 'main', baseUrl: 'http://hub' },
  modelScope: { revision: 'master' },
  metadataOnly: true,
  openCsg: { token: '', revision: '' },
  schedulingPolicy: SchedulingPolicy.ALWAYS,
};

for (const [name, download] of [
  ['a minimal Download', MINIMAL],
  ['a Download with every field', FULL],
] as const) {
  test(`${name} decodes with the generated code to the same message`, () => {
    const decoded = DownloadTaskRequest.decode(encodeDownloadTaskRequest(download)).download!;
    const normalise = (d: Download) =>
      JSON.parse(JSON.stringify({ ...d, certificateChain: d.certificateChain.map((c) => [...c]) }));
    assert.deepEqual(normalise(decoded), normalise(download));
  });
}

test("the enum values dfget sends are common.v2's", () => {
  assert.equal(TASK_TYPE_STANDARD, TaskType.STANDARD);
  assert.deepEqual(SCHEDULING_POLICY, { auto: SchedulingPolicy.AUTO, always: SchedulingPolicy.ALWAYS });
});

test('a started response encoded by the generated code decodes to its length and pieces', () => {
  const bytes = DownloadTaskResponse.encode({
    hostId: 'host',
    taskId: 'task',
    peerId: 'peer',
    downloadTaskStartedResponse: {
      contentLength: 2 ** 45 + 1,
      range: { start: 1, length: 2 },
      responseHeader: { 'content-type': 'x' },
      pieces: [
        { number: 0, offset: 0, length: 4, digest: 'crc32:1', cost: undefined, createdAt: undefined },
        { number: 9, offset: 2 ** 33, length: 5, digest: '', cost: undefined, createdAt: undefined },
      ],
      isFinished: true,
    },
  }).finish();
  assert.deepEqual(decodeDownloadTaskResponse(Buffer.from(bytes)), {
    taskId: 'task',
    peerId: 'peer',
    started: {
      contentLength: 2 ** 45 + 1,
      pieces: [
        { number: 0, offset: 0, length: 4, digest: 'crc32:1' },
        { number: 9, offset: 2 ** 33, length: 5, digest: '' },
      ],
    },
  });
});

test('a finished piece decodes with its content, traffic type and nothing else', () => {
  const content = Buffer.alloc(70_000, 3);
  const bytes = DownloadTaskResponse.encode({
    hostId: 'host',
    taskId: 'task',
    peerId: 'peer',
    downloadPieceFinishedResponse: {
      piece: {
        number: 4,
        parentId: 'parent',
        offset: 16 * 1024 * 1024,
        length: content.length,
        digest: 'crc32:42',
        content,
        trafficType: TrafficType.REMOTE_PEER,
        cost: { seconds: 1, nanos: 2 },
        createdAt: new Date(0),
      },
    },
  }).finish();
  const res = decodeDownloadTaskResponse(Buffer.from(bytes));
  assert.equal(res.started, undefined);
  assert.deepEqual(
    { ...res.piece, content: undefined },
    {
      number: 4,
      offset: 16 * 1024 * 1024,
      length: content.length,
      digest: 'crc32:42',
      content: undefined,
      trafficType: TrafficType.REMOTE_PEER,
    },
  );
  assert.ok(res.piece?.content?.equals(content));
});

test('the wire reader skips fields it does not know, of every wire type', () => {
  const msg = Buffer.concat([
    new ProtoWriter().uint(50, 300).string(51, 'x').finish(),
    Buffer.from([(12 << 3) | 1, 1, 2, 3, 4, 5, 6, 7, 8, (13 << 3) | 5, 1, 2, 3, 4]),
    new ProtoWriter().string(2, 'task').finish(),
  ]);
  assert.equal(decodeDownloadTaskResponse(msg).taskId, 'task');
});

test('a malformed message is one clear error, not a crash or a wrong answer', () => {
  const cases: [string, Buffer, RegExp][] = [
    ['a length past the end', Buffer.from([(2 << 3) | 2, 10, 1]), /runs past the end/],
    ['a truncated varint', Buffer.from([(1 << 3) | 0, 0x80]), /truncated varint/],
    ['field number 0', Buffer.from([0, 0]), /field number 0/],
    ['wire type 3 (groups)', Buffer.from([(14 << 3) | 3]), /unsupported wire type 3/],
    ['bytes expected, varint found', Buffer.from([(2 << 3) | 0, 1]), /wire type 0 where bytes were expected/],
  ];
  for (const [what, bytes, message] of cases) {
    assert.throws(() => decodeDownloadTaskResponse(bytes), message, what);
  }
});

test('varints round-trip up to 2^53', () => {
  for (const n of [0, 1, 127, 128, 2 ** 31, 2 ** 32 + 5, Number.MAX_SAFE_INTEGER]) {
    const r = new ProtoReader(new ProtoWriter().uint(1, n, true).finish());
    assert.equal(r.next(), 1);
    assert.equal(r.varint(), n);
  }
  assert.throws(() => new ProtoWriter().uint(1, -1), /varint out of range/);
});
