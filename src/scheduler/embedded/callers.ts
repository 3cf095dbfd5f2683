// Who may act on what in the embedded scheduler (issue 16 item 7): the caller's address binds the hosts it
// announced (only that address may change or delete a host, register or delete its peers, and list the hosts), and
// ids and announced hosts are bounded. Upstream's scheduler lets any caller do all of it.

import { ipOfPeer } from '../../core/addresses.js';
import type { Host } from './resources.js';
import { invalidArgument, permissionDenied } from './status.js';

/** The caller's IP ("unknown" when grpc-js cannot tell), which the host-ownership checks compare. */
export function callerIpOf(call: { getPeer(): string }): string {
  return ipOfPeer(call.getPeer()) ?? 'unknown';
}

/** Longest host, peer or task id accepted (ours are < 300 characters: an IP, a hostname, a UUID, "-seed"). */
export const MAX_ID_LENGTH = 512;
/** Largest announced Host message kept (a real one is 1–2 KiB); the host table holds maxHosts of them. */
export const MAX_HOST_MESSAGE_BYTES = 16 * 1024;

/** Refuses an id longer than MAX_ID_LENGTH, naming the field (INVALID_ARGUMENT, as the Go validators answer). */
export function checkIdLength(field: string, id: string): void {
  if (id.length > MAX_ID_LENGTH) {
    throw invalidArgument(
      `invalid ${field}: ${id.length} characters; at most ${MAX_ID_LENGTH} are accepted by this scheduler`,
    );
  }
}

/**
 * The host as the caller may act on it: only the address that announced a host may change it, delete it, or
 * register or delete its peers (a host that another address announced is PERMISSION_DENIED).
 */
export function ownHost(host: Host, callerIp: string, action: string): Host {
  if (host.announcedFrom !== undefined && host.announcedFrom !== callerIp) {
    throw permissionDenied(
      `${action}: host ${host.id} was announced from ${host.announcedFrom}; ${callerIp} may not act for it`,
    );
  }
  return host;
}
