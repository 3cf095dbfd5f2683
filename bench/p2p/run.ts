// One scenario: its network, then `repeats` runs of each mode (modes.ts: which client on which host; the modes'
// order turns with each repeat), each with a fresh dfscheduler and fresh dfdaemons (empty storage) and a file no
// host has seen: every peer dfgets it at once (with its own client's dfget), and the run is measured (dfget times,
// /metrics, eth0 bytes, origin bytes, CPU) and then read back (logs, piece records, outputs' sha256).

import { mkdirSync, rmSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { calculatePieceLength } from '../../src/core/piece.js';
import { DEFAULT_FILTERED_QUERY_PARAMS, taskIdFromUrl } from '../../src/core/task-id.js';
import { DFGET } from '../../test/helpers/daemon.js';
import { upstreamPath } from '../../test/helpers/upstream/programs.js';
import { median, procStatusBytes } from '../proc.js';
import { distributionBound, equalLinks, type Bound } from './bound.js';
import {
  cpuSnapshot,
  daemonLogCounts,
  diffTraffic,
  pieceTimeline,
  schedulerLogCounts,
  summarizePieces,
  traffic,
  uploadedBytes,
  type CpuSnapshot,
  type DaemonLogCounts,
  type PieceEvent,
  type PieceSummary,
  type SchedulerLogCounts,
} from './collect.js';
import { expectedSha256, MIB, sha256File } from './content.js';
import { filePath, ORIGIN_PORT, originStats } from './origin.js';
import { kindsOf, type DaemonKind, type Mode } from './modes.js';
import { exec, killProc, log, sleep, teardownNetwork } from './procs.js';
import { rustLogCounts, rustPieceTimeline } from './rust-log.js';
import {
  CPU_BOUND_SHARE,
  downloadTimeoutMs,
  goodputBytes,
  queueLimitIn,
  type Scenario,
  type Settings,
} from './scenarios.js';
import {
  metadataDb,
  METRICS_PORT,
  startDaemons,
  VORTEX_PORT_BASE,
  startOrigin,
  startScheduler,
  stopServers,
  type Server,
} from './servers.js';
import { ifaceBytes, makeTopology, type Host, type Topology } from './topology.js';

export interface HostResult {
  host: string;
  role: 'seed' | 'peer';
  kind: DaemonKind;
  ip: string;
  /** dfget wall time from the common launch (peers only). */
  seconds: number;
  exit: string;
  sha256ok?: boolean;
  /** download_traffic deltas, MiB. */
  backToSourceMiB: number;
  remotePeerMiB: number;
  localPeerMiB: number;
  ethRxMiB: number;
  ethTxMiB: number;
  /** eth0 tx / file size. */
  uplinkPerFile: number;
  /** Piece bytes the other hosts took from this one / file size. */
  uploadedPerFile: number;
  cpuS: number;
  peakRssMiB: number;
  log: DaemonLogCounts;
  pieces: PieceSummary;
  piecesError?: string;
}

export interface CpuUse {
  /** CPU seconds over the download window. */
  daemons: number;
  scheduler: number;
  origin: number;
  /** Reaped children: the dfget clients. */
  clients: number;
  bench: number;
  total: number;
  /** total / (wall · cores). */
  share: number;
  /** Whole machine (/proc/stat) busy share over the window: includes other work on the machine. */
  machineShare: number;
  cores: number;
  cpuBound: boolean;
}

export interface RepeatResult {
  repeat: number;
  taskId: string;
  url: string;
  /** Epoch ms when the downloads were launched (the timelines' zero). */
  t0: number;
  goodputBits: number;
  goodputBytes: number;
  goodputS: number;
  boundRaw: Bound;
  boundGoodput: Bound;
  slowestS: number;
  medianS: number;
  fastestS: number;
  allOk: boolean;
  originBytes: number;
  originRequests: number;
  originPerFile: number;
  /** Piece bytes the peers took from the seed / file size. */
  seedUploadPerFile: number;
  /** The seed's eth0 tx / file size (payload + TCP/IP, and what it sent to peers that failed). */
  seedEthTxPerFile: number;
  reschedulesTotal: number;
  reschedulesMax: number;
  scheduler: SchedulerLogCounts;
  cpu: CpuUse;
  hosts: HostResult[];
  notes: string[];
}

export interface ScenarioResult {
  scenario: Scenario;
  /** The mode's name (modes.ts) and the kind of every host, seed first. */
  mode: string;
  kinds: DaemonKind[];
  hosts: number;
  durationS: number;
  repeats: RepeatResult[];
  /** Per repeat, per host: the piece timeline. */
  timelines: { repeat: number; t0: number; taskId: string; hosts: Record<string, PieceEvent[]> }[];
  error?: string;
}

export interface RunContext {
  settings: Settings;
  tmp: string;
  /** This benchmark's entry file (the origin runs as `node ENTRY --origin`). */
  entryFile: string;
  /** Unique namespace-name prefix for the scenario. */
  prefix: string;
  /** Index of the scenario in the list, for distinct file seeds. */
  index: number;
}

/** `ip netns exec` arguments of the host's own client's dfget (ours, or the Rust one beside the Rust daemon). */
function dfgetArgs(kind: DaemonKind, h: Host, url: string, out: string, timeoutMs: number): string[] {
  const dfget = kind === 'ours' ? [process.execPath, DFGET] : [upstreamPath('dfget')];
  return [
    ...['netns', 'exec', h.ns, ...dfget, url, '-O', out],
    ...['-e', join(h.dir, 'dfdaemon.sock'), '--no-progress', '--timeout', `${Math.ceil(timeoutMs / 1000)}s`],
  ];
}

/** One result per mode, in the settings' order; the modes share the scenario's network and origin. */
export async function runScenario(sc: Scenario, ctx: RunContext): Promise<ScenarioResult[]> {
  const began = performance.now();
  const dir = join(ctx.tmp, sc.name);
  const modes = ctx.settings.modes;
  const results: ScenarioResult[] = modes.map((m) => ({
    scenario: sc,
    mode: m.name,
    kinds: kindsOf(m, sc.peers),
    hosts: sc.peers + 1,
    durationS: 0,
    repeats: [],
    timelines: [],
  }));
  const fail = (i: number, what: string, e: unknown) => {
    const msg = `${what}: ${(e as Error).stack ?? String(e)}`;
    results[i]!.error = results[i]!.error ? `${results[i]!.error}\n${msg}` : msg;
    log(`${sc.name} ${msg}`);
  };
  try {
    const net = `10.${77 + ctx.index}.${1 + Math.floor(Math.random() * 250)}`;
    const topo = await makeTopology({
      prefix: ctx.prefix,
      net,
      peers: sc.peers,
      rate: sc.rate,
      burst: sc.burst,
      latency: sc.latency,
      dir,
    });
    const logDir = join(ctx.tmp, 'logs', sc.name);
    mkdirSync(logDir, { recursive: true });
    const origin = await startOrigin(topo, ctx.entryFile, logDir);
    for (let k = 1; k <= ctx.settings.repeats; k++) {
      // Each repeat starts with the next mode, so no mode always runs first (or last) on a busy machine.
      for (let j = 0; j < modes.length; j++) {
        const i = (j + k - 1) % modes.length;
        const mode = modes[i]!;
        const res = results[i]!;
        const sub = modes.length > 1 ? `r${k}-${mode.name}` : `r${k}`;
        const started = performance.now();
        try {
          const run = { mode, modeIndex: i, number: (k - 1) * modes.length + j };
          const r = await runRepeat(sc, run, ctx, topo, origin, k, join(logDir, sub));
          res.repeats.push(r.result);
          res.timelines.push({ repeat: k, t0: r.result.t0, taskId: r.result.taskId, hosts: r.timelines });
        } catch (e) {
          fail(i, `${mode.name} repeat ${k}`, e);
        }
        res.durationS += (performance.now() - started) / 1000;
      }
    }
    await killProc(origin.proc);
  } catch (e) {
    for (let i = 0; i < results.length; i++) fail(i, 'scenario', e);
  } finally {
    await teardownNetwork();
    rmSync(dir, { recursive: true, force: true });
  }
  // With one mode its result took the whole scenario (network set-up and teardown included), as before modes.
  if (results.length === 1) results[0]!.durationS = (performance.now() - began) / 1000;
  return results;
}

/** curl of `bytes` over one shaped link (origin → peer 1, no dfdaemon in the path): the link's goodput. */
async function measureGoodput(
  topo: Topology,
  path: string,
  bytes: number,
): Promise<{ bits: number; seconds: number; bytes: number; error?: string }> {
  const h = topo.hosts[1]!;
  const url = `http://${topo.origin.ip}:${ORIGIN_PORT}${path}`;
  const r = await exec(
    'ip',
    [
      'netns',
      'exec',
      h.ns,
      'curl',
      '-s',
      '-f',
      '-o',
      '/dev/null',
      '-w',
      '%{size_download} %{time_total}',
      url,
    ],
    Math.max(60_000, bytes / 1000),
  );
  const [got, total] = r.stdout.trim().split(' ').map(Number) as [number, number];
  if (r.code !== 0 || got !== bytes || !(total > 0)) {
    return {
      bits: NaN,
      seconds: NaN,
      bytes,
      error: `goodput curl failed (exit ${r.code}, ${r.stdout}): ${r.stderr.trim()}`,
    };
  }
  return { bits: (got * 8) / total, seconds: total, bytes: got };
}

async function runRepeat(
  sc: Scenario,
  run: { mode: Mode; modeIndex: number; /** 0, 1, … within the scenario. */ number: number },
  ctx: RunContext,
  topo: Topology,
  origin: Server,
  k: number,
  logDir: string,
): Promise<{ result: RepeatResult; timelines: Record<string, PieceEvent[]> }> {
  const st = ctx.settings;
  const notes: string[] = [];
  mkdirSync(logDir, { recursive: true });
  for (const h of topo.hosts) {
    rmSync(join(h.dir, 'storage'), { recursive: true, force: true });
    rmSync(join(h.dir, 'out'), { recursive: true, force: true });
  }
  const { mode, modeIndex } = run;
  const kinds = kindsOf(mode, sc.peers);
  // A file of its own for every run (scenario, repeat, mode).
  const seed = 1000 * (ctx.index + 1) + 10 * k + modeIndex;
  const path = filePath(seed, sc.size);
  const url = `http://${topo.origin.ip}:${ORIGIN_PORT}${path}`;
  const taskId = taskIdFromUrl({ url, filteredQueryParams: DEFAULT_FILTERED_QUERY_PARAMS });
  const nameOfIp = new Map(topo.hosts.map((h) => [h.ip, h.name]));
  log(
    `${sc.name} repeat ${k}/${st.repeats}${st.modes.length > 1 ? ` ${mode.name} (${mode.what})` : ''}: ` +
      `${sc.peers} peers, ${(sc.size / MIB).toFixed(0)} MiB at ${sc.rate}`,
  );

  // The link's goodput, on a quiet network (before any daemon starts).
  const gp = await measureGoodput(
    topo,
    filePath(seed + 500, goodputBytes(sc, st.goodputSeconds)),
    goodputBytes(sc, st.goodputSeconds),
  );
  if (gp.error) notes.push(gp.error);
  log(
    `  goodput: ${(gp.bits / 1e6).toFixed(1)} Mbit/s (${(gp.bytes / MIB).toFixed(0)} MiB in ${gp.seconds.toFixed(1)} s)`,
  );

  const scheduler = await startScheduler(topo, logDir, st.logLevel);
  let daemons: Server[] = [];
  try {
    const t1 = performance.now();
    daemons = await startDaemons(topo, {
      kinds,
      vortexPort: VORTEX_PORT_BASE + run.number,
      logDir,
      logLevel: st.logLevel,
      uploadLimit: st.uploadLimit,
      queueLimit: queueLimitIn(mode, sc.peers, st),
      cutThrough: st.cutThrough,
      startConcurrency: Math.max(2, cpus().length),
    });
    log(`  ${daemons.length} dfdaemons up in ${((performance.now() - t1) / 1000).toFixed(1)} s`);
    const metricsPorts = daemons.map((d) => Number(d.started.metrics ?? METRICS_PORT));
    const peers = topo.hosts.slice(1);
    const originHost = topo.origin;

    // Before.
    const traffic0 = await Promise.all(topo.hosts.map((h, i) => traffic(h, metricsPorts[i]!)));
    const if0 = await Promise.all(topo.hosts.map((h) => ifaceBytes(h.ns)));
    const st0 = await originStats(originHost);
    const pids = [...daemons.map((d) => d.pid), scheduler.pid, origin.pid];
    const cpu0 = cpuSnapshot(pids);

    // Every peer at once.
    const timeoutMs = downloadTimeoutMs(sc, st);
    const t0 = Date.now();
    const start = performance.now();
    const runs = await Promise.all(
      peers.map(async (h, i) => {
        const r = await exec(
          'ip',
          dfgetArgs(kinds[i + 1]!, h, url, join(h.dir, 'out', 'f.bin'), timeoutMs),
          timeoutMs + 5000,
        );
        const s = (performance.now() - start) / 1000;
        if (sc.peers <= 8) log(`  ${h.name} done in ${s.toFixed(2)} s (exit ${r.code})`);
        return { ...r, s };
      }),
    );
    const wallS = (performance.now() - start) / 1000;
    const cpu1 = cpuSnapshot(pids);
    await sleep(1000);

    // After.
    const st1 = await originStats(originHost);
    const traffic1 = await Promise.all(topo.hosts.map((h, i) => traffic(h, metricsPorts[i]!)));
    const if1 = await Promise.all(topo.hosts.map((h) => ifaceBytes(h.ns)));
    const peakRss = daemons.map((d) => procStatusBytes(d.pid, 'VmHWM') ?? NaN);
    // Daemons first: they tell the scheduler they leave.
    await stopServers(daemons);
    await stopServers([scheduler]);

    for (const [i, r] of runs.entries()) {
      if (r.code !== 0)
        notes.push(`dfget on ${peers[i]!.name} exited ${r.code}: ${r.stderr.trim().slice(0, 300)}`);
    }
    const times = runs.map((r) => r.s);
    log(`  ${sc.peers} peers: slowest ${wallS.toFixed(1)} s, median ${median(times).toFixed(1)} s`);

    // Read back: outputs, logs, piece records.
    const want = expectedSha256(seed, sc.size);
    const shaOk: (boolean | undefined)[] = [];
    for (const [i, h] of peers.entries()) {
      const ok = runs[i]!.code === 0 ? (await sha256File(join(h.dir, 'out', 'f.bin'))) === want : undefined;
      if (ok === false) notes.push(`output on ${h.name} differs from the origin's content!`);
      shaOk.push(ok);
    }
    const timelines: Record<string, PieceEvent[]> = {};
    const pieceErrors: (string | undefined)[] = [];
    const pieceLength = calculatePieceLength(sc.size);
    const lengthOf = (n: number) => Math.min(pieceLength, sc.size - n * pieceLength);
    for (const [i, h] of topo.hosts.entries()) {
      const t =
        kinds[i] === 'ours'
          ? pieceTimeline(metadataDb(h), taskId, t0, nameOfIp)
          : rustPieceTimeline(daemons[i]!.logPath, taskId, t0, nameOfIp, lengthOf);
      timelines[h.name] = t.pieces;
      pieceErrors.push(t.error);
      if (t.error) notes.push(`piece records of ${h.name}: ${t.error}`);
    }
    const uploaded = uploadedBytes(new Map(Object.entries(timelines)));
    const schedLog = schedulerLogCounts(scheduler.logPath);

    const hosts: HostResult[] = topo.hosts.map((h, i) => {
      const t = diffTraffic(traffic0[i]!, traffic1[i]!);
      const run = i === 0 ? undefined : runs[i - 1];
      const ethTx = if1[i]!.tx - if0[i]!.tx;
      return {
        host: h.name,
        role: i === 0 ? 'seed' : 'peer',
        kind: kinds[i]!,
        ip: h.ip,
        seconds: run ? run.s : NaN,
        exit: run ? String(run.code) : '—',
        sha256ok: i === 0 ? undefined : shaOk[i - 1],
        backToSourceMiB: t.BACK_TO_SOURCE / MIB,
        remotePeerMiB: t.REMOTE_PEER / MIB,
        localPeerMiB: t.LOCAL_PEER / MIB,
        ethRxMiB: (if1[i]!.rx - if0[i]!.rx) / MIB,
        ethTxMiB: ethTx / MIB,
        uplinkPerFile: ethTx / sc.size,
        uploadedPerFile: (uploaded.get(h.name) ?? 0) / sc.size,
        cpuS: (cpu1.servers[i]! - cpu0.servers[i]!) / 1000,
        peakRssMiB: peakRss[i]! / MIB,
        log: (kinds[i] === 'ours' ? daemonLogCounts : rustLogCounts)(daemons[i]!.logPath, taskId, nameOfIp),
        pieces: summarizePieces(timelines[h.name]!),
        piecesError: pieceErrors[i],
      };
    });

    const originBytes = (st1[path]?.bytes ?? NaN) - (st0[path]?.bytes ?? 0);
    const originRequests = (st1[path]?.requests ?? NaN) - (st0[path]?.requests ?? 0);
    const peerRows = hosts.slice(1);
    const resched = peerRows.map((h) => h.log.reschedules);
    const raw = distributionBound(equalLinks(sc.size, sc.peers, sc.rateBits));
    const good = distributionBound(equalLinks(sc.size, sc.peers, gp.bits));
    const cpu = cpuUse(cpu0, cpu1, daemons.length, wallS);
    if (cpu.cpuBound) {
      notes.push(
        `CPU-bound: the benchmark's processes used ${(cpu.share * 100).toFixed(0)} % of ${cpu.cores} cores over the run`,
      );
    } else if (cpu.machineShare > CPU_BOUND_SHARE) {
      notes.push(
        `the machine was ${(cpu.machineShare * 100).toFixed(0)} % busy over the run (this benchmark: ${(cpu.share * 100).toFixed(0)} %): other work competed for the CPU`,
      );
    }
    return {
      result: {
        repeat: k,
        taskId,
        url,
        t0,
        goodputBits: gp.bits,
        goodputBytes: gp.bytes,
        goodputS: gp.seconds,
        boundRaw: raw,
        boundGoodput: good,
        slowestS: Math.max(...times),
        medianS: median(times),
        fastestS: Math.min(...times),
        allOk: runs.every((r) => r.code === 0) && shaOk.every((o) => o === true),
        originBytes,
        originRequests,
        originPerFile: originBytes / sc.size,
        seedUploadPerFile: hosts[0]!.uploadedPerFile,
        seedEthTxPerFile: hosts[0]!.uplinkPerFile,
        reschedulesTotal: resched.reduce((a, b) => a + b, 0),
        reschedulesMax: Math.max(...resched),
        scheduler: schedLog,
        cpu,
        hosts,
        notes,
      },
      timelines,
    };
  } finally {
    await stopServers(daemons);
    await stopServers([scheduler]);
  }
}

function cpuUse(a: CpuSnapshot, b: CpuSnapshot, nDaemons: number, wallS: number): CpuUse {
  const d = (i: number) => (b.servers[i]! - a.servers[i]!) / 1000;
  let daemons = 0;
  for (let i = 0; i < nDaemons; i++) daemons += d(i);
  const scheduler = d(nDaemons);
  const origin = d(nDaemons + 1);
  const clients = (b.children - a.children) / 1000;
  const bench = (b.self - a.self) / 1000;
  const total = daemons + scheduler + origin + clients + bench;
  const cores = cpus().length;
  const share = total / (wallS * cores);
  const machineShare = (b.system.busy - a.system.busy) / (b.system.total - a.system.total);
  return {
    daemons,
    scheduler,
    origin,
    clients,
    bench,
    total,
    share,
    machineShare,
    cores,
    cpuBound: share > CPU_BOUND_SHARE,
  };
}
