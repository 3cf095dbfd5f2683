// The upload pace (src/daemon/upload-pace.ts): bodies sent at once follow the time one piece takes alone.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UploadPace } from '../../../src/daemon/upload-pace.js';

const MIB = 1024 * 1024;

test('two at once before anything is measured', () => {
  assert.equal(new UploadPace().slots(4 * MIB), 2);
});

test('a slow uplink (4 MiB alone in 3.4 s, 10 Mbit/s) sends one piece at a time', () => {
  const pace = new UploadPace();
  pace.observe(4 * MIB, 13_400, 4); // four at once, each 13.4 s: 3.35 s alone
  assert.equal(pace.slots(4 * MIB), 1);
  pace.observe(4 * MIB, 3_400, 1); // one at a time it stays one: the time alone does not shrink
  assert.equal(pace.slots(4 * MIB), 1);
  assert.equal(pace.slots(MIB / 4), 4, 'a small piece is short even on this link');
});

test('a fast uplink (4 MiB alone in 0.34 s, 100 Mbit/s) sends four at once; in between, two', () => {
  const fast = new UploadPace();
  fast.observe(4 * MIB, 340, 1);
  assert.equal(fast.slots(4 * MIB), 4);
  const middle = new UploadPace();
  middle.observe(4 * MIB, 2_400, 2); // 1.2 s alone
  assert.equal(middle.slots(4 * MIB), 2);
});

test('empty or instant samples are ignored', () => {
  const pace = new UploadPace();
  pace.observe(0, 100, 1);
  pace.observe(4 * MIB, 0, 1);
  assert.equal(pace.slots(4 * MIB), 2);
});
