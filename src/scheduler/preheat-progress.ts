// How far a preheat has come, from what any scheduler.v2 server answers (ours or Go's): ListHosts says which hosts
// the preheat's scope covers, StatFile / StatImage say which of them hold each URL's task finished. PreheatFile and
// PreheatImage answer as soon as the downloads are scheduled (upstream's contract), so `dfctl task preheat --wait`
// polls this until every URL is finished on as many hosts as the scope picks.

/** PreheatFileRequest.scope / PreheatImageRequest.scope values (Go manager/types SingleSeedPeerScope …). */
export const PREHEAT_SCOPES = ['single_seed_peer', 'all_seed_peers', 'all_peers'] as const;
export type PreheatScope = (typeof PREHEAT_SCOPES)[number];

/** A host as ListHosts names it. */
export interface ListedHost {
  ip: string;
  hostname: string;
  /** 0 normal, 1–3 seed peers. */
  type: number;
}

/** A host as StatFile / StatImage name it, with the URLs it holds. */
export interface PeerHolding {
  ip: string;
  hostname: string;
  items: { url: string; isFinished?: boolean }[];
}

export interface ScopeSelection {
  scope: string;
  ips: string[];
  count?: number;
  percentage?: number;
}

const isSeed = (h: ListedHost) => h.type !== 0;
const key = (h: { ip: string; hostname: string }) => `${h.ip}\u0000${h.hostname}`;

/**
 * The hosts of the scope's kind, and how many of them must hold each URL: the scheduler's selection (ips, then
 * count, then percentage rounded down but at least one, else all; one seed for single_seed_peer).
 */
export function preheatTargets(
  hosts: ListedHost[],
  s: ScopeSelection,
): { kind: ListedHost[]; needed: number } {
  const kind = hosts.filter((h) => (s.scope === 'all_peers' ? !isSeed(h) : isSeed(h)));
  if (s.scope === 'single_seed_peer') return { kind, needed: Math.min(1, kind.length) };
  if (s.ips.length > 0) {
    const picked = kind.filter((h) => s.ips.includes(h.ip));
    return { kind: picked, needed: picked.length };
  }
  let needed = kind.length;
  if (s.count !== undefined) needed = Math.min(s.count, kind.length);
  else if (s.percentage !== undefined) {
    needed = Math.max(1, Math.min(kind.length, Math.floor((kind.length * s.percentage) / 100)));
  }
  return { kind, needed };
}

export interface PreheatProgress {
  /** Σ over URLs of min(hosts of the scope holding it finished, needed). */
  done: number;
  /** URLs × needed. */
  total: number;
}

export function preheatProgress(
  urls: string[],
  peers: PeerHolding[],
  targets: { kind: ListedHost[]; needed: number },
): PreheatProgress {
  const inScope = new Set(targets.kind.map(key));
  let done = 0;
  for (const url of urls) {
    const finished = peers.filter(
      (p) => inScope.has(key(p)) && p.items.some((i) => i.url === url && i.isFinished === true),
    ).length;
    done += Math.min(finished, targets.needed);
  }
  return { done, total: urls.length * targets.needed };
}
