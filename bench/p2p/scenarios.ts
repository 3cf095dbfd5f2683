// The scenarios of issue 11 and the environment that selects and adjusts them.

import { MIB } from './content.js';
import { kindsOf, parseModes, type Mode } from './modes.js';

export interface Scenario {
  name: string;
  /** Peers downloading at once (the seed comes on top). */
  peers: number;
  /** tc rate of every host link, both directions (e.g. 100mbit). */
  rate: string;
  rateBits: number;
  /** tc burst. */
  burst: string;
  /** tbf latency: how long a packet may queue at a link (P2P_TBF_LATENCY, default 400ms). */
  latency: string;
  size: number;
  /** Target for the slowest peer / distribution bound (raw link rate). */
  target: number;
  what: string;
  /** Env overrides that changed the preset (the target was set for the preset). */
  overridden: string[];
}

interface Preset {
  peers: number;
  rate: string;
  size: number;
  target: number;
  what: string;
}

export const PRESETS: Record<string, Preset> = {
  'cold-seed': {
    peers: 1,
    rate: '100mbit',
    size: 256 * MIB,
    target: 1.1,
    what: 'one peer through a cold seed (the seed fetches from the origin while the peer takes from it)',
  },
  '8x256M': {
    peers: 7,
    rate: '100mbit',
    size: 256 * MIB,
    target: 1.3,
    what: '8 hosts (seed + 7 peers), 256 MiB',
  },
  '8x1G': {
    peers: 7,
    rate: '100mbit',
    size: 1024 * MIB,
    target: 1.15,
    what: '8 hosts (seed + 7 peers), 1 GiB',
  },
  '32x64M': {
    peers: 32,
    rate: '10mbit',
    size: 64 * MIB,
    target: 1.5,
    what: 'seed + 32 peers at a rate where the CPU is not the bottleneck, 64 MiB',
  },
};

/** Origin bytes / file and seed upload / file targets (every scenario). */
export const ORIGIN_TARGET = 1.02;
export const SEED_UPLOAD_TARGET = 1.1;
/** A run is CPU-bound when the benchmark's processes used more than this share of all cores over the run. */
export const CPU_BOUND_SHARE = 0.8;

export function parseSize(s: string, what = 'P2P_SIZE'): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*$/i.exec(s);
  if (!m) throw new Error(`${what}: cannot parse "${s}" (bytes, or e.g. 256MiB)`);
  const unit = (m[2] ?? '').toLowerCase().replace(/i?b$/, '');
  const mult = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 }[unit];
  if (mult === undefined) throw new Error(`${what}: unknown unit in "${s}"`);
  return Math.round(Number(m[1]) * mult);
}

/** A tc rate ("200mbit"): SI multiples as tc reads them. Returns bits per second. */
export function parseRate(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(bit|kbit|mbit|gbit)$/i.exec(s.trim());
  if (!m) throw new Error(`P2P_RATE: cannot parse "${s}" (e.g. 100mbit)`);
  const mult = { bit: 1, kbit: 1e3, mbit: 1e6, gbit: 1e9 }[m[2]!.toLowerCase() as 'bit']!;
  return Number(m[1]) * mult;
}

export interface Settings {
  scenarios: Scenario[];
  /** Who runs on which host; each repeat runs every mode (bench:p2p: ours only). */
  modes: Mode[];
  repeats: number;
  /** Seconds of curl over one shaped link for the goodput (capped at the file size). */
  goodputSeconds: number;
  /** A peer's download is given up after this many × the raw-rate bound (at least 2 minutes). */
  timeoutFactor: number;
  logLevel: string;
  uploadLimit?: string;
  /** Our daemons' storage.server.queueLimit (busy answers) where every host is ours; undefined: unset. */
  queueLimit?: number;
  /** P2P_QUEUE_LIMIT was given: then it applies in mixed modes too. */
  queueLimitGiven: boolean;
  /** Our daemons' storage.server.cutThrough (P2P_CUT_THROUGH 1 or 0); undefined: dfdaemon's default. */
  cutThrough?: boolean;
  keepLogsDir?: string;
  resultsDir?: string;
}

/** An on/off variable: 1/true or 0/false; unset or empty: undefined. */
function flag(env: NodeJS.ProcessEnv, name: string): boolean | undefined {
  const v = env[name];
  if (v === undefined || v === '') return undefined;
  if (v === '1' || v === 'true') return true;
  if (v === '0' || v === 'false') return false;
  throw new Error(`${name} must be 1 or 0 (true or false), got "${v}"`);
}

/** What an entry point chooses when the environment does not: the scenarios and the modes. */
export interface SettingsDefaults {
  scenarios: string[];
  modes: string;
}

const P2P_DEFAULTS: SettingsDefaults = { scenarios: Object.keys(PRESETS), modes: 'ours' };

/**
 * Reads the environment: P2P_SCENARIOS (comma list of preset names, default all), P2P_MODES (comma list of
 * modes.ts names, default ours), P2P_REPEATS (default 3), and overrides applied to every selected scenario:
 * P2P_PEERS (not to cold-seed), P2P_RATE, P2P_SIZE, P2P_BURST.
 */
export function settingsFromEnv(
  env: NodeJS.ProcessEnv = process.env,
  defaults: SettingsDefaults = P2P_DEFAULTS,
): Settings {
  const names = (env.P2P_SCENARIOS || defaults.scenarios.join(','))
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const n of names) {
    if (!(n in PRESETS))
      throw new Error(`P2P_SCENARIOS: unknown "${n}" (known: ${Object.keys(PRESETS).join(', ')})`);
  }
  const int = (name: string, dflt: number, min: number, max: number) => {
    const v = Number(env[name] ?? dflt);
    if (!Number.isInteger(v) || v < min || v > max)
      throw new Error(`${name} must be an integer ${min}..${max}`);
    return v;
  };
  const scenarios = names.map((name): Scenario => {
    const p = PRESETS[name]!;
    const overridden: string[] = [];
    let peers = p.peers;
    if (env.P2P_PEERS && name !== 'cold-seed') {
      peers = int('P2P_PEERS', p.peers, 1, 60);
      if (peers !== p.peers) overridden.push(`peers ${peers}`);
    }
    const rate = env.P2P_RATE || p.rate;
    if (rate !== p.rate) overridden.push(`rate ${rate}`);
    const size = env.P2P_SIZE ? parseSize(env.P2P_SIZE) : p.size;
    if (size !== p.size) overridden.push(`size ${(size / MIB).toFixed(size % MIB ? 1 : 0)} MiB`);
    const rateBits = parseRate(rate);
    const burst = env.P2P_BURST || `${Math.max(16 * 1024, Math.round(rateBits / 8 / 200))}b`;
    // A non-default queue makes the figures incomparable with the targets' runs: the report says so.
    const latency = env.P2P_TBF_LATENCY || '400ms';
    if (latency !== '400ms') overridden.push(`tbf latency ${latency}`);
    return { name, peers, rate, rateBits, burst, latency, size, target: p.target, what: p.what, overridden };
  });
  const logLevel = env.P2P_LOG_LEVEL || 'info';
  if (!['trace', 'debug', 'info', 'warn', 'error'].includes(logLevel)) {
    throw new Error(`P2P_LOG_LEVEL: "${logLevel}" is not trace, debug, info, warn or error`);
  }
  return {
    scenarios,
    modes: parseModes(env.P2P_MODES || defaults.modes),
    repeats: int('P2P_REPEATS', 3, 1, 20),
    goodputSeconds: int('P2P_GOODPUT_SECONDS', 10, 2, 600),
    timeoutFactor: int('P2P_TIMEOUT_FACTOR', 5, 2, 50),
    logLevel,
    uploadLimit: env.P2P_UPLOAD_LIMIT || undefined,
    // Where every peer is ours busy answers are on (none waiting: a child on a slow link takes one body at a time
    // and asks another holder at once) unless P2P_QUEUE_LIMIT says otherwise ('' = unset).
    queueLimit: env.P2P_QUEUE_LIMIT === '' ? undefined : int('P2P_QUEUE_LIMIT', 0, 0, 1_000_000),
    queueLimitGiven: env.P2P_QUEUE_LIMIT !== undefined,
    cutThrough: flag(env, 'P2P_CUT_THROUGH'),
    keepLogsDir: env.P2P_KEEP_LOGS || undefined,
    resultsDir: env.P2P_RESULTS_DIR || undefined,
  };
}

/**
 * Our daemons' queueLimit in a mode: busy answers are ours alone (a Rust child would take one for a failed piece),
 * so a mode with a Rust host leaves it unset unless P2P_QUEUE_LIMIT was given.
 */
export function queueLimitIn(mode: Mode, peers: number, st: Settings): number | undefined {
  const allOurs = kindsOf(mode, peers).every((k) => k === 'ours');
  return allOurs || st.queueLimitGiven ? st.queueLimit : undefined;
}

/** The raw-rate bound of a scenario with equal links: S·8/R. */
export function floorSeconds(s: Scenario): number {
  return (s.size * 8) / s.rateBits;
}

/** Bytes the goodput curl fetches: `seconds` at the link rate, whole MiB, at least 4 MiB, at most the file. */
export function goodputBytes(s: Scenario, seconds: number): number {
  const b = Math.max(4 * MIB, Math.round(((s.rateBits / 8) * seconds) / MIB) * MIB);
  return Math.min(s.size, b);
}

/** Budget of one repeat (ms), for timeouts and the watchdog: start-up, goodput, download, verify, stop. */
export function repeatBudgetMs(s: Scenario, st: Settings): number {
  const hosts = s.peers + 1;
  const startup = 30_000 + 2000 * hosts;
  const goodput = 2 * st.goodputSeconds * 1000 + 15_000;
  const download = downloadTimeoutMs(s, st);
  // sha256 of every output at ≥ 100 MiB/s, the metadata and the stop.
  const verify = (s.peers * s.size * 1000) / (100 * MIB) + 20_000;
  return startup + goodput + download + verify;
}

export function downloadTimeoutMs(s: Scenario, st: Settings): number {
  return Math.max(120_000, floorSeconds(s) * st.timeoutFactor * 1000);
}

/** Budget of a scenario (ms): the network plus every repeat of every mode. */
export function scenarioBudgetMs(s: Scenario, st: Settings): number {
  return 10_000 + 1000 * (s.peers + 3) + st.repeats * st.modes.length * repeatBudgetMs(s, st);
}
