import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KeyedTurns } from '../../../src/core/keyed-turns.js';

/** A promise with its resolve and reject. */
function deferred<T = void>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const tick = () => new Promise<void>((r) => setImmediate(r));

test('turns of one key run one at a time, in the order asked', async () => {
  const turns = new KeyedTurns<string>();
  const log: string[] = [];
  const first = deferred();
  const second = deferred();
  const a = turns.run('t', async () => {
    log.push('a start');
    await first.promise;
    log.push('a end');
    return 'a';
  });
  const b = turns.run('t', async () => {
    log.push('b start');
    await second.promise;
    log.push('b end');
    return 'b';
  });
  await tick();
  assert.deepEqual(log, ['a start'], 'b waits while a runs');
  first.resolve();
  assert.equal(await a, 'a');
  await tick();
  assert.deepEqual(log, ['a start', 'a end', 'b start']);
  second.resolve();
  assert.equal(await b, 'b');
  await tick();
  assert.equal(turns.size, 0, 'a key with nothing waiting is forgotten');
});

test('a failed turn rejects its caller and lets the next one run', async () => {
  const turns = new KeyedTurns<string>();
  const a = turns.run('t', () => Promise.reject(new Error('disk full')));
  const b = turns.run('t', () => Promise.resolve(2));
  await assert.rejects(a, /disk full/);
  assert.equal(await b, 2);
});

test('turns of different keys run at the same time', async () => {
  const turns = new KeyedTurns<string>();
  const gate = deferred();
  const started: string[] = [];
  const a = turns.run('x', async () => {
    started.push('x');
    await gate.promise;
  });
  const b = turns.run('y', async () => {
    started.push('y');
    await gate.promise;
  });
  await tick();
  assert.deepEqual(started.sort(), ['x', 'y']);
  assert.equal(turns.size, 2);
  gate.resolve();
  await Promise.all([a, b]);
  await tick();
  assert.equal(turns.size, 0);
});
