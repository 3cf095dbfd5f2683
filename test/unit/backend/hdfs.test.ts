// HdfsBackend against a Node WebHDFS server of the documented REST API (test/helpers/webhdfs-server.ts) that checks
// a delegation token: stat, a ranged piece through the DataNode redirect, the token on every call, listing, the
// errors a user sees (missing path, refused token, a directory where a file is needed), a file rewritten between
// the stat and a piece, a DataNode that sends too few bytes, and NameNode answers that are not WebHDFS JSON.

import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { HdfsBackend } from '../../../src/backend/hdfs.js';
import type { GetRequest, StatRequest } from '../../../src/backend/backend.js';
import { validatorOf } from '../../../src/core/validator.js';
import { WebHdfsServer } from '../../helpers/webhdfs-server.js';

const OPTIONS = {
  maxRetries: 0,
  enableCacheTemporaryRedirect: false,
  cacheTemporaryRedirectTTLMs: 0,
  requestHeader: {},
};
const TOKEN = 'HAAEcm9vdARyb290AIoBk-token';

async function readAll(body: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(c);
  return Buffer.concat(chunks);
}

describe('HdfsBackend', () => {
  const server = new WebHdfsServer(TOKEN);
  const backend = new HdfsBackend('hdfs', OPTIONS);
  const data = randomBytes(300_000);
  const url = (path: string) => `hdfs://${server.namenode}${path}`;
  const stat = (path: string, token = TOKEN): StatRequest => ({
    taskId: 't',
    url: url(path),
    requestHeader: {},
    timeoutMs: 5000,
    hdfs: { delegationToken: token },
  });
  const piece = (
    path: string,
    start: number,
    length: number,
    extra: Partial<GetRequest> = {},
  ): GetRequest => ({
    ...stat(path),
    pieceNumber: 1,
    range: { start, length },
    ...extra,
  });

  before(async () => {
    await server.start();
    server.put('/data/model.bin', data);
    server.put('/data/sub/deep/x.json', Buffer.from('{}'));
    server.put('/data/sub/y.txt', Buffer.from('y'));
  });

  after(async () => {
    await backend.close();
    await server.stop();
  });

  beforeEach(() => {
    server.requests.length = 0;
    server.answer = undefined;
    server.beforeRequest = undefined;
  });

  it('stat gives the length and a version; a piece is the exact range, the token on every request', async () => {
    const s = await backend.stat(stat('/data/model.bin'));
    assert.equal(s.contentLength, data.length);
    assert.equal(s.responseHeader['content-length'], String(data.length));
    assert.match(s.responseHeader.etag!, /^"hdfs-\d+-300000-\d+"$/);
    assert.ok(s.responseHeader['last-modified']);

    const validator = validatorOf(s.responseHeader);
    const res = await backend.get(piece('/data/model.bin', 100_000, 65_536, { validator }));
    assert.deepEqual(await readAll(res.body), data.subarray(100_000, 165_536));
    assert.deepEqual(
      server.requests.map((r) => [r.node, r.op, r.offset, r.length, r.delegation]),
      [
        ['namenode', 'GETFILESTATUS', undefined, undefined, TOKEN],
        ['namenode', 'OPEN', 100_000, 65_536, TOKEN],
        ['datanode', 'OPEN', 100_000, 65_536, TOKEN],
        // After the last byte: the file must still be the version the task started with.
        ['namenode', 'GETFILESTATUS', undefined, undefined, TOKEN],
      ],
    );
  });

  it('a wrong token is PERMISSION_DENIED naming hdfs and the flag, never the token', async () => {
    await assert.rejects(
      backend.stat(stat('/data/model.bin', 'stolen-or-expired')),
      (e: Error & { code?: string }) => {
        assert.equal(e.code, 'PERMISSION_DENIED');
        assert.equal(
          e.message,
          `stat hdfs://${server.namenode}/data/model.bin: permission denied by hdfs (HTTP 403): check --hdfs-delegation-token and the file's permissions`,
        );
        return true;
      },
    );
  });

  it('a missing path is NOT_FOUND; a directory where a file is needed, and the reverse, are refused', async () => {
    await assert.rejects(
      backend.stat(stat('/no/such.bin')),
      (e: Error & { code?: string; backend?: { statusCode?: number } }) =>
        e.code === 'BACKEND' &&
        e.backend?.statusCode === 404 &&
        e.message ===
          `stat hdfs://${server.namenode}/no/such.bin: NOT_FOUND: no such file or directory in hdfs (HTTP 404)`,
    );
    await assert.rejects(
      backend.get(piece('/no/such.bin', 0, 10)),
      /read piece 1 of hdfs:\/\/.*\/no\/such\.bin: NOT_FOUND/,
    );
    await assert.rejects(
      backend.stat(stat('/data/sub')),
      /^DfError: hdfs:\/\/.*\/data\/sub is a directory, not a file: download a directory with dfget --recursive$/,
    );
    await assert.rejects(
      backend.stat(stat('/data/')),
      /is a directory \(the URL ends with \/\): download it with dfget --recursive/,
    );
    await assert.rejects(
      backend.listEntries(stat('/data/model.bin')),
      /is not a directory: a listed URL ends with \//,
    );
    await assert.rejects(
      backend.listEntries(stat('/data/model.bin/')),
      /is a file, not a directory: download it without --recursive/,
    );
  });

  it('lists a directory level by level: files with their length, directories ending in /', async () => {
    const entries = await backend.listEntries(stat('/data/'));
    const byUrl = entries.map((e) => [e.url, e.contentLength, e.isDir]).sort();
    assert.deepEqual(byUrl, [
      [url('/data/model.bin'), data.length, false],
      [url('/data/sub/'), 0, true],
      [url('/data/sub/deep/'), 0, true],
      [url('/data/sub/deep/x.json'), 2, false],
      [url('/data/sub/y.txt'), 1, false],
    ]);
    assert.ok(server.requests.every((r) => r.op === 'LISTSTATUS' && r.delegation === TOKEN));
  });

  it('a file rewritten after the stat fails the piece with SOURCE_CHANGED, even at the same length', async () => {
    server.put('/data/changing.bin', randomBytes(4096));
    const validator = validatorOf((await backend.stat(stat('/data/changing.bin'))).responseHeader);
    server.put('/data/changing.bin', randomBytes(4096));
    const res = await backend.get(piece('/data/changing.bin', 0, 4096, { validator }));
    await assert.rejects(
      readAll(res.body),
      (e: Error & { code?: string }) =>
        e.code === 'SOURCE_CHANGED' &&
        /^source changed during the download: hdfs:\/\/.*\/data\/changing\.bin is no longer the version the task started with \(ETag "hdfs-/.test(
          e.message,
        ),
    );
  });

  it('a file deleted while its piece is read fails the piece with SOURCE_CHANGED', async () => {
    const bytes = randomBytes(4096);
    server.put('/data/deleted.bin', bytes);
    const validator = validatorOf((await backend.stat(stat('/data/deleted.bin'))).responseHeader);
    server.answer = (r, res) => {
      if (r.node !== 'datanode') return false;
      server.delete('/data/deleted.bin');
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': bytes.length });
      res.end(bytes);
      return true;
    };
    const res = await backend.get(piece('/data/deleted.bin', 0, 4096, { validator }));
    await assert.rejects(
      readAll(res.body),
      (e: Error & { code?: string }) =>
        e.code === 'SOURCE_CHANGED' && /\(the file was deleted\)$/.test(e.message),
    );
  });

  it('a DataNode that sends fewer bytes than asked fails the piece (retryable), not a short piece', async () => {
    server.answer = (r, res) => {
      if (r.node !== 'datanode') return false;
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.end(data.subarray(0, 1000));
      return true;
    };
    const validator = validatorOf((await backend.stat(stat('/data/model.bin'))).responseHeader);
    const res = await backend.get(piece('/data/model.bin', 0, 4096, { validator }));
    await assert.rejects(
      readAll(res.body),
      (e: Error & { code?: string; retryable?: boolean }) =>
        e.code === 'BACKEND' &&
        e.retryable === true &&
        /the DataNode sent 1000 of 4096 bytes/.test(e.message),
    );
  });

  it('NameNode answers that are not WebHDFS JSON, or name an entry outside its directory, are one BACKEND line', async () => {
    const answers: [string, string, RegExp][] = [
      [
        'GETFILESTATUS',
        '<html>a login page</html>',
        /^stat hdfs:\/\/.*: the NameNode's answer is not WebHDFS JSON \(Unexpected token/,
      ],
      [
        'GETFILESTATUS',
        '{"FileStatus":{"type":"FILE","length":-1}}',
        /not WebHDFS JSON \(a FileStatus has length -1\)/,
      ],
      [
        'LISTSTATUS',
        '{"FileStatuses":{}}',
        /^list hdfs:\/\/.*: the NameNode's answer is not WebHDFS JSON \(the answer has no FileStatuses\.FileStatus list\)$/,
      ],
      [
        'LISTSTATUS',
        '{"FileStatuses":{"FileStatus":[{"pathSuffix":"..","type":"FILE","length":1,"modificationTime":1}]}}',
        /a FileStatus has pathSuffix "\.\."/,
      ],
    ];
    for (const [op, body, message] of answers) {
      server.answer = (r, res) => {
        if (r.op !== op) return false;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(body);
        return true;
      };
      const call =
        op === 'LISTSTATUS' ? backend.listEntries(stat('/data/')) : backend.stat(stat('/data/model.bin'));
      await assert.rejects(
        call,
        (e: Error & { code?: string }) => e.code === 'BACKEND' && message.test(e.message),
        body,
      );
    }
  });
});
