import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Dag } from '../../../../src/scheduler/embedded/dag.js';

function dag(...ids: string[]): Dag<string> {
  const d = new Dag<string>();
  for (const id of ids) d.addVertex(id, id);
  return d;
}

test('refuses self-edges, duplicates, unknown vertices and cycles', () => {
  const d = dag('a', 'b', 'c');
  assert.equal(d.addEdge('a', 'a'), false);
  assert.equal(d.addEdge('a', 'b'), true);
  assert.equal(d.addEdge('a', 'b'), false);
  assert.equal(d.addEdge('a', 'x'), false);
  assert.equal(d.addEdge('b', 'c'), true);
  // c descends from a: c → a would close a cycle, as would b → a.
  assert.equal(d.canAddEdge('c', 'a'), false);
  assert.equal(d.canAddEdge('b', 'a'), false);
  assert.equal(d.canAddEdge('a', 'c'), true);
  assert.equal(d.inDegree('b'), 1);
  assert.equal(d.outDegree('a'), 1);
  assert.equal(d.inDegree('x'), undefined);
});

test('allowCycle: an edge that closes a cycle is added when the caller allows it; self-edges and duplicates never', () => {
  const d = dag('a', 'b');
  assert.equal(d.addEdge('a', 'b'), true);
  assert.equal(d.addEdge('b', 'a'), false);
  assert.equal(d.addEdge('b', 'a', true), true);
  assert.deepEqual(d.parents('a'), ['b']);
  assert.equal(d.addEdge('b', 'a', true), false);
  assert.equal(d.addEdge('a', 'a', true), false);
  // Reachability follows the cycle without looping.
  assert.equal(d.reachable('a', 'b'), true);
  assert.equal(d.reachable('b', 'a'), true);
});

test('no degree limit', () => {
  const d = dag('p');
  for (let i = 0; i < 100; i++) {
    d.addVertex(`c${i}`, `c${i}`);
    assert.ok(d.addEdge('p', `c${i}`));
  }
  assert.equal(d.outDegree('p'), 100);
});

test('deleteInEdges and deleteVertex report and remove the edges', () => {
  const d = dag('a', 'b', 'c');
  d.addEdge('a', 'c');
  d.addEdge('b', 'c');
  assert.deepEqual(d.deleteInEdges('c').sort(), ['a', 'b']);
  assert.equal(d.inDegree('c'), 0);
  assert.equal(d.outDegree('a'), 0);
  d.addEdge('a', 'c');
  d.addEdge('c', 'b');
  const removed = d.deleteVertex('c');
  assert.deepEqual(removed.sort(), [
    ['a', 'c'],
    ['c', 'b'],
  ]);
  assert.equal(d.has('c'), false);
  assert.equal(d.outDegree('a'), 0);
  assert.equal(d.inDegree('b'), 0);
  // Now that c is gone, b → a is fine.
  assert.equal(d.addEdge('b', 'a'), true);
});
