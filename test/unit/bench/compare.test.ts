// The modes of a swarm side by side (bench/p2p/compare.ts): medians per mode and ours ÷ theirs, from results
// shaped as bench/p2p/run.ts returns them.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compareModes, ratioRows } from '../../../bench/p2p/compare.js';
import type { DaemonKind } from '../../../bench/p2p/modes.js';
import type { HostResult, RepeatResult, ScenarioResult } from '../../../bench/p2p/run.js';

/** A host as run.ts reports it; only what the comparison reads is set. */
function host(kind: DaemonKind, role: 'seed' | 'peer', seconds: number, cpuS: number): HostResult {
  return {
    kind,
    role,
    seconds,
    cpuS,
    peakRssMiB: kind === 'ours' ? 150 : 100,
    pieces: { fromSeed: role === 'peer' ? 0.5 : 0, fromPeers: role === 'peer' ? 0.5 : 0, fromSource: 0 },
  } as unknown as HostResult;
}

function repeat(hosts: HostResult[], slowestS: number, ok = true): RepeatResult {
  const peers = hosts.filter((h) => h.role === 'peer').map((h) => h.seconds);
  return {
    hosts,
    allOk: ok,
    slowestS,
    medianS: peers.sort((a, b) => a - b)[peers.length >> 1]!,
    boundRaw: { seconds: 10 },
    originPerFile: 1,
    seedUploadPerFile: hosts[0]!.kind === 'rust' ? 3 : 1,
    cpu: { machineShare: 0.9 },
  } as unknown as RepeatResult;
}

function result(mode: string, repeats: RepeatResult[], error?: string): ScenarioResult {
  return {
    scenario: { name: '8x256M' },
    mode,
    kinds: [],
    hosts: 4,
    durationS: 1,
    repeats,
    timelines: [],
    error,
  } as unknown as ScenarioResult;
}

test('per mode the medians over its repeats; all-ours ÷ all-Rust and, in a mixed run, ours ÷ Rust', () => {
  const ours = result('ours', [
    repeat([host('ours', 'seed', NaN, 2), host('ours', 'peer', 12, 1), host('ours', 'peer', 14, 1)], 14),
    repeat([host('ours', 'seed', NaN, 2), host('ours', 'peer', 10, 1), host('ours', 'peer', 12, 1)], 12),
  ]);
  const rust = result('rust', [
    repeat([host('rust', 'seed', NaN, 1), host('rust', 'peer', 20, 0.5), host('rust', 'peer', 24, 0.5)], 24),
  ]);
  const mixed = result('mixed', [
    repeat(
      [host('ours', 'seed', NaN, 2), host('rust', 'peer', 15, 0.5), host('ours', 'peer', 11, 1)],
      15,
      false,
    ),
  ]);
  const [c] = compareModes([ours, rust, mixed]);
  assert.equal(c!.scenario, '8x256M');
  const [o, r, m] = c!.stats;
  assert.equal(o!.slowestS, 13);
  assert.ok(Math.abs(o!.slowestPerBound - 1.3) < 1e-9, String(o!.slowestPerBound));
  assert.equal(o!.ok, 2);
  assert.equal(o!.cpuPerHost.ours, 4 / 3);
  assert.ok(Number.isNaN(o!.cpuPerHost.rust));
  assert.equal(r!.seedUploadPerFile, 3);
  assert.deepEqual([m!.ok, m!.peerS.ours, m!.peerS.rust], [0, 11, 15]);
  assert.deepEqual(c!.rows[2]!.slice(0, 3), ['mixed', '0 of 1', '15.0 s']);
  const ratios = Object.fromEntries(ratioRows(c!).map((row) => [row[0], row.slice(1)]));
  assert.deepEqual(ratios['all-ours vs all-Rust: slowest peer'], ['13.0 s', '24.0 s', (13 / 24).toFixed(2)]);
  assert.deepEqual(ratios['all-ours vs all-Rust: seed upload / file'], ['1.00', '3.00', '0.33']);
  assert.deepEqual(ratios['mixed: median dfget, our peers vs Rust peers'], ['11.0 s', '15.0 s', '0.73']);
  assert.deepEqual(ratios['mixed: daemon CPU per host, ours vs Rust'], ['1.5 s', '0.5 s', '3.00']);
});

test('a mode that failed shows no figures and says so; no all-Rust run, no all-ours ÷ all-Rust rows', () => {
  const [c] = compareModes([result('ours', []), result('mixed', [], 'seed exited (1) before it was ready')]);
  assert.deepEqual(c!.rows[1]!.slice(0, 3), ['mixed', '0 of 0 (errors: see below)', '—']);
  assert.ok(ratioRows(c!).every((row) => !row[0]!.startsWith('all-ours')));
});
