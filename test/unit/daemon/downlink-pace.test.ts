// The downlink pace (src/daemon/downlink-pace.ts): parent bodies received at once follow the time one piece takes
// at the rate the downlink carried, judged from each body's rate × the bodies received alongside it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DownlinkPace } from '../../../src/daemon/downlink-pace.js';

const MIB = 1024 * 1024;

/**
 * A pace on a clock the test moves: `at` sets the clock; `bodies` receives that many 4 MiB bodies side by side,
 * all ending `ms` later.
 */
function paced(): {
  pace: DownlinkPace;
  at: (ms: number) => void;
  bodies: (company: number, ms: number) => void;
} {
  let t = 0;
  const pace = new DownlinkPace(() => t);
  const bodies = (company: number, ms: number): void => {
    const receiving = Array.from({ length: company }, () => pace.began());
    t += ms;
    for (const b of receiving) b.ended(4 * MIB);
  };
  return { pace, at: (ms) => (t = ms), bodies };
}

test('one body before anything was measured; a request waits half a second for its body before making room', () => {
  const pace = new DownlinkPace();
  assert.equal(pace.limit(4 * MIB), 1);
  assert.equal(pace.patienceMs(4 * MIB), 500);
});

test('a request may wait a piece’s time at the measured rate, at most half a second', () => {
  const { pace, at } = paced();
  const b = pace.began();
  at(300);
  b.ended(4 * MIB);
  assert.equal(Math.round(pace.patienceMs(4 * MIB)), 300);
  const { pace: slow, bodies } = paced();
  bodies(1, 3_400);
  assert.equal(slow.patienceMs(4 * MIB), 500);
});

test('a slow downlink shared by three bodies (10 Mbit/s) takes one body at a time', () => {
  const { pace, at } = paced();
  // Three 4 MiB bodies side by side, each at a third of 10 Mbit/s: 10 s each; the link carried 4 MiB per 3.4 s.
  const bodies = [pace.began(), pace.began(), pace.began()];
  assert.equal(pace.receiving, 3);
  at(10_000);
  for (const b of bodies) b.ended(4 * MIB);
  assert.equal(pace.receiving, 0);
  assert.equal(pace.limit(4 * MIB), 1);
  assert.equal(pace.limit(MIB / 8), Infinity, 'a small piece is short even on this link');
});

test('bodies that each ran at their parent’s pace show a fast downlink: no limit', () => {
  const { pace, at } = paced();
  // Eight bodies at once, each at 10 Mbit/s (slow parents): the downlink carried 80 Mbit/s.
  const bodies = Array.from({ length: 8 }, () => pace.began());
  at(3_400);
  for (const b of bodies) b.ended(4 * MIB);
  assert.equal(pace.limit(4 * MIB), Infinity);
});

test('in between (a piece in 0.8-2 s at the downlink rate), two at once', () => {
  const { pace, at } = paced();
  const b = pace.began();
  at(1_200);
  b.ended(4 * MIB);
  assert.equal(pace.limit(4 * MIB), 2);
});

test('a body alone for part of its time counts its company by time', () => {
  const { pace, at } = paced();
  const long = pace.began();
  at(1_000);
  const short = pace.began(); // alongside `long` from 1 s to 2 s
  at(2_000);
  short.ended(); // failed: no sample
  at(4_000);
  // `long`: 4 MiB in 4 s, with company 1 for 3 s and 2 for 1 s → 1.25 on average: the link carried 4 MiB per 3.2 s.
  long.ended(4 * MIB);
  assert.equal(pace.limit(4 * MIB), 1);
  const { pace: alone, at: atAlone } = paced();
  const only = alone.began();
  atAlone(1_700); // 4 MiB in 1.7 s alone: two at once
  only.ended(4 * MIB);
  assert.equal(alone.limit(4 * MIB), 2);
});

test('every few bodies under a limit one more is let through, and a downlink faster than it looked is found', () => {
  const { pace, bodies } = paced();
  bodies(1, 3_400); // one slow parent first: the link looks like 10 Mbit/s
  assert.equal(pace.limit(4 * MIB), 1);
  for (let i = 0; i < 7; i++) bodies(1, 3_400);
  assert.equal(pace.limit(4 * MIB), 2, 'the probe is due after eight bodies');
  pace.starting(1, 4 * MIB); // the probe starts beside one out
  assert.equal(pace.limit(4 * MIB), 1, 'one probe, then the limit again');
  pace.starting(0, 4 * MIB); // a request within the limit is not a probe
  // The probe's two bodies each kept the rate one had alone: the downlink has room, no limit.
  bodies(2, 3_400);
  assert.equal(pace.limit(4 * MIB), Infinity);
});

test('bodies that share a slow downlink keep the limit when probed', () => {
  const { pace, bodies } = paced();
  for (let i = 0; i < 8; i++) bodies(1, 3_400);
  assert.equal(pace.limit(4 * MIB), 2);
  pace.starting(1, 4 * MIB);
  bodies(2, 6_800); // the probe: two at once, each at half the rate
  assert.equal(pace.limit(4 * MIB), 1);
});

test('a failed or repeated end changes nothing', () => {
  const { pace, at } = paced();
  const b = pace.began();
  at(100);
  b.ended();
  b.ended(4 * MIB);
  assert.equal(pace.receiving, 0);
  assert.equal(pace.patienceMs(4 * MIB), 500, 'still unmeasured');
});
