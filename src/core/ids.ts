// Host, peer and piece ids in upstream's formats (id_generator/mod.rs, storage/metadata.rs). The scheduler treats
// them as opaque strings, but the formats are kept so logs and `dfctl` output read like upstream's.

import { randomUUID } from 'node:crypto';

// Upstream appends this to host and peer ids of seed peers, which is how they are told apart in logs.
const SEED_PEER_SUFFIX = 'seed';

/** `{ip}-{hostname}`, or `{ip}-{hostname}-seed` for a seed peer. Stable across restarts on purpose. */
export function hostId(ip: string, hostname: string, seed = false): string {
  return seed ? `${ip}-${hostname}-${SEED_PEER_SUFFIX}` : `${ip}-${hostname}`;
}

/**
 * `{ip}-{hostname}-{uuid}` (seed: `…-{uuid}-seed`), a new one per download. The uuid is a lowercase hyphenated
 * v4 as Uuid::new_v4() prints it; tests may pass a fixed one.
 */
export function peerId(ip: string, hostname: string, seed = false, uuid: string = randomUUID()): string {
  return seed ? `${ip}-${hostname}-${uuid}-${SEED_PEER_SUFFIX}` : `${ip}-${hostname}-${uuid}`;
}

/** `{taskId}-{number}`: the storage key of a piece, and what the Vortex server looks pieces up by. */
export function pieceId(taskId: string, number: number): string {
  return `${taskId}-${number}`;
}
