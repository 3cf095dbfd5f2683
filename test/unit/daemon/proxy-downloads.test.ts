// ProxyDownloads.prefetch: a background download of the whole task after a Range request, a few pieces at a time.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DfError } from '../../../src/core/errors.js';
import type { DownloadSessions } from '../../../src/daemon/download-session.js';
import { ProxyDownloads } from '../../../src/daemon/proxy-downloads.js';
import { Priority, TaskType, type Download } from '../../../src/gen/common.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** DownloadSessions whose one session fetches each piece in `fetchMs`, failing the numbers in `failing`. */
function fakeSessions(pieces: number, o: { fetchMs: number; failing: Set<number> }) {
  const events: string[] = [];
  const session = {
    taskId: 'p'.repeat(64),
    isFinished: false,
    interested: Array.from({ length: pieces }, (_, number) => ({ number, offset: number * 4, length: 4 })),
    finishedPiece: () => undefined,
    async *piecesOf(numbers: number[]) {
      const n = numbers[0]!;
      events.push(`start ${n}`);
      await sleep(o.fetchMs);
      if (o.failing.has(n)) {
        events.push(`fail ${n}`);
        throw new DfError('BACKEND', `piece ${n} failed`);
      }
      events.push(`done ${n}`);
      yield { piece: { number: n }, local: false };
    },
    complete: async () => void events.push('complete'),
    fail: () => void events.push('session failed'),
    release: () => void events.push('release'),
  };
  const sessions = { open: async () => session, taskManager: { storage: { content: {} } } };
  return { sessions: sessions as unknown as DownloadSessions, events };
}

const download = {
  url: 'http://h/x',
  type: TaskType.STANDARD,
  priority: Priority.LEVEL6,
  requestHeader: {},
} as unknown as Download;

describe('ProxyDownloads.prefetch', () => {
  test('a failed piece stops the other workers; the session is released after the last of them', async () => {
    const { sessions, events } = fakeSessions(20, { fetchMs: 20, failing: new Set([1]) });
    const warned: string[] = [];
    const p = new ProxyDownloads({
      sessions,
      prefetchLimiter: { acquire: async () => {} },
      concurrentPieceCount: 3,
      log: { info() {}, warn: (_o, m) => void warned.push(m) },
    });
    p.prefetch(download);
    const deadline = Date.now() + 3000;
    while (!events.includes('release') && Date.now() < deadline) await sleep(5);
    await sleep(100);
    assert.deepEqual(warned, ['prefetch failed']);
    const release = events.indexOf('release');
    assert.ok(release >= 0, events.join(', '));
    assert.equal(release, events.length - 1, `nothing after release: ${events.join(', ')}`);
    const failed = events.indexOf('fail 1');
    assert.deepEqual(
      events.slice(failed).filter((e) => e.startsWith('start')),
      [],
      `no piece is started after the failure: ${events.join(', ')}`,
    );
    assert.ok(events.includes('session failed'));
    assert.ok(!events.includes('complete'));
  });

  test('without failures every missing piece is fetched once, then the task completes', async () => {
    const { sessions, events } = fakeSessions(10, { fetchMs: 1, failing: new Set() });
    const p = new ProxyDownloads({
      sessions,
      prefetchLimiter: { acquire: async () => {} },
      concurrentPieceCount: 4,
      log: { info() {}, warn() {} },
    });
    p.prefetch(download);
    const deadline = Date.now() + 3000;
    while (!events.includes('release') && Date.now() < deadline) await sleep(5);
    const done = events.filter((e) => e.startsWith('done')).sort();
    assert.equal(done.length, 10);
    assert.equal(new Set(done).size, 10);
    assert.deepEqual(events.slice(-2), ['complete', 'release']);
  });
});
