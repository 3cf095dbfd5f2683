// The distribution bound (Kumar & Ross, "Peer-assisted file distribution: the minimum distribution time", 2006):
// a server (the seed) with upload u_s and N peers with uploads u_i and downloads d_i cannot get a file of S bits
// to every peer in less than
//
//   T = max( S/u_s, S/d_min, N·S/(u_s + Σu_i) )
//
// (the seed must send every bit at least once; the slowest downloader must take S; the N·S bits delivered all
// leave some uplink). Here the seed starts cold, so one more term applies: the file enters the swarm once,
// through the origin's uplink and the seed's downlink, S/min(u_o, d_s). With every link at R all four terms are
// at most S/R, i.e. the bound is the one-link time S·8/R.

export interface Swarm {
  /** File size in bytes. */
  size: number;
  /** Rates in bit/s. */
  seedUp: number;
  peerUp: number[];
  peerDown: number[];
  /** min(origin upload, seed download), for a cold seed; undefined when the seed already has the file. */
  sourceIn?: number;
}

export interface Bound {
  seconds: number;
  terms: { name: string; formula: string; seconds: number }[];
  /** The binding term's name (names joined by ' = ' when several tie). */
  binding: string;
}

export function distributionBound(s: Swarm): Bound {
  const bits = s.size * 8;
  const n = s.peerUp.length;
  const sumUp = s.peerUp.reduce((a, b) => a + b, 0);
  const dMin = Math.min(...s.peerDown);
  const terms = [
    { name: 'seed upload', formula: 'S/u_s', seconds: bits / s.seedUp },
    { name: 'slowest download', formula: 'S/d_min', seconds: bits / dMin },
    { name: 'total upload', formula: `N·S/(u_s+Σu_i), N=${n}`, seconds: (n * bits) / (s.seedUp + sumUp) },
  ];
  if (s.sourceIn !== undefined) {
    terms.push({ name: 'cold seed', formula: 'S/min(u_o,d_s)', seconds: bits / s.sourceIn });
  }
  const seconds = Math.max(...terms.map((t) => t.seconds));
  // Equal links tie several terms: name them all.
  const binding = terms
    .filter((t) => t.seconds >= seconds * (1 - 1e-9))
    .map((t) => t.name)
    .join(' = ');
  return { seconds, terms, binding };
}

/** A swarm where every link (origin, seed, peers; both directions) runs at `rate` bit/s. */
export function equalLinks(size: number, peers: number, rate: number): Swarm {
  return {
    size,
    seedUp: rate,
    peerUp: Array<number>(peers).fill(rate),
    peerDown: Array<number>(peers).fill(rate),
    sourceIn: rate,
  };
}

/** "max(S/u_s 21.5 s, …) = 21.5 s" */
export function boundText(b: Bound): string {
  return `max(${b.terms.map((t) => `${t.formula} ${t.seconds.toFixed(1)} s`).join('; ')}) = ${b.seconds.toFixed(1)} s`;
}
