// A source piece through the piece path (src/daemon/piece-path.ts fromSource) from a real Node origin with Range,
// into real storage, watched as source-flights.ts watches it: the request, the body's start with its length, and
// the running byte count up to the piece's length, in that order; a body that breaks off and is retried is watched
// again from its new request.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { createHash } from 'node:crypto';
import { rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { BackendFactory } from '../../../src/backend/factory.js';
import { DaemonMetrics } from '../../../src/daemon/metrics.js';
import { PiecePath, type SourceBodyWatch } from '../../../src/daemon/piece-path.js';
import { Storage } from '../../../src/storage/storage.js';
import { tempDir } from '../../helpers/daemon.js';

const PIECE = 256 * 1024;
const DATA = Buffer.alloc(2 * PIECE);
for (let i = 0; i < DATA.length; i++) DATA[i] = (i * 7 + (i >>> 11)) & 0xff;
const quiet = { warn() {} };

let origin: Server;
let url: string;
/** Requests seen; the first `breakFirst` of them send half their body and cut the connection. */
let requests = 0;
let breakFirst = 0;
let dir: string;
let storage: Storage;
let backends: BackendFactory;
let path: PiecePath;

before(async () => {
  origin = createServer((req, res) => {
    requests++;
    const m = /bytes=(\d+)-(\d+)/.exec(req.headers.range ?? '');
    const [start, end] = m ? [Number(m[1]), Number(m[2])] : [0, DATA.length - 1];
    res.writeHead(206, {
      'content-length': end - start + 1,
      'content-range': `bytes ${start}-${end}/${DATA.length}`,
    });
    if (requests <= breakFirst) {
      res.write(DATA.subarray(start, start + (end - start + 1) / 2), () => res.destroy());
      return;
    }
    // In several writes, so the body arrives in several chunks.
    for (let at = start; at <= end; at += 32 * 1024)
      res.write(DATA.subarray(at, Math.min(end + 1, at + 32 * 1024)));
    res.end();
  });
  origin.listen(0, '127.0.0.1');
  await new Promise((r) => origin.once('listening', r));
  url = `http://127.0.0.1:${(origin.address() as AddressInfo).port}/file.bin`;
  dir = tempDir('dft-source-watch-');
  storage = await Storage.open({ dir, keep: true, writeBufferSize: 64 * 1024, readBufferSize: 64 * 1024 });
  backends = new BackendFactory({
    maxRetries: 0,
    requestHeader: {},
    enableCacheTemporaryRedirect: false,
    cacheTemporaryRedirectTTLMs: 0,
  });
  path = new PiecePath({
    storage,
    backends,
    metrics: new DaemonMetrics({ gitVersion: 't', gitCommit: '', buildTime: '' }),
    pieceTimeoutMs: 10_000,
    maxRetries: 1,
    log: quiet,
  });
});

after(async () => {
  await backends.close();
  storage.close();
  origin.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A watch that records what it hears. */
function recorder(): { watch: SourceBodyWatch; events: string[]; totals: number[][] } {
  const events: string[] = [];
  /** The running totals heard, one list per request. */
  const totals: number[][] = [];
  return {
    events,
    totals,
    watch: {
      requested: () => {
        events.push('requested');
        totals.push([]);
      },
      bodyBegan: (length) => events.push(`began ${length}`),
      progress: (total) => {
        if (events.at(-1) !== 'progress') events.push('progress');
        totals.at(-1)!.push(total);
      },
    },
  };
}

async function task(): Promise<string> {
  const id = createHash('sha256').update(`source-watch-${process.pid}-${Math.random()}`).digest('hex');
  await storage.prepareTask(id, { contentLength: DATA.length, pieceLength: PIECE, responseHeader: {} });
  return id;
}

/** Piece `number` of a new task from the origin, watched; the origin breaks off its first `breaks` bodies. */
async function fetchWatched(number: number, breaks: number): Promise<ReturnType<typeof recorder>> {
  const taskId = await task();
  const r = recorder();
  requests = 0;
  breakFirst = breaks;
  const piece = { number, offset: number * PIECE, length: PIECE };
  const record = await path.fromSource(
    { taskId, url, requestHeader: {} },
    piece,
    new AbortController().signal,
    r.watch,
  );
  assert.equal(record.length, PIECE);
  return r;
}

test('the watch hears the request, the body with its length, then its bytes arrive up to the length', async () => {
  const r = await fetchWatched(1, 0);
  assert.deepEqual(r.events, ['requested', `began ${PIECE}`, 'progress']);
  const totals = r.totals[0]!;
  assert.ok(totals.length > 1, `several chunks (${totals.length})`);
  assert.ok(
    totals.every((t, i) => i === 0 || t > totals[i - 1]!),
    'a running total',
  );
  assert.equal(totals.at(-1), PIECE);
});

test('a body that breaks off is retried: the watch hears the new request and the body again from 0', async () => {
  const r = await fetchWatched(0, 1);
  assert.equal(requests, 2);
  assert.deepEqual(r.events, [
    'requested',
    `began ${PIECE}`,
    'progress',
    'requested',
    `began ${PIECE}`,
    'progress',
  ]);
  const [broken, retried] = r.totals;
  assert.ok(broken!.length === 0 || broken!.at(-1)! < PIECE, `the first body broke off at ${broken!.at(-1)}`);
  assert.equal(retried!.at(-1), PIECE, 'the retry counts from its own start up to the length');
});
