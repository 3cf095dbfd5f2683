import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DfError } from '../../../src/core/errors.js';
import { RetryPiece, TaskRun, type PieceEvent, type PieceSpec } from '../../../src/daemon/task-run.js';
import type { PieceRecord } from '../../../src/storage/storage.js';

const specs = (count: number, length = 4): PieceSpec[] =>
  Array.from({ length: count }, (_, i) => ({ number: i, offset: i * length, length }));

function record(p: PieceSpec): PieceRecord {
  const at = new Date(0);
  return {
    taskId: 'task',
    number: p.number,
    offset: p.offset,
    length: p.length,
    digest: `crc32:${p.number}`,
    trafficType: 0,
    costMs: 0,
    createdAt: at,
    updatedAt: at,
    finishedAt: at,
  };
}

/** A fetcher whose fetches finish when the test says so; it counts calls and in-flight fetches. */
class FakeFetcher {
  readonly calls: number[] = [];
  readonly signals: AbortSignal[] = [];
  inFlight = 0;
  maxInFlight = 0;
  private readonly pending = new Map<number, { resolve: () => void; reject: (e: unknown) => void }>();

  readonly fetch = (piece: PieceSpec, signal: AbortSignal): Promise<PieceRecord> => {
    this.calls.push(piece.number);
    this.signals.push(signal);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    return new Promise<PieceRecord>((resolve, reject) => {
      const done = (): void => {
        this.inFlight--;
        this.pending.delete(piece.number);
      };
      this.pending.set(piece.number, {
        resolve: () => {
          done();
          resolve(record(piece));
        },
        reject: (e) => {
          done();
          reject(e);
        },
      });
      signal.addEventListener('abort', () => this.pending.get(piece.number)?.reject(signal.reason), {
        once: true,
      });
    });
  };

  get waiting(): number[] {
    return [...this.pending.keys()].sort((a, b) => a - b);
  }

  resolve(n: number): void {
    const p = this.pending.get(n);
    assert.ok(p, `piece ${n} is not being fetched (in flight: ${this.waiting.join(',')})`);
    p.resolve();
  }

  reject(n: number, e: unknown): void {
    const p = this.pending.get(n);
    assert.ok(p, `piece ${n} is not being fetched`);
    p.reject(e);
  }
}

/** Lets the run's promise continuations (fetch completion, pump) happen. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function collect(run: TaskRun): PieceEvent[] {
  const events: PieceEvent[] = [];
  run.subscribe((ev) => events.push(ev));
  return events;
}

test('never more than concurrentPieceCount fetches in flight, and every wanted piece is fetched once', async () => {
  const run = new TaskRun('task', specs(20), [], 3);
  const f = new FakeFetcher();
  run.setFetcher(f.fetch);
  const events = collect(run);
  run.want(specs(20).map((p) => p.number));
  assert.equal(f.inFlight, 3);
  // Finish in-flight pieces in a scrambled order until all are done.
  let round = 0;
  while (!run.isFinished) {
    const w = f.waiting;
    assert.ok(w.length > 0 && w.length <= 3, `in flight: ${w.length}`);
    f.resolve(w[round++ % w.length]!);
    await settle();
  }
  assert.equal(f.maxInFlight, 3);
  assert.deepEqual(
    [...f.calls].sort((a, b) => a - b),
    specs(20).map((p) => p.number),
  );
  assert.equal(events.length, 20);
  assert.ok(events.every((e) => !e.error));
  assert.equal(run.finished.size, 20);
});

test('a concurrency below 1 is treated as 1', async () => {
  const run = new TaskRun('task', specs(3), [], 0);
  const f = new FakeFetcher();
  run.setFetcher(f.fetch);
  run.want([0, 1, 2]);
  assert.deepEqual(f.waiting, [0]);
  f.resolve(0);
  await settle();
  assert.deepEqual(f.waiting, [1]);
});

test('two wants of the same piece fetch it once and both see it finish', async () => {
  const run = new TaskRun('task', specs(2), [], 4);
  const f = new FakeFetcher();
  run.setFetcher(f.fetch);
  const a = collect(run);
  const b = collect(run);
  run.want([0]);
  run.want([0]);
  assert.deepEqual(f.calls, [0]);
  f.resolve(0);
  await settle();
  run.want([0]); // finished: nothing to fetch
  await settle();
  assert.deepEqual(f.calls, [0]);
  assert.equal(a[0]?.piece?.number, 0);
  assert.equal(b[0]?.piece?.number, 0);
});

test('pieces finished before the run started and unknown numbers are never fetched', async () => {
  const all = specs(3);
  const run = new TaskRun('task', all, [record(all[1]!)], 4);
  const f = new FakeFetcher();
  run.setFetcher(f.fetch);
  run.want([0, 1, 2, 7]);
  assert.deepEqual(f.calls, [0, 2]);
  assert.equal(run.isFinished, false);
  f.resolve(0);
  f.resolve(2);
  await settle();
  assert.equal(run.isFinished, true);
});

test('release drops queued pieces nobody wants; a piece another request still wants is fetched', async () => {
  const run = new TaskRun('task', specs(5), [], 1);
  const f = new FakeFetcher();
  run.setFetcher(f.fetch);
  const releaseA = run.want([0, 1, 2, 3, 4]);
  const releaseB = run.want([3]);
  assert.deepEqual(f.calls, [0]);
  releaseA();
  f.resolve(0); // the in-flight piece finishes and is kept
  await settle();
  assert.ok(run.finished.has(0));
  assert.deepEqual(f.calls, [0, 3], 'only the piece B still wants is fetched');
  releaseB();
  f.resolve(3);
  await settle();
  assert.deepEqual(f.calls, [0, 3]);
  assert.deepEqual([...run.finished.keys()].sort(), [0, 3]);

  // Wanting a released piece again queues it again.
  run.want([1]);
  assert.deepEqual(f.calls, [0, 3, 1]);
});

test('a failed piece notifies every listener with its error and can be wanted again', async () => {
  const run = new TaskRun('task', specs(2), [], 2);
  const f = new FakeFetcher();
  run.setFetcher(f.fetch);
  const a = collect(run);
  const b = collect(run);
  run.want([0, 1]);
  const err = new DfError('BACKEND', 'origin said 500', { retryable: true });
  f.reject(0, err);
  f.reject(1, new Error('socket hang up'));
  await settle();
  for (const events of [a, b]) {
    assert.equal(events.length, 2);
    const e0 = events.find((e) => e.error && e.number === 0);
    assert.equal(e0?.error, err, 'a DfError reaches listeners as it was thrown');
    const e1 = events.find((e) => e.error && e.number === 1);
    assert.ok(e1?.error instanceof DfError, 'other errors are wrapped');
    assert.match(e1.error.message, /piece 1.*socket hang up/);
  }
  assert.equal(run.finished.size, 0);
  run.want([0]);
  assert.deepEqual(f.calls, [0, 1, 0], 'a failed piece is fetched again when asked');
});

test('unsubscribe stops events', async () => {
  const run = new TaskRun('task', specs(1), [], 1);
  const f = new FakeFetcher();
  run.setFetcher(f.fetch);
  const events: PieceEvent[] = [];
  const unsubscribe = run.subscribe((ev) => events.push(ev));
  run.want([0]);
  unsubscribe();
  f.resolve(0);
  await settle();
  assert.deepEqual(events, []);
});

test('abort cancels in-flight fetches and starts no new ones', async () => {
  const run = new TaskRun('task', specs(6), [], 2);
  const f = new FakeFetcher();
  run.setFetcher(f.fetch);
  const events = collect(run);
  run.want([0, 1, 2, 3, 4, 5]);
  assert.deepEqual(f.calls, [0, 1]);
  const reason = new DfError('CANCELLED', 'task deleted');
  run.abort(reason);
  assert.ok(f.signals.every((s) => s.aborted));
  await settle();
  assert.deepEqual(f.calls, [0, 1], 'no fetch starts after abort');
  assert.equal(f.inFlight, 0);
  assert.equal(events.length, 6, 'every wanted piece ends with an error');
  assert.ok(events.every((e) => e.error?.code === 'CANCELLED'));
  // Later wants fail at once instead of fetching.
  run.want([0]);
  await settle();
  assert.deepEqual(f.calls, [0, 1]);
  assert.equal(events.length, 7);
});

test('the in-order source takes the lowest piece, and pieces an in-order consumer wants go first', async () => {
  const run = new TaskRun('task', specs(8), [], 2);
  const f = new FakeFetcher();
  run.setFetcher(f.fetch);
  const releaseAny = run.want([3, 2, 6, 7]);
  await settle();
  assert.deepEqual(f.calls, [2, 3], 'lowest queued first');
  const releaseOrdered = run.want([5, 4], { inOrder: true });
  f.resolve(2);
  await settle();
  assert.deepEqual(f.calls.slice(2), [4], 'the lowest piece an in-order consumer wants goes before piece 6');
  f.resolve(3);
  f.resolve(4);
  await settle();
  assert.deepEqual(f.calls.slice(3), [5, 6]);
  releaseOrdered();
  f.resolve(5);
  f.resolve(6);
  await settle();
  f.resolve(7);
  await settle();
  releaseAny();
});

test('a source decides what starts: nothing until it wakes the run; a RetryPiece puts the piece back quietly', async () => {
  const run = new TaskRun('task', specs(4), [], 4);
  const f = new FakeFetcher();
  const available = new Set<number>();
  let wake = (): void => undefined;
  let failOnce = true;
  run.setSource({
    onWake: (w) => (wake = w),
    next: (c) => {
      for (const n of c.queued) {
        if (!available.has(n)) continue;
        return {
          number: n,
          fetch: (piece, signal) => {
            if (piece.number === 1 && failOnce) {
              failOnce = false;
              return Promise.reject(new RetryPiece('parent failed'));
            }
            return f.fetch(piece, signal);
          },
        };
      }
      return undefined;
    },
  });
  const events: PieceEvent[] = [];
  run.subscribe((e) => events.push(e));
  const release = run.want([0, 1, 2, 3]);
  await settle();
  assert.deepEqual(f.calls, [], 'no piece is available yet');
  available.add(1);
  wake();
  await settle();
  assert.deepEqual(f.calls, [1], 'retried after RetryPiece, without an error event');
  assert.equal(events.length, 0);
  assert.deepEqual([...run.piecesInFlight], [1]);
  f.resolve(1);
  await settle();
  assert.equal(events.length, 1);
  assert.deepEqual([...run.piecesQueued].sort(), [0, 2, 3]);
  release();
  assert.equal(run.piecesQueued.size, 0, 'released pieces leave the queue');
});
