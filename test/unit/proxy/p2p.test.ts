// Serving a P2P session into an HTTP response (streamSession) and the error answers of failed downloads.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DfError } from '../../../src/core/errors.js';
import { Priority, TaskType } from '../../../src/gen/common.js';
import { downloadErrorAnswer, streamSession, type P2PPiece } from '../../../src/proxy/p2p.js';
import { FakeDownloader, get } from './proxy-harness.js';

const content = Buffer.from(Array.from({ length: 1000 }, (_, i) => i & 0xff));

async function session(o: ConstructorParameters<typeof FakeDownloader>[1]) {
  const d = new FakeDownloader(content, o);
  return d.open(
    { url: 'http://h/x', type: TaskType.STANDARD, priority: Priority.LEVEL6 } as never,
    new AbortController().signal,
  );
}

/** Serves one streamSession answer and reports what was left on the response afterwards. */
async function serve(
  o: ConstructorParameters<typeof FakeDownloader>[1],
  range?: { start: number; length: number },
) {
  const left: { close: number; error: number; drain: number }[] = [];
  const s = createServer((_req, res: ServerResponse) => {
    void (async () => {
      const sess = await session(o);
      if (range) sess.selectRange(range);
      await streamSession(res, sess, { serverIp: '127.0.0.1', range });
      left.push({
        close: res.listenerCount('close'),
        error: res.listenerCount('error'),
        drain: res.listenerCount('drain'),
      });
    })();
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  try {
    const a = await get((s.address() as AddressInfo).port, '/');
    return { a, left: left[0]! };
  } finally {
    s.closeAllConnections();
    s.close();
  }
}

describe('streamSession', () => {
  test('pieces in any order come out as the content, in order', async () => {
    for (const order of [undefined, (p: P2PPiece[]) => [...p].reverse()]) {
      const { a } = await serve({ pieceLength: 7, order });
      assert.equal(a.status, 200);
      assert.equal(a.headers['content-length'], '1000');
      assert.ok(a.body.equals(content));
      const r = await serve({ pieceLength: 7, order }, { start: 5, length: 990 });
      assert.equal(r.a.status, 206);
      assert.equal(r.a.headers['content-range'], 'bytes 5-994/1000');
      assert.ok(r.a.body.equals(content.subarray(5, 995)));
    }
  });

  test('no listeners pile up on the response, one piece after another', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.name);
    process.on('warning', onWarning);
    try {
      const { a, left } = await serve({ pieceLength: 4 }); // 250 pieces
      assert.ok(a.body.equals(content));
      assert.ok(left.close <= 3 && left.error <= 3 && left.drain <= 1, JSON.stringify(left));
      await new Promise((r) => setImmediate(r));
      assert.deepEqual(
        warnings.filter((w) => w === 'MaxListenersExceededWarning'),
        [],
      );
    } finally {
      process.off('warning', onWarning);
    }
  });
});

describe('downloadErrorAnswer', () => {
  const backend = (statusCode: number | undefined, header: Record<string, string> = {}) =>
    new DfError('BACKEND', 'backend error', { backend: { statusCode, header, message: 'x' } });

  test('the block list is 403 proxy; an error without an origin answer is 500 dfdaemon', () => {
    assert.deepEqual(downloadErrorAnswer(new DfError('PERMISSION_DENIED', 'blocked')), {
      type: 'proxy',
      status: 403,
      headers: {},
    });
    assert.deepEqual(downloadErrorAnswer(new DfError('INTERNAL', 'x')), {
      type: 'dfdaemon',
      status: 500,
      headers: {},
    });
  });

  test("an origin's error status and headers are kept, without its body framing", () => {
    const a = downloadErrorAnswer(
      backend(404, {
        'x-origin': 'o',
        'content-length': '9',
        'Content-Range': 'bytes */9',
        'content-encoding': 'gzip',
      }),
    );
    assert.deepEqual(a, { type: 'backend', status: 404, headers: { 'x-origin': 'o' } });
    assert.equal(downloadErrorAnswer(backend(503)).status, 503);
    assert.equal(downloadErrorAnswer(backend(undefined)).status, 500);
    assert.equal(downloadErrorAnswer(backend(200)).status, 500, 'a success is no error status');
  });

  test('a 304 of a conditional request is passed on, as upstream does (not turned into a 500)', () => {
    const a = downloadErrorAnswer(backend(304, { etag: '"v1"' }));
    assert.deepEqual(a, { type: 'backend', status: 304, headers: { etag: '"v1"' } });
  });
});
