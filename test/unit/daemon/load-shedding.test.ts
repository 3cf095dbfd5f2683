// server.adaptiveRateLimit: BBR-style shedding with an injected sampler and clock (no real CPU load).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { DfError } from '../../../src/core/errors.js';
import { AdaptiveRateLimiter, processUsageSampler } from '../../../src/daemon/load-shedding.js';

const config = {
  bucketCount: 50,
  bucketInterval: 200,
  cpuThreshold: 80,
  memoryThreshold: 90,
  shedCooldown: 5000,
  collectInterval: 3000,
};

function setup(overrides: Partial<typeof config> = {}) {
  let t = 0;
  let usage = { cpuPercent: 10, memoryPercent: 10 };
  const registry = new Registry();
  const l = new AdaptiveRateLimiter({
    config: { ...config, ...overrides },
    sampler: () => usage,
    now: () => t,
    registry,
  });
  return {
    l,
    registry,
    advance: (ms: number) => (t += ms),
    setUsage: (u: typeof usage) => (usage = u),
  };
}

/** Completes `n` calls of `rt` ms each, all in one bucket. */
function traffic(s: ReturnType<typeof setup>, n: number, rt: number) {
  const releases = Array.from({ length: n }, () => s.l.admit('download'));
  s.advance(rt);
  for (const r of releases) r();
}

test('not overloaded: nothing is shed however many calls are in flight', async () => {
  const s = setup();
  await s.l.collect();
  traffic(s, 10, 10);
  s.advance(200);
  for (let i = 0; i < 1000; i++) s.l.admit('download');
  assert.equal(s.l.callsInFlight, 1000);
});

test('overloaded: calls beyond maxPass × minRt × buckets/s are shed, then everything for shedCooldown', async () => {
  const s = setup();
  await s.l.collect();
  // 10 calls of 100 ms complete in one 200 ms bucket: capacity 10 × 100 × 5 / 1000 = 5 in flight.
  traffic(s, 10, 100);
  s.advance(200);
  s.setUsage({ cpuPercent: 95, memoryPercent: 10 });
  await s.l.collect();
  assert.equal(s.l.isOverloaded, true);
  const held = Array.from({ length: 5 }, () => s.l.admit('download'));
  assert.throws(
    () => s.l.admit('upload'),
    (e: unknown) =>
      e instanceof DfError &&
      e.code === 'RESOURCE_EXHAUSTED' &&
      /overloaded.*cpu 95%.*server\.adaptiveRateLimit/.test(e.message),
  );
  for (const r of held) r();
  // Cooldown: shed even though in flight is 0 and the load is gone.
  s.setUsage({ cpuPercent: 10, memoryPercent: 10 });
  await s.l.collect();
  s.advance(4999);
  assert.throws(() => s.l.admit('download'), /overloaded/);
  s.advance(1);
  s.l.admit('download')();
  const text = await s.registry.metrics();
  assert.match(text, /dragonfly_client_adaptive_rate_limit_shed_total\{server="upload"\} 1/);
  assert.match(text, /dragonfly_client_adaptive_rate_limit_shed_total\{server="download"\} 1/);
  assert.match(text, /dragonfly_client_adaptive_rate_limit_overloaded 0/);
  assert.match(text, /dragonfly_client_adaptive_rate_limit_cpu_used_percent 10/);
});

test('memory over its threshold is overload; a threshold of 100 ignores that resource', async () => {
  const s = setup({ cpuThreshold: 100 });
  s.setUsage({ cpuPercent: 100, memoryPercent: 50 });
  await s.l.collect();
  assert.equal(s.l.isOverloaded, false);
  s.setUsage({ cpuPercent: 100, memoryPercent: 90 });
  await s.l.collect();
  assert.equal(s.l.isOverloaded, true);
});

test('overloaded with no completed calls in the window sheds nothing', async () => {
  const s = setup();
  s.setUsage({ cpuPercent: 99, memoryPercent: 99 });
  await s.l.collect();
  for (let i = 0; i < 100; i++) s.l.admit('download');
  // Buckets older than bucketCount × bucketInterval leave the window.
  const t = setup();
  await t.l.collect();
  traffic(t, 1, 1);
  t.advance(50 * 200 + 200);
  t.setUsage({ cpuPercent: 99, memoryPercent: 10 });
  await t.l.collect();
  for (let i = 0; i < 100; i++) t.l.admit('download');
});

test('the default sampler reports percentages', () => {
  const sample = processUsageSampler();
  const u = sample() as { cpuPercent: number; memoryPercent: number };
  assert.ok(u.cpuPercent >= 0 && u.cpuPercent <= 100);
  assert.ok(u.memoryPercent > 0 && u.memoryPercent <= 100);
});
