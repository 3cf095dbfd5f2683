// The P2P report: per scenario (and mode) the medians over the repeats beside their targets, the bound's terms, a
// per-host table of the median repeat, and notes; where Rust peers took part, the modes side by side with
// ours ÷ theirs; written as Markdown and JSON, with the per-piece timelines in a JSON file of their own next to
// them.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { machineLine, type Machine } from '../machine.js';
import { median } from '../proc.js';
import { boundText } from './bound.js';
import { compareModes, COMPARE_HEADER, ratioRows, RATIO_HEADER } from './compare.js';
import { MIB } from './content.js';
import { RUST_VERSION } from '../../test/helpers/upstream/programs.js';
import { MODES } from './modes.js';
import type { RepeatResult, ScenarioResult } from './run.js';
import {
  CPU_BOUND_SHARE,
  floorSeconds,
  ORIGIN_TARGET,
  SEED_UPLOAD_TARGET,
  type Settings,
} from './scenarios.js';

export interface Row {
  figure: string;
  value: string;
  repeats: string;
  target: string;
  met: string;
  note: string;
}

/** The results name their mode when any mode is not all-ours (the upstream swarm). */
const withModes = (results: ScenarioResult[]) => results.some((r) => r.mode !== 'ours');
export const resultName = (res: ScenarioResult, modes: boolean) =>
  modes ? `${res.scenario.name} ${res.mode}` : res.scenario.name;

const f1 = (v: number) => (Number.isFinite(v) ? v.toFixed(1) : 'n/a');
const f2 = (v: number) => (Number.isFinite(v) ? v.toFixed(2) : 'n/a');
const pct = (v: number) => (Number.isFinite(v) ? `${(v * 100).toFixed(0)} %` : 'n/a');
const met = (v: number, target: number) => (!Number.isFinite(v) ? '—' : v <= target ? 'yes' : 'NO');

/** The median over the repeats of `f`, and each repeat's value. */
function med(rs: RepeatResult[], f: (r: RepeatResult) => number, show: (v: number) => string) {
  const vs = rs.map(f);
  const m = median(vs.filter((v) => Number.isFinite(v)));
  return { m, value: show(m), repeats: vs.map(show).join(' / ') };
}

/** The repeat whose slowest peer is the median one (for the per-host table). */
export function medianRepeat(rs: RepeatResult[]): RepeatResult | undefined {
  if (rs.length === 0) return undefined;
  const sorted = [...rs].sort((a, b) => a.slowestS - b.slowestS);
  return sorted[(sorted.length - 1) >> 1];
}

export function scenarioRows(res: ScenarioResult): Row[] {
  const sc = res.scenario;
  const rs = res.repeats;
  const rows: Row[] = [];
  const add = (figure: string, m: { value: string; repeats: string }, target = '', ok = '', note = '') =>
    rows.push({ figure, value: m.value, repeats: m.repeats, target, met: ok, note });
  const plain = (value: string, note = '') => ({ value, repeats: '', note });
  const raw = rs[0]?.boundRaw;
  if (raw)
    rows.push({
      figure: 'bound, raw link rate',
      ...plain(`${f1(raw.seconds)} s`),
      target: '',
      met: '',
      note: `${boundText(raw)}; binding: ${raw.binding}`,
    });
  const gp = med(
    rs,
    (r) => r.goodputBits / 1e6,
    (v) => `${f1(v)} Mbit/s`,
  );
  add('goodput: curl over one shaped link', gp, '', '', `${f2(gp.m / (sc.rateBits / 1e6))} × the raw rate`);
  const bg = med(
    rs,
    (r) => r.boundGoodput.seconds,
    (v) => `${f1(v)} s`,
  );
  add('bound, measured goodput', bg, '', '', 'the same formula with every link at the goodput');
  const slow = med(
    rs,
    (r) => r.slowestS,
    (v) => `${f1(v)} s`,
  );
  add('slowest peer', slow);
  const sr = med(rs, (r) => r.slowestS / r.boundRaw.seconds, f2);
  add(
    'slowest / bound (raw rate)',
    sr,
    `≤ ${sc.target}`,
    met(sr.m, sc.target),
    sc.overridden.length ? `target set for the preset (overridden: ${sc.overridden.join(', ')})` : '',
  );
  add(
    'slowest / bound (goodput)',
    med(rs, (r) => r.slowestS / r.boundGoodput.seconds, f2),
  );
  const md = med(
    rs,
    (r) => r.medianS,
    (v) => `${f1(v)} s`,
  );
  add('median peer', md, '', '', `${f2(md.m / (raw?.seconds ?? NaN))} × bound (raw)`);
  const fa = med(
    rs,
    (r) => r.fastestS,
    (v) => `${f1(v)} s`,
  );
  add('fastest peer', fa, '', '', `${f2(fa.m / (raw?.seconds ?? NaN))} × bound (raw)`);
  const ok = rs.filter((r) => r.allOk).length;
  rows.push({
    figure: 'repeats where every peer exited 0 with the right sha256',
    value: `${ok} of ${rs.length}`,
    repeats: '',
    target: `${rs.length} of ${rs.length}`,
    met: rs.length && ok === rs.length ? 'yes' : 'NO',
    note: '',
  });
  const o = med(rs, (r) => r.originPerFile, f2);
  add(
    'origin bytes / file',
    o,
    `≤ ${ORIGIN_TARGET}`,
    met(o.m, ORIGIN_TARGET),
    `requests: ${rs.map((r) => r.originRequests).join(' / ')}`,
  );
  const su = med(rs, (r) => r.seedUploadPerFile, f2);
  add(
    'seed upload / file (piece bytes the peers took from the seed)',
    su,
    `≤ ${SEED_UPLOAD_TARGET}`,
    met(su.m, SEED_UPLOAD_TARGET),
  );
  add(
    'seed eth0 tx / file',
    med(rs, (r) => r.seedEthTxPerFile, f2),
    '',
    '',
    'payload + TCP/IP and Ethernet headers (a few %)',
  );
  const up = (r: RepeatResult, f: (xs: number[]) => number) =>
    f(r.hosts.slice(1).map((h) => h.uplinkPerFile));
  add(
    'peer uplink use, eth0 tx / file: min',
    med(rs, (r) => up(r, (xs) => Math.min(...xs)), f2),
  );
  add(
    'peer uplink use, eth0 tx / file: median',
    med(rs, (r) => up(r, median), f2),
  );
  add(
    'peer uplink use, eth0 tx / file: max',
    med(rs, (r) => up(r, (xs) => Math.max(...xs)), f2),
  );
  const how = rs[0]?.hosts[1]?.log.rescheduleSource ?? '';
  add(
    'reschedules per peer (mean)',
    med(rs, (r) => r.reschedulesTotal / sc.peers, f2),
    '',
    '',
    `counted from daemon logs: ${how}`,
  );
  add(
    'reschedules, most for one peer',
    med(
      rs,
      (r) => r.reschedulesMax,
      (v) => String(v),
    ),
  );
  add(
    'NeedBackToSource sent by the scheduler',
    med(
      rs,
      (r) => r.scheduler.needBackToSource,
      (v) => String(v),
    ),
    '',
    '',
    'the seed’s (cold task) is expected: 1',
  );
  const share = (r: RepeatResult, k: 'fromSeed' | 'fromPeers' | 'fromSource') =>
    median(r.hosts.slice(1).map((h) => h.pieces[k]));
  add(
    'peers’ bytes from the seed (median peer)',
    med(rs, (r) => share(r, 'fromSeed'), pct),
  );
  add(
    'peers’ bytes from other peers (median peer)',
    med(rs, (r) => share(r, 'fromPeers'), pct),
  );
  add(
    'peers’ bytes from the origin (median peer)',
    med(rs, (r) => share(r, 'fromSource'), pct),
  );
  const cpu = med(rs, (r) => r.cpu.share, pct);
  const bound = rs.filter((r) => r.cpu.cpuBound).length;
  add(
    `CPU of the benchmark's processes, share of ${rs[0]?.cpu.cores ?? '?'} cores`,
    cpu,
    `CPU-bound above ${pct(CPU_BOUND_SHARE)}`,
    bound ? `CPU-bound in ${bound} of ${rs.length}` : 'not CPU-bound',
    `daemons/scheduler/origin/dfget/bench s: ${rs.map((r) => [r.cpu.daemons, r.cpu.scheduler, r.cpu.origin, r.cpu.clients, r.cpu.bench].map(f1).join('/')).join(' · ')}`,
  );
  add(
    'CPU of the whole machine',
    med(rs, (r) => r.cpu.machineShare, pct),
    '',
    '',
    'includes anything else running',
  );
  add(
    'dfdaemon peak RSS, largest',
    med(
      rs,
      (r) => Math.max(...r.hosts.map((h) => h.peakRssMiB)),
      (v) => `${v.toFixed(0)} MiB`,
    ),
    '',
    '',
    `all daemons together: ${rs.map((r) => r.hosts.reduce((s, h) => s + h.peakRssMiB, 0).toFixed(0)).join(' / ')} MiB`,
  );
  return rows;
}

const HOST_HEADER = [
  'host',
  'client',
  'dfget s',
  '× bound',
  'exit',
  'sha256',
  'b2s MiB',
  'peer MiB',
  'eth rx MiB',
  'eth tx / S',
  'uploaded / S',
  'from seed',
  'from peers',
  'from origin',
  'first piece s',
  'last piece s',
  'resched',
  'parents offered',
  'cpu s',
  'rss MiB',
];

function hostRows(r: RepeatResult): string[][] {
  return r.hosts.map((h) => [
    h.host,
    h.kind,
    Number.isFinite(h.seconds) ? h.seconds.toFixed(1) : '—',
    Number.isFinite(h.seconds) ? f2(h.seconds / r.boundRaw.seconds) : '—',
    h.exit,
    h.sha256ok === undefined ? '—' : h.sha256ok ? 'ok' : 'BAD',
    h.backToSourceMiB.toFixed(0),
    h.remotePeerMiB.toFixed(0),
    h.ethRxMiB.toFixed(0),
    f2(h.uplinkPerFile),
    f2(h.uploadedPerFile),
    pct(h.pieces.fromSeed),
    pct(h.pieces.fromPeers),
    pct(h.pieces.fromSource),
    f1(h.pieces.firstS),
    f1(h.pieces.lastS),
    h.role === 'seed' ? '—' : String(h.log.reschedules),
    h.log.parentsOffered.join(' ') || '—',
    f1(h.cpuS),
    h.peakRssMiB.toFixed(0),
  ]);
}

export function overviewRows(results: ScenarioResult[]): string[][] {
  const modes = withModes(results);
  return results.map((res) => {
    const sc = res.scenario;
    const rs = res.repeats;
    const m = (f: (r: RepeatResult) => number) => median(rs.map(f).filter(Number.isFinite));
    const ratio = m((r) => r.slowestS / r.boundRaw.seconds);
    return [
      resultName(res, modes),
      String(res.hosts),
      sc.rate,
      `${(sc.size / MIB).toFixed(0)} MiB`,
      `${rs.length}`,
      `${f1(floorSeconds(sc))} s`,
      `${f1(m((r) => r.boundGoodput.seconds))} s`,
      `${f1(m((r) => r.slowestS))} s`,
      `${f2(ratio)} (≤ ${sc.target}: ${met(ratio, sc.target)})`,
      f2(m((r) => r.slowestS / r.boundGoodput.seconds)),
      f2(m((r) => r.originPerFile)),
      f2(m((r) => r.seedUploadPerFile)),
      f2(m((r) => r.reschedulesTotal / sc.peers)),
      String(m((r) => r.scheduler.needBackToSource)),
      `${pct(m((r) => r.cpu.share))}${rs.some((r) => r.cpu.cpuBound) ? ' CPU-bound' : ''}`,
      res.error ? 'FAILED' : `${res.durationS.toFixed(0)} s`,
    ];
  });
}

const OVERVIEW_HEADER = [
  'scenario',
  'hosts',
  'link',
  'S',
  'runs',
  'bound raw',
  'bound goodput',
  'slowest',
  'slowest / bound raw',
  '/ goodput',
  'origin / S',
  'seed up / S',
  'resched / peer',
  'NeedBackToSource',
  'CPU',
  'took',
];
const ROW_HEADER = ['figure', 'median', 'each repeat', 'target', 'met', 'note'];

function textTable(header: string[], body: string[][]): string {
  const all = [header, ...body];
  const widths = header.map((_, i) => Math.max(...all.map((row) => (row[i] ?? '').length)));
  const line = (row: string[]) =>
    row
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

function mdTable(header: string[], body: string[][]): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  return [
    `| ${header.join(' | ')} |`,
    `| ${header.map(() => '---').join(' | ')} |`,
    ...body.map((row) => `| ${row.map(esc).join(' | ')} |`),
  ].join('\n');
}

const rowCells = (r: Row) => [r.figure, r.value, r.repeats, r.target, r.met, r.note];

export function renderConsole(results: ScenarioResult[], machine: Machine): string {
  const modes = withModes(results);
  const out = [textTable(OVERVIEW_HEADER, overviewRows(results)), ''];
  if (modes) {
    for (const c of compareModes(results)) {
      out.push(`${c.scenario}: the modes side by side`, textTable(COMPARE_HEADER, c.rows), '');
      out.push(`${c.scenario}: ours ÷ theirs`, textTable(RATIO_HEADER, ratioRows(c)), '');
    }
  }
  for (const res of results) {
    out.push(
      `${resultName(res, modes)}: ${res.scenario.what}${modes ? `; ${MODES[res.mode]?.what ?? res.mode}` : ''}`,
      textTable(ROW_HEADER, scenarioRows(res).map(rowCells)),
      '',
    );
  }
  out.push(`machine: ${machineLine(machine)}`);
  return out.join('\n');
}

export function renderMarkdown(o: {
  title: string;
  date: string;
  machine: Machine;
  settings: Settings;
  results: ScenarioResult[];
  durationS: number;
  piecesFile: string;
}): string {
  const st = o.settings;
  const modes = withModes(o.results);
  const out = [
    `# ${o.title} ${o.date}`,
    '',
    `Machine: ${machineLine(o.machine)}`,
    '',
    'Network namespaces on one machine: a bridge; the origin (Node, generated content, Range) with dfscheduler; ' +
      'one seed peer (super) and the peers, each dfdaemon in its own namespace. Every host link (origin too) is ' +
      'shaped with tbf at the rate below in both directions. Each repeat starts a fresh dfscheduler and fresh ' +
      'dfdaemons on empty storage and a file nobody has: every peer runs dfget at once; the seed is cold (the ' +
      `scheduler makes it fetch from the origin). ${st.repeats} repeat(s) per scenario, medians shown; dfdaemon ` +
      `log level ${st.logLevel}, upload.bandwidthLimit ${st.uploadLimit ?? 'default'}, storage.server.queueLimit ${st.queueLimit ?? 'unset'}, storage.server.cutThrough ${st.cutThrough ?? 'default'}. Run took ${o.durationS.toFixed(0)} s.`,
    '',
    'Bound (Kumar–Ross, with a cold seed): T = max(S/u_s, S/d_min, N·S/(u_s+Σu_i), S/min(u_o,d_s)); with every ' +
      'link at R it is the one-link time S·8/R. "raw" uses the tbf rate, "goodput" the rate curl reached over one ' +
      'shaped link in the same repeat. Peer times are dfget wall times from the common launch (Node start-up included).',
    '',
    mdTable(OVERVIEW_HEADER, overviewRows(o.results)),
    '',
  ];
  if (modes) out.push(...modesMarkdown(o.results, st));
  for (const res of o.results) {
    const sc = res.scenario;
    out.push(
      `## ${resultName(res, modes)}: ${sc.what}${modes ? `; ${MODES[res.mode]?.what ?? res.mode}` : ''}`,
      '',
      `${res.hosts} hosts (seed + ${sc.peers} peer${sc.peers === 1 ? '' : 's'}), tbf ${sc.rate} burst ${sc.burst} latency ${sc.latency}, ` +
        `S = ${(sc.size / MIB).toFixed(0)} MiB${sc.overridden.length ? ` (preset overridden: ${sc.overridden.join(', ')})` : ''}; took ${res.durationS.toFixed(0)} s.`,
      '',
    );
    if (res.error) out.push('**The scenario failed:**', '', '```', res.error, '```', '');
    if (res.repeats.length === 0) continue;
    out.push(mdTable(ROW_HEADER, scenarioRows(res).map(rowCells)), '');
    const mr = medianRepeat(res.repeats)!;
    out.push(
      `Per host, repeat ${mr.repeat} (the median one): dfget time and × the raw bound; download_traffic deltas from ` +
        '/metrics; eth0 bytes; uploaded = piece bytes the other hosts took from it (their piece records); where its ' +
        'pieces came from, the first and last piece finished (s since launch), reschedules and the parents offered ' +
        `(daemon log), daemon CPU and peak RSS. Every piece of every repeat: \`${o.piecesFile}\`.`,
      '',
      mdTable(HOST_HEADER, hostRows(mr)),
      '',
    );
    const notes = res.repeats.flatMap((r) => r.notes.map((n) => `repeat ${r.repeat}: ${n}`));
    const sched = Object.entries(mr.scheduler.messages)
      .sort((a, b) => b[1] - a[1])
      .map(([m, c]) => `"${m}" ×${c}`)
      .join('; ');
    notes.push(`dfscheduler log, repeat ${mr.repeat}: ${sched || '(empty)'}`);
    const warnings = new Map<string, number>();
    for (const r of res.repeats) {
      for (const h of r.hosts) {
        for (const [m, c] of Object.entries(h.log.messages)) {
          if (!/^(warn|error): /.test(m)) continue;
          // Messages may carry addresses and error text: keep the start, and count by host.
          const key = `${h.host} ${m.length > 100 ? `${m.slice(0, 100)}…` : m}`;
          warnings.set(key, (warnings.get(key) ?? 0) + c);
        }
      }
    }
    notes.push(
      `daemon warn/error lines over all repeats: ${
        [...warnings].map(([m, c]) => `${m} ×${c}`).join('; ') || 'none'
      }`,
    );
    out.push('Notes:', '', ...notes.map((n) => `- ${n}`), '');
  }
  return out.join('\n');
}

/** The comparison of the modes (upstream swarm): what each mode is, the table, the ratios. */
function modesMarkdown(results: ScenarioResult[], st: Settings): string[] {
  const out = [
    '## The modes side by side',
    '',
    'The same network, origin and scheduler (dfscheduler, ours, a fresh one per run) for every mode; each ' +
      'host runs its own client’s dfdaemon and dfget (the Rust dfdaemon with the same dfdaemon.yaml as ours). ' +
      'Modes: ' +
      st.modes.map((m) => `**${m.name}**: ${m.what}`).join('; ') +
      '. The modes take turns within each repeat (the first mode moves on by one each repeat). ' +
      'Bytes by source come from piece records (ours: the metadata store; Rust: its task module’s debug log). ' +
      `Rust client: dragonfly-client ${RUST_VERSION} (cargo install --locked, release build). ` +
      'Our daemons’ storage.server.queueLimit (busy answers, ours alone) is unset in the modes with Rust hosts' +
      (st.queueLimitGiven ? `, except that P2P_QUEUE_LIMIT set it to ${st.queueLimit ?? 'unset'}` : '') +
      '. "machine busy" is the whole machine’s CPU over each run, other work included.',
    '',
  ];
  for (const c of compareModes(results)) {
    out.push(`### ${c.scenario}`, '', mdTable(COMPARE_HEADER, c.rows), '');
    out.push(mdTable(RATIO_HEADER, ratioRows(c)), '');
  }
  return out;
}

/** Writes PREFIXlatest.{json,md}, PREFIXDATE.md and PREFIXlatest-pieces.json into `dir` (PREFIX: p2p-, …). */
export function writeResults(
  dir: string,
  o: { date: string; machine: Machine; settings: Settings; results: ScenarioResult[]; durationS: number },
  names: { resultsPrefix: string; title: string } = { resultsPrefix: 'p2p-', title: 'P2P benchmark' },
): void {
  mkdirSync(dir, { recursive: true });
  const p = names.resultsPrefix;
  const piecesFile = `${p}latest-pieces.json`;
  const md = renderMarkdown({ ...o, title: names.title, piecesFile });
  const json = {
    date: o.date,
    machine: o.machine,
    settings: o.settings,
    durationS: o.durationS,
    scenarios: o.results.map((r) => {
      const { timelines: _t, ...rest } = r;
      return { ...rest, summary: scenarioRows(r) };
    }),
  };
  writeFileSync(join(dir, `${p}latest.json`), `${JSON.stringify(json, null, 2)}\n`);
  writeFileSync(join(dir, `${p}latest.md`), md);
  writeFileSync(join(dir, `${p}${o.date.slice(0, 10)}.md`), md);
  const pieces = {
    date: o.date,
    about:
      'Per scenario, repeat and host: every piece the host stored (metadata db). n: piece number; from: the ' +
      "parent's host ('origin' for back-to-source); type: source|peer|local; created/finished: ms since the " +
      'downloads were launched (t0, epoch ms); cost: ms the piece took.',
    scenarios: o.results.map((r) => ({ name: r.scenario.name, mode: r.mode, timelines: r.timelines })),
  };
  writeFileSync(join(dir, piecesFile), `${JSON.stringify(pieces)}\n`);
}
