// Which client runs on which host of a swarm: ours everywhere (bench:p2p), or the upstream Rust client
// (dragonfly-client) everywhere or on some hosts (bench:upstream:swarm, issue 13). Every mode runs under the same
// scheduler (dfscheduler) on the same network, so the modes differ only in the peers.

export type DaemonKind = 'ours' | 'rust';

export interface Mode {
  name: string;
  what: string;
  seed: DaemonKind;
  /** The kind of peer i (1-based). */
  peer: (i: number) => DaemonKind;
}

const odd = (i: number) => i % 2 === 1;

export const MODES: Record<string, Mode> = {
  ours: { name: 'ours', what: 'all ours', seed: 'ours', peer: () => 'ours' },
  rust: { name: 'rust', what: 'all Rust (dragonfly-client)', seed: 'rust', peer: () => 'rust' },
  mixed: {
    name: 'mixed',
    what: 'our seed; peers 1, 3, 5, … Rust, the others ours',
    seed: 'ours',
    peer: (i) => (odd(i) ? 'rust' : 'ours'),
  },
  'mixed-rust-seed': {
    name: 'mixed-rust-seed',
    what: 'a Rust seed; peers 1, 3, 5, … ours, the others Rust',
    seed: 'rust',
    peer: (i) => (odd(i) ? 'ours' : 'rust'),
  },
};

/** The kind of every host: [seed, peer1, …, peerN]. */
export function kindsOf(mode: Mode, peers: number): DaemonKind[] {
  return [mode.seed, ...Array.from({ length: peers }, (_, i) => mode.peer(i + 1))];
}

/** A comma list of mode names (P2P_MODES); an unknown name is an error naming the known ones. */
export function parseModes(list: string, what = 'P2P_MODES'): Mode[] {
  const names = list
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (names.length === 0) throw new Error(`${what} is empty (known: ${Object.keys(MODES).join(', ')})`);
  return names.map((n) => {
    const m = MODES[n];
    if (!m) throw new Error(`${what}: unknown mode "${n}" (known: ${Object.keys(MODES).join(', ')})`);
    return m;
  });
}

/** Whether any host of these modes runs the Rust client (then its binaries must be installed). */
export function needsRust(modes: Mode[], peers: number): boolean {
  return modes.some((m) => kindsOf(m, peers).includes('rust'));
}
