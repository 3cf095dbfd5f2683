// What a Rust dfdaemon (dragonfly-client 1.5) tells about a run, read from its console log: its metadata lives in
// RocksDB, which nothing here reads, so its piece timeline comes from the debug lines its task module writes for
// every piece ("start to download piece TASK-N from parent \"PEER\"", "finished piece TASK-N from parent
// Some(\"PEER\") using protocol tcp", "… from source"), and its scheduler exchanges from the info lines ("normal
// task response: [PEERS]", "need back to source response"). Lines are tracing's compact format: an RFC 3339
// time, the level, spans, `file:line:`, the message, fields.

import { readFileSync } from 'node:fs';
import { emptyLogCounts, hostOfId, type DaemonLogCounts, type PieceEvent } from './collect.js';

interface RustLine {
  ms: number;
  level: 'TRACE' | 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';
  /** The text after `file:line:` (the message and the fields). */
  text: string;
}

const LINE = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z\s+(TRACE|DEBUG|INFO|WARN|ERROR)\s+(.*)$/;
/** Where the message starts: after the source location tracing prints (`src/resource/task.rs:1493:`). */
const LOCATION = /\S+\.rs:\d+: /;

function* rustLines(path: string): Generator<RustLine> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return;
  }
  for (const raw of text.split('\n')) {
    const m = LINE.exec(raw);
    if (!m) continue;
    // Date.parse takes milliseconds; tracing writes nanoseconds.
    const ms = Date.parse(`${m[1]}${(m[2] ?? '.000').slice(0, 4).padEnd(4, '0')}Z`);
    const loc = LOCATION.exec(m[4]!);
    const text = loc ? m[4]!.slice(loc.index + loc[0].length) : m[4]!;
    yield { ms, level: m[3] as RustLine['level'], text };
  }
}

const START = /^start to download piece ([0-9a-f]+)-(\d+) from (?:parent "([^"]+)"|source)/;
const FINISH = /^finished piece ([0-9a-f]+)-(\d+) from (?:parent Some\("([^"]+)"\)|(source)|(local))/;

/**
 * The pieces of `taskId` a Rust dfdaemon stored, by the finish lines of its log (start lines give the cost),
 * ordered by finish time; times in ms since `t0`. `lengthOf(n)` is piece n's length (the log does not say).
 */
export function rustPieceTimeline(
  logPath: string,
  taskId: string,
  t0: number,
  nameOfIp: Map<string, string>,
  lengthOf: (n: number) => number,
): { pieces: PieceEvent[]; error?: string } {
  const started = new Map<number, number>();
  const pieces: PieceEvent[] = [];
  for (const l of rustLines(logPath)) {
    const s = START.exec(l.text);
    if (s && s[1] === taskId) {
      // A retry from another parent restarts the clock: the cost is the attempt that succeeded.
      started.set(Number(s[2]), l.ms);
      continue;
    }
    const f = FINISH.exec(l.text);
    if (!f || f[1] !== taskId) continue;
    const n = Number(f[2]);
    const type = f[3] ? 'peer' : f[4] ? 'source' : 'local';
    const begin = started.get(n) ?? l.ms;
    pieces.push({
      n,
      length: lengthOf(n),
      from: type === 'peer' ? hostOfId(f[3]!, nameOfIp) : type === 'source' ? 'origin' : 'local',
      type,
      created: begin - t0,
      finished: l.ms - t0,
      cost: l.ms - begin,
    });
  }
  pieces.sort((a, b) => a.finished - b.finished || a.n - b.n);
  return pieces.length > 0
    ? { pieces }
    : { pieces, error: `no "finished piece" line for the task in ${logPath} (is the task module at debug?)` };
}

const OFFERED = /^normal task response: \[(.*)\]/;

/** The same counts as daemonLogCounts (collect.ts) gives for ours, from a Rust dfdaemon's log. */
export function rustLogCounts(
  logPath: string,
  taskId: string,
  nameOfIp: Map<string, string>,
): DaemonLogCounts {
  const c = emptyLogCounts('reschedule lines');
  const offered = new Set<string>();
  for (const l of rustLines(logPath)) {
    const bad = l.level === 'WARN' || l.level === 'ERROR';
    if (l.level === 'ERROR') c.error++;
    else if (l.level === 'WARN') c.warn++;
    const ours = l.text.includes(taskId);
    if (!ours && !bad) continue;
    // Messages carry ids and error text after the first colon: count by what comes before it.
    const msg = l.text.split(/: |\s+\w+=/)[0]!;
    const key = bad ? `${l.level.toLowerCase()}: ${msg}` : msg;
    if (bad || !/^(start to download|finished) piece/.test(msg)) c.messages[key] = (c.messages[key] ?? 0) + 1;
    const o = OFFERED.exec(l.text);
    if (o) {
      c.candidateParents++;
      for (const id of o[1]!.match(/"([^"]+)"/g) ?? []) offered.add(hostOfId(id.slice(1, -1), nameOfIp));
    } else if (l.text.startsWith('sent ReschedulePeerRequest')) c.rescheduleSent++;
    else if (l.text.startsWith('need back to source response')) c.backToSource++;
    else if (/^download piece \S+ from parent .* error/.test(l.text)) c.pieceFailed++;
  }
  c.reschedules = c.rescheduleSent;
  c.parentsOffered = [...offered];
  return c;
}
