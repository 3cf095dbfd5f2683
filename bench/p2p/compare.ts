// The modes of one scenario side by side (bench:upstream:swarm): per mode the medians over its repeats, and
// ours ÷ theirs — all-ours against all-Rust, and within each mixed run our hosts against the Rust ones (the same
// network, scheduler and moment, so the fairest of the comparisons).

import { median } from '../proc.js';
import type { DaemonKind } from './modes.js';
import type { HostResult, RepeatResult, ScenarioResult } from './run.js';

export interface ModeStats {
  mode: string;
  repeats: number;
  ok: number;
  slowestS: number;
  medianS: number;
  slowestPerBound: number;
  medianPerBound: number;
  originPerFile: number;
  seedUploadPerFile: number;
  /** Shares of the median peer's bytes. */
  fromSeed: number;
  fromPeers: number;
  fromSource: number;
  /** Daemon CPU seconds over the download window, per host of each kind (NaN when the mode has none). */
  cpuPerHost: Record<DaemonKind, number>;
  /** Median dfget time of the peers of each kind. */
  peerS: Record<DaemonKind, number>;
  peakRssMiB: Record<DaemonKind, number>;
  machineShare: number;
  error?: string;
}

export interface Comparison {
  scenario: string;
  stats: ModeStats[];
  rows: string[][];
}

const med = (rs: RepeatResult[], f: (r: RepeatResult) => number) =>
  median(rs.map(f).filter((v) => Number.isFinite(v)));

function ofKind(r: RepeatResult, kind: DaemonKind, f: (h: HostResult) => number, peersOnly = false) {
  return r.hosts.filter((h) => h.kind === kind && (!peersOnly || h.role === 'peer')).map(f);
}

const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);

function byKind(
  rs: RepeatResult[],
  f: (r: RepeatResult, k: DaemonKind) => number,
): Record<DaemonKind, number> {
  return { ours: med(rs, (r) => f(r, 'ours')), rust: med(rs, (r) => f(r, 'rust')) };
}

export function modeStats(res: ScenarioResult): ModeStats {
  const rs = res.repeats;
  const peerShare = (r: RepeatResult, k: 'fromSeed' | 'fromPeers' | 'fromSource') =>
    median(r.hosts.slice(1).map((h) => h.pieces[k]));
  return {
    mode: res.mode,
    repeats: rs.length,
    ok: rs.filter((r) => r.allOk).length,
    slowestS: med(rs, (r) => r.slowestS),
    medianS: med(rs, (r) => r.medianS),
    slowestPerBound: med(rs, (r) => r.slowestS / r.boundRaw.seconds),
    medianPerBound: med(rs, (r) => r.medianS / r.boundRaw.seconds),
    originPerFile: med(rs, (r) => r.originPerFile),
    seedUploadPerFile: med(rs, (r) => r.seedUploadPerFile),
    fromSeed: med(rs, (r) => peerShare(r, 'fromSeed')),
    fromPeers: med(rs, (r) => peerShare(r, 'fromPeers')),
    fromSource: med(rs, (r) => peerShare(r, 'fromSource')),
    cpuPerHost: byKind(rs, (r, k) => mean(ofKind(r, k, (h) => h.cpuS))),
    peerS: byKind(rs, (r, k) => median(ofKind(r, k, (h) => h.seconds, true))),
    peakRssMiB: byKind(rs, (r, k) => Math.max(...ofKind(r, k, (h) => h.peakRssMiB))),
    machineShare: med(rs, (r) => r.cpu.machineShare),
    error: res.error,
  };
}

const f1 = (v: number) => (Number.isFinite(v) ? v.toFixed(1) : '—');
const f2 = (v: number) => (Number.isFinite(v) ? v.toFixed(2) : '—');
const secs = (v: number) => (Number.isFinite(v) ? `${v.toFixed(1)} s` : '—');
const pct = (v: number) => (Number.isFinite(v) ? `${(v * 100).toFixed(0)} %` : '—');

export const COMPARE_HEADER = [
  'mode',
  'all sha256 ok',
  'slowest',
  'slowest / bound',
  'median / bound',
  'origin / S',
  'seed up / S',
  'from seed',
  'from peers',
  'from origin',
  'dfget s: our peers / Rust peers',
  'daemon CPU s per host: ours / Rust',
  'peak RSS MiB: ours / Rust',
  'machine busy',
];

function compareRow(s: ModeStats): string[] {
  return [
    s.mode,
    `${s.ok} of ${s.repeats}${s.error ? ' (errors: see below)' : ''}`,
    secs(s.slowestS),
    f2(s.slowestPerBound),
    f2(s.medianPerBound),
    f2(s.originPerFile),
    f2(s.seedUploadPerFile),
    pct(s.fromSeed),
    pct(s.fromPeers),
    pct(s.fromSource),
    `${f1(s.peerS.ours)} / ${f1(s.peerS.rust)}`,
    `${f1(s.cpuPerHost.ours)} / ${f1(s.cpuPerHost.rust)}`,
    `${f1(s.peakRssMiB.ours)} / ${f1(s.peakRssMiB.rust)}`,
    pct(s.machineShare),
  ];
}

/** One comparison per scenario, its modes in the results' order. */
export function compareModes(results: ScenarioResult[]): Comparison[] {
  const byScenario = new Map<string, ScenarioResult[]>();
  for (const r of results) byScenario.set(r.scenario.name, [...(byScenario.get(r.scenario.name) ?? []), r]);
  return [...byScenario].map(([scenario, rs]) => {
    const stats = rs.map(modeStats);
    return { scenario, stats, rows: stats.map(compareRow) };
  });
}

export const RATIO_HEADER = ['figure', 'ours', 'theirs (Rust)', 'ours ÷ theirs'];

/**
 * all-ours against all-Rust (median over the repeats of each), then in each mixed mode our hosts against the
 * Rust hosts of the same runs.
 */
export function ratioRows(c: Comparison): string[][] {
  const rows: string[][] = [];
  const add = (figure: string, a: number, b: number, show: (v: number) => string) =>
    rows.push([figure, show(a), show(b), f2(a / b)]);
  const ours = c.stats.find((s) => s.mode === 'ours');
  const rust = c.stats.find((s) => s.mode === 'rust');
  const s = secs;
  if (ours && rust) {
    add('all-ours vs all-Rust: slowest peer', ours.slowestS, rust.slowestS, s);
    add('all-ours vs all-Rust: median peer', ours.medianS, rust.medianS, s);
    add('all-ours vs all-Rust: origin bytes / file', ours.originPerFile, rust.originPerFile, f2);
    add('all-ours vs all-Rust: seed upload / file', ours.seedUploadPerFile, rust.seedUploadPerFile, f2);
    add('all-ours vs all-Rust: daemon CPU per host', ours.cpuPerHost.ours, rust.cpuPerHost.rust, s);
    add('all-ours vs all-Rust: largest peak RSS', ours.peakRssMiB.ours, rust.peakRssMiB.rust, (v) =>
      Number.isFinite(v) ? `${v.toFixed(0)} MiB` : '—',
    );
  }
  for (const m of c.stats.filter((x) => x.mode !== 'ours' && x.mode !== 'rust')) {
    add(`${m.mode}: median dfget, our peers vs Rust peers`, m.peerS.ours, m.peerS.rust, s);
    add(`${m.mode}: daemon CPU per host, ours vs Rust`, m.cpuPerHost.ours, m.cpuPerHost.rust, s);
  }
  return rows;
}
