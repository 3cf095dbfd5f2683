import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatDuration, parseDuration } from '../../../src/core/humantime.js';
import { DfError } from '../../../src/core/errors.js';

const S = 1000;
const M = 60 * S;
const H = 60 * M;
const D = 24 * H;

test('the forms upstream configs use', () => {
  assert.equal(parseDuration('360s'), 360 * S);
  assert.equal(parseDuration('2h'), 2 * H);
  assert.equal(parseDuration('10m'), 10 * M);
  assert.equal(parseDuration('1d'), D);
  assert.equal(parseDuration('30d'), 30 * D);
  assert.equal(parseDuration('200ms'), 200);
  assert.equal(parseDuration('5m'), 5 * M);
  assert.equal(parseDuration('15m'), 15 * M);
  assert.equal(parseDuration('1w'), 7 * D);
});

test('long unit names and variants (humantime parse_duration)', () => {
  assert.equal(parseDuration('300sec'), 300 * S);
  assert.equal(parseDuration('300secs'), 300 * S);
  assert.equal(parseDuration('50seconds'), 50 * S);
  assert.equal(parseDuration('1second'), S);
  assert.equal(parseDuration('12min'), 12 * M);
  assert.equal(parseDuration('7minutes'), 7 * M);
  assert.equal(parseDuration('7hr'), 7 * H);
  assert.equal(parseDuration('24hours'), D);
  assert.equal(parseDuration('2days'), 2 * D);
  assert.equal(parseDuration('7weeks'), 49 * D);
  assert.equal(parseDuration('100wk'), 700 * D);
  assert.equal(parseDuration('1month'), 2_630_016 * S);
  assert.equal(parseDuration('12M'), 31_560_192 * S);
  assert.equal(parseDuration('1year'), 31_557_600 * S);
  assert.equal(parseDuration('31msec'), 31);
  assert.equal(parseDuration('31millis'), 31);
});

test('sub-millisecond units give fractional milliseconds', () => {
  assert.equal(parseDuration('500us'), 0.5);
  assert.equal(parseDuration('163µs'), 0.163);
  assert.equal(parseDuration('3usec'), 0.003);
  assert.equal(parseDuration('1000000ns'), 1);
});

test('compound durations, with or without spaces', () => {
  assert.equal(parseDuration('1h30m'), 90 * M);
  assert.equal(parseDuration('2h 37min'), 2 * H + 37 * M);
  assert.equal(parseDuration('2h 15m'), 2 * H + 15 * M);
  assert.equal(parseDuration('1d2h3m4s5ms'), D + 2 * H + 3 * M + 4 * S + 5);
  assert.equal(parseDuration(' 20 min 17 nsec '), 20 * M + 17e-6);
});

test('zero without a unit', () => {
  assert.equal(parseDuration('0'), 0);
  assert.equal(parseDuration(0), 0);
});

test('invalid durations throw INVALID_ARGUMENT naming the value and the expected form', () => {
  for (const bad of ['', '   ', 'abc', '360', '1.5h', '10 parsecs', '-1s', '5m3', 'h1', '1h+30m']) {
    assert.throws(
      () => parseDuration(bad),
      (e: unknown) =>
        e instanceof DfError &&
        e.code === 'INVALID_ARGUMENT' &&
        e.message.includes(JSON.stringify(bad)) &&
        e.message.includes('"360s"'),
      bad,
    );
  }
  // A bare number is ambiguous (seconds? milliseconds?); upstream refuses it too.
  assert.throws(() => parseDuration(360), DfError);
});

test('units are case-sensitive: m is minutes, M is months', () => {
  assert.equal(parseDuration('1m'), M);
  assert.notEqual(parseDuration('1M'), M);
  assert.throws(() => parseDuration('1S'), DfError);
});

test('formatDuration is compact and parses back', () => {
  assert.equal(formatDuration(0), '0s');
  assert.equal(formatDuration(360 * S), '6m');
  assert.equal(formatDuration(90 * M), '1h 30m');
  assert.equal(formatDuration(30 * D), '30d');
  assert.equal(formatDuration(1500), '1s 500ms');
  for (const ms of [1, 999, 61_001, 3 * H + 7, 30 * D + 1])
    assert.equal(parseDuration(formatDuration(ms)), ms);
});
