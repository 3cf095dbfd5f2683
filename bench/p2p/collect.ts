// What a run is measured with after the fact: the daemons' /metrics, their logs and the scheduler's, the piece
// records in each daemon's metadata database, and CPU time from /proc.

import { readFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import { metricValue } from '../../test/helpers/daemon.js';
import { procCpuMs } from '../proc.js';
import { exec } from './procs.js';
import type { Host } from './topology.js';

// --- /metrics ----------------------------------------------------------------------------------------------------

export interface Traffic {
  BACK_TO_SOURCE: number;
  REMOTE_PEER: number;
  LOCAL_PEER: number;
}

/** dragonfly_client_download_traffic by type, from the daemon's /metrics inside its namespace (NaN if unread). */
export async function traffic(h: Host, metricsPort: number): Promise<Traffic> {
  const r = await exec(
    'ip',
    ['netns', 'exec', h.ns, 'curl', '-s', '-f', '-m', '10', `http://127.0.0.1:${metricsPort}/metrics`],
    15_000,
  );
  const v = (t: string) =>
    r.code === 0 ? metricValue(r.stdout, 'dragonfly_client_download_traffic', `type="${t}"`) : NaN;
  return { BACK_TO_SOURCE: v('BACK_TO_SOURCE'), REMOTE_PEER: v('REMOTE_PEER'), LOCAL_PEER: v('LOCAL_PEER') };
}

export function diffTraffic(a: Traffic, b: Traffic): Traffic {
  return {
    BACK_TO_SOURCE: b.BACK_TO_SOURCE - a.BACK_TO_SOURCE,
    REMOTE_PEER: b.REMOTE_PEER - a.REMOTE_PEER,
    LOCAL_PEER: b.LOCAL_PEER - a.LOCAL_PEER,
  };
}

// --- logs --------------------------------------------------------------------------------------------------------

interface LogLine {
  level?: number;
  msg?: string;
  taskId?: string;
  parents?: string[];
}

function* jsonLines(path: string): Generator<LogLine> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return;
  }
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      yield JSON.parse(line) as LogLine;
    } catch {
      // not JSON
    }
  }
}

/** The host name behind a peer or host id ("IP-hostname-…"), by its IP. */
export function hostOfId(id: string, nameOfIp: Map<string, string>): string {
  const ip = id.slice(0, id.indexOf('-'));
  return nameOfIp.get(ip) ?? ip;
}

/** Counts of a daemon's log before any line was read; `rescheduleSource` says how reschedules will be counted. */
export function emptyLogCounts(rescheduleSource: DaemonLogCounts['rescheduleSource']): DaemonLogCounts {
  return {
    candidateParents: 0,
    rescheduleSent: 0,
    reschedules: 0,
    rescheduleSource,
    backToSource: 0,
    schedulerFailed: 0,
    pieceFailed: 0,
    warn: 0,
    error: 0,
    parentsOffered: [],
    messages: {},
  };
}

export interface DaemonLogCounts {
  /** "scheduler gave candidate parents" lines (the first schedule and every answered reschedule). */
  candidateParents: number;
  /** Lines saying a ReschedulePeer was sent (none are logged today: then reschedules = candidateParents − 1). */
  rescheduleSent: number;
  reschedules: number;
  /** How `reschedules` was counted. */
  rescheduleSource: 'reschedule lines' | 'candidate-parents lines − 1';
  backToSource: number;
  schedulerFailed: number;
  pieceFailed: number;
  warn: number;
  error: number;
  /** Hosts the scheduler offered as candidate parents, in order of first offer. */
  parentsOffered: string[];
  /** Every message about the task, and every warn/error line, by message. */
  messages: Record<string, number>;
}

/** What a daemon's log says about one task. */
export function daemonLogCounts(
  path: string,
  taskId: string,
  nameOfIp: Map<string, string>,
): DaemonLogCounts {
  const c = emptyLogCounts('candidate-parents lines − 1');
  const offered = new Set<string>();
  for (const j of jsonLines(path)) {
    const level = j.level ?? 0;
    if (level >= 50) c.error++;
    else if (level >= 40) c.warn++;
    if (j.taskId !== taskId && level < 40) continue;
    const msg = j.msg ?? '';
    const key = level >= 40 ? `${level >= 50 ? 'error' : 'warn'}: ${msg}` : msg;
    c.messages[key] = (c.messages[key] ?? 0) + 1;
    if (j.taskId !== taskId) continue;
    if (msg === 'scheduler gave candidate parents') {
      c.candidateParents++;
      for (const id of j.parents ?? []) offered.add(hostOfId(id, nameOfIp));
    } else if (/reschedul/i.test(msg)) c.rescheduleSent++;
    else if (msg === 'scheduler says back to source') c.backToSource++;
    else if (msg === 'scheduler failed; back to source') c.schedulerFailed++;
    else if (msg === 'piece from parent failed') c.pieceFailed++;
  }
  if (c.rescheduleSent > 0) {
    c.reschedules = c.rescheduleSent;
    c.rescheduleSource = 'reschedule lines';
  } else {
    c.reschedules = Math.max(0, c.candidateParents - 1);
  }
  c.parentsOffered = [...offered];
  return c;
}

export interface SchedulerLogCounts {
  needBackToSource: number;
  normalTaskResponse: number;
  seedTriggered: number;
  warn: number;
  error: number;
  messages: Record<string, number>;
}

/** What the scheduler's log says (it runs fresh for every repeat, so every line counts). */
export function schedulerLogCounts(path: string): SchedulerLogCounts {
  const c: SchedulerLogCounts = {
    needBackToSource: 0,
    normalTaskResponse: 0,
    seedTriggered: 0,
    warn: 0,
    error: 0,
    messages: {},
  };
  for (const j of jsonLines(path)) {
    const level = j.level ?? 0;
    const msg = j.msg ?? '';
    if (level >= 50) c.error++;
    else if (level >= 40) c.warn++;
    const key = level >= 40 ? `${level >= 50 ? 'error' : 'warn'}: ${msg}` : msg;
    c.messages[key] = (c.messages[key] ?? 0) + 1;
    if (msg === 'send NeedBackToSourceResponse') c.needBackToSource++;
    else if (msg === 'send NormalTaskResponse') c.normalTaskResponse++;
    else if (msg === 'seed peer triggers download task') c.seedTriggered++;
  }
  return c;
}

// --- piece records -----------------------------------------------------------------------------------------------

/** One piece as a host stored it; times in ms since the repeat's downloads were launched. */
export interface PieceEvent {
  n: number;
  length: number;
  /** The parent's host name, 'origin' for back-to-source, 'local' for a local peer. */
  from: string;
  type: 'source' | 'peer' | 'local' | string;
  /** created_at and finished_at (the store sets both when the piece is written), and the download's cost. */
  created: number;
  finished: number;
  cost: number;
}

const TRAFFIC_TYPES: Record<number, PieceEvent['type']> = { 0: 'source', 1: 'peer', 2: 'local' };

interface PieceRow {
  number: number;
  length: number;
  parent_id: string | null;
  traffic_type: number;
  cost_ms: number;
  created_at: number;
  finished_at: number;
}

/**
 * The piece records of `taskId` in a daemon's metadata database (read-only, after the run), ordered by
 * finish time. Every piece of that store when none carries the task id.
 */
export function pieceTimeline(
  dbPath: string,
  taskId: string,
  t0: number,
  nameOfIp: Map<string, string>,
): { pieces: PieceEvent[]; error?: string } {
  let db: Database.Database | undefined;
  try {
    db = new Database(dbPath, { readonly: true, fileMustExist: true });
    const cols = 'number, length, parent_id, traffic_type, cost_ms, created_at, finished_at';
    let rows = db
      .prepare<[string], PieceRow>(
        `SELECT ${cols} FROM pieces WHERE task_id = ? ORDER BY finished_at, number`,
      )
      .all(taskId);
    if (rows.length === 0)
      rows = db.prepare<[], PieceRow>(`SELECT ${cols} FROM pieces ORDER BY finished_at`).all();
    return {
      pieces: rows.map((r) => {
        const type = TRAFFIC_TYPES[r.traffic_type] ?? `type ${r.traffic_type}`;
        return {
          n: r.number,
          length: r.length,
          from:
            type === 'source'
              ? 'origin'
              : type === 'local'
                ? 'local'
                : r.parent_id
                  ? hostOfId(r.parent_id, nameOfIp)
                  : '?',
          type,
          created: r.created_at - t0,
          finished: r.finished_at - t0,
          cost: r.cost_ms,
        };
      }),
    };
  } catch (e) {
    return { pieces: [], error: (e as Error).message };
  } finally {
    db?.close();
  }
}

export interface PieceSummary {
  pieces: number;
  bytes: number;
  /** Shares of the bytes by where they came from. */
  fromSeed: number;
  fromPeers: number;
  fromSource: number;
  /** Seconds since launch: the first piece's start (finished − cost), the first and the last piece's finish. */
  firstStartS: number;
  firstS: number;
  lastS: number;
}

export function summarizePieces(pieces: PieceEvent[]): PieceSummary {
  const bytes = pieces.reduce((s, p) => s + p.length, 0);
  const share = (f: (p: PieceEvent) => boolean) =>
    bytes > 0 ? pieces.filter(f).reduce((s, p) => s + p.length, 0) / bytes : NaN;
  const fin = pieces.map((p) => p.finished);
  return {
    pieces: pieces.length,
    bytes,
    fromSeed: share((p) => p.type === 'peer' && p.from === 'seed'),
    fromPeers: share((p) => p.type === 'peer' && p.from !== 'seed'),
    fromSource: share((p) => p.type === 'source'),
    firstStartS: pieces.length ? Math.min(...pieces.map((p) => p.finished - p.cost)) / 1000 : NaN,
    firstS: pieces.length ? Math.min(...fin) / 1000 : NaN,
    lastS: pieces.length ? Math.max(...fin) / 1000 : NaN,
  };
}

/** Bytes each host uploaded to the others, from every host's piece records (payload, no TCP/IP overhead). */
export function uploadedBytes(timelines: Map<string, PieceEvent[]>): Map<string, number> {
  const up = new Map<string, number>();
  for (const pieces of timelines.values()) {
    for (const p of pieces) if (p.type === 'peer') up.set(p.from, (up.get(p.from) ?? 0) + p.length);
  }
  return up;
}

// --- CPU ---------------------------------------------------------------------------------------------------------

/** CPU time (ms) of this process's reaped children so far (cutime + cstime): the dfget clients of a run. */
export function reapedChildrenCpuMs(): number {
  try {
    const text = readFileSync('/proc/self/stat', 'utf8');
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    // Fields 16 and 17 (cutime, cstime) are the 14th and 15th after the command name; clock ticks of 10 ms.
    return (Number(f[13]) + Number(f[14])) * 10;
  } catch {
    return NaN;
  }
}

/** Busy and total jiffies of the whole machine (/proc/stat), for the machine's load over a run. */
export function systemCpu(): { busy: number; total: number } {
  try {
    const first = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
    const v = first.trim().split(/\s+/).slice(1).map(Number);
    const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
    return { busy: total - v[3]! - v[4]!, total };
  } catch {
    return { busy: NaN, total: NaN };
  }
}

export interface CpuSnapshot {
  servers: number[];
  children: number;
  self: number;
  system: { busy: number; total: number };
}

export function cpuSnapshot(pids: number[]): CpuSnapshot {
  const u = process.cpuUsage();
  return {
    servers: pids.map((p) => procCpuMs(p)),
    children: reapedChildrenCpuMs(),
    self: (u.user + u.system) / 1000,
    system: systemCpu(),
  };
}
