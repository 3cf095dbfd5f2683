// requestRateLimit / requestBufferSize for the gRPC servers: token bucket + bounded wait queue, with an injected
// clock and timers; and the handler wrapper (refusal as RESOURCE_EXHAUSTED, release when the call ends).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { ServiceDefinition, UntypedServiceImplementation } from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import { DfError } from '../../../src/core/errors.js';
import {
  limitImplementation,
  RequestLimiter,
  type CallGate,
} from '../../../src/daemon/grpc/request-limiter.js';

function fakeTime() {
  let t = 0;
  const timers: Array<{ at: number; fn: () => void }> = [];
  return {
    now: () => t,
    setTimer: (ms: number, fn: () => void) => {
      const timer = { at: t + ms, fn };
      timers.push(timer);
      return () => timers.splice(timers.indexOf(timer), 1);
    },
    advance(ms: number) {
      t += ms;
      for (;;) {
        const due = timers.filter((x) => x.at <= t).sort((a, b) => a.at - b.at)[0];
        if (!due) break;
        timers.splice(timers.indexOf(due), 1);
        due.fn();
      }
    },
  };
}

const never = new AbortController().signal;

test('calls within the rate pass at once; beyond it they wait up to requestBufferSize, then are refused', async () => {
  const clock = fakeTime();
  const registry = new Registry();
  const l = new RequestLimiter({
    server: 'dfdaemon download server',
    configKey: 'download.server',
    requestRateLimit: 2,
    requestBufferSize: 1,
    registry,
    metricLabel: 'download',
    now: clock.now,
    setTimer: clock.setTimer,
  });
  assert.equal(typeof l.admit(never), 'function');
  assert.equal(typeof l.admit(never), 'function');
  const waiting = l.admit(never);
  assert.ok(waiting instanceof Promise);
  assert.equal(l.waiting, 1);
  assert.throws(
    () => l.admit(never),
    (e: unknown) =>
      e instanceof DfError &&
      e.code === 'RESOURCE_EXHAUSTED' &&
      e.message.includes('more than 2 requests/s (download.server.requestRateLimit)') &&
      e.message.includes('download.server.requestBufferSize'),
  );
  let granted = false;
  void (waiting as Promise<unknown>).then(() => (granted = true));
  clock.advance(499);
  await Promise.resolve();
  assert.equal(granted, false);
  clock.advance(1);
  await Promise.resolve();
  assert.equal(granted, true);
  assert.equal(l.waiting, 0);
  assert.match(
    await registry.metrics(),
    /dragonfly_client_request_limit_rejected_total\{server="download"\} 1/,
  );
  // One second later the bucket is full again (burst = rate), no more.
  clock.advance(5000);
  assert.equal(typeof l.admit(never), 'function');
  assert.equal(typeof l.admit(never), 'function');
  assert.ok(l.admit(never) instanceof Promise);
});

test('requestBufferSize 0 refuses at once; requestRateLimit 0 is unlimited', () => {
  const clock = fakeTime();
  const strict = new RequestLimiter({
    server: 's',
    configKey: 'upload.server',
    requestRateLimit: 1,
    requestBufferSize: 0,
    now: clock.now,
    setTimer: clock.setTimer,
  });
  strict.admit(never);
  assert.throws(() => strict.admit(never), /upload\.server\.requestRateLimit/);
  const open = new RequestLimiter({ server: 's', configKey: 'x', requestRateLimit: 0, requestBufferSize: 0 });
  for (let i = 0; i < 10_000; i++) open.admit(never);
});

test('a waiting call that is cancelled leaves the queue', async () => {
  const clock = fakeTime();
  const l = new RequestLimiter({
    server: 's',
    configKey: 'download.server',
    requestRateLimit: 1,
    requestBufferSize: 1,
    now: clock.now,
    setTimer: clock.setTimer,
  });
  l.admit(never);
  const ac = new AbortController();
  const p = l.admit(ac.signal);
  assert.equal(l.waiting, 1);
  ac.abort();
  await p;
  assert.equal(l.waiting, 0);
  // The freed slot is usable.
  assert.ok(l.admit(never) instanceof Promise);
});

// A minimal fake of grpc-js's server call objects.
class FakeCall extends EventEmitter {
  request = {};
}

const definition = {
  Unary: { path: '/x/Unary', requestStream: false, responseStream: false },
  Stream: { path: '/x/Stream', requestStream: false, responseStream: true },
} as unknown as ServiceDefinition;

function countingGate() {
  const g = { inFlight: 0, refuse: false } as { inFlight: number; refuse: boolean } & CallGate;
  g.admit = () => {
    if (g.refuse)
      throw new DfError('RESOURCE_EXHAUSTED', 'dfdaemon download server: full (download.server.x)');
    g.inFlight += 1;
    let done = false;
    return () => {
      if (!done) g.inFlight -= 1;
      done = true;
    };
  };
  return g;
}

test('limitImplementation: unary calls hold the gate until they answer; refusals are RESOURCE_EXHAUSTED', () => {
  const gate = countingGate();
  let answer: ((err: null, v: unknown) => void) | undefined;
  const impl = {
    Unary: (_call: unknown, cb: (err: null, v: unknown) => void) => (answer = cb),
  } as unknown as UntypedServiceImplementation;
  const wrapped = limitImplementation(definition, impl, [gate]);
  const results: unknown[] = [];
  (wrapped.Unary as (c: unknown, cb: (...a: unknown[]) => void) => void)(new FakeCall(), (...a) =>
    results.push(a),
  );
  assert.equal(gate.inFlight, 1);
  answer!(null, { ok: 1 });
  assert.equal(gate.inFlight, 0);
  assert.deepEqual(results[0], [null, { ok: 1 }, undefined, undefined]);
  gate.refuse = true;
  (wrapped.Unary as (c: unknown, cb: (...a: unknown[]) => void) => void)(new FakeCall(), (...a) =>
    results.push(a),
  );
  const err = (results[1] as [{ code: number; details: string }])[0];
  assert.equal(err.code, 8);
  assert.match(err.details, /download\.server\.x/);
});

test('limitImplementation: streaming calls hold the gate until the stream ends or is cancelled', () => {
  const gate = countingGate();
  const impl = { Stream: () => undefined } as unknown as UntypedServiceImplementation;
  const wrapped = limitImplementation(definition, impl, [gate]);
  const a = new FakeCall();
  const b = new FakeCall();
  (wrapped.Stream as (c: unknown) => void)(a);
  (wrapped.Stream as (c: unknown) => void)(b);
  assert.equal(gate.inFlight, 2);
  a.emit('finish');
  a.emit('close');
  assert.equal(gate.inFlight, 1);
  b.emit('cancelled');
  assert.equal(gate.inFlight, 0);
  gate.refuse = true;
  const c = new FakeCall();
  const errors: Array<{ code: number }> = [];
  c.on('error', (e: { code: number }) => errors.push(e));
  (wrapped.Stream as (c: unknown) => void)(c);
  assert.equal(errors[0]?.code, 8);
});
