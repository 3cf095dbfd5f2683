// One host id, one daemon. A host id is `{ip}-{hostname}` (spec/scheduler.md §5), so two daemons on one machine
// with the default `host.hostname` announce the same id with different ports. Upstream's scheduler keeps the last
// announce and silently loses the other daemon: its peers are offered as parents at the wrong ports, and peers
// go back to the origin though another daemon holds the task. The embedded scheduler refuses the second daemon
// instead (ALREADY_EXISTS, naming `host.hostname`), while still accepting everything upstream's peers do:
// - the same ports again: a periodic re-announce, a reconnect, or the same daemon restarted;
// - other ports on the connection the host was announced on (one process);
// - other ports when the known host has expired (not announced for twice its interval), or when nothing answers
//   on its ports any more (the previous daemon is gone: a crash, then a restart on new ports).

import { connect } from 'node:net';
import type { Host as HostMessage } from '../../gen/common.js';
import type { Host } from './resources.js';
import { alreadyExists } from './status.js';

/** How long the liveness probe of the known host's port may take. */
export const HOST_PROBE_TIMEOUT_MS = 1000;

/** True when something accepts a TCP connection at ip:port within timeoutMs. */
export type PortProbe = (ip: string, port: number, timeoutMs: number) => Promise<boolean>;

export const tcpProbe: PortProbe = (ip, port, timeoutMs) =>
  new Promise((resolve) => {
    const socket = connect({ host: ip, port, timeout: timeoutMs });
    const done = (alive: boolean) => {
      socket.destroy();
      resolve(alive);
    };
    socket.once('connect', () => done(true));
    socket.once('timeout', () => done(false));
    socket.once('error', () => done(false));
  });

const portsOf = (h: Pick<HostMessage, 'port' | 'downloadPort'>): number[] => [
  ...new Set([h.port, h.downloadPort].filter((p) => p > 0)),
];

const samePorts = (
  a: Pick<HostMessage, 'port' | 'downloadPort'>,
  b: Pick<HostMessage, 'port' | 'downloadPort'>,
) => a.port === b.port && a.downloadPort === b.downloadPort;

/** The refusal: names the host id, both daemons' ports and the fix. */
export function hostIdTakenMessage(known: HostMessage, announced: HostMessage): string {
  return (
    `host id ${known.id} is already announced by another daemon (ip ${known.ip}, port ${known.port}); this ` +
    `daemon announces port ${announced.port}. A host id is "{host.ip}-{host.hostname}", and two daemons with one ` +
    "id take each other's place and lose P2P: set host.hostname in dfdaemon.yaml to a name unique to each " +
    'daemon (or give each daemon its own host.ip)'
  );
}

/**
 * Resolves when `announced` may replace (or refresh) `known`; rejects with ALREADY_EXISTS when another live daemon
 * holds the id. `from` is the gRPC peer address of the announcing call.
 */
export async function checkHostIdentity(
  known: Host,
  announced: HostMessage,
  from: string,
  now: number,
  probe: PortProbe = tcpProbe,
): Promise<void> {
  const info = known.info;
  if (samePorts(info, announced)) return;
  if (from !== '' && from === known.announcedVia) return;
  if (known.intervalMs > 0 && now - known.updatedAt.getTime() > 2 * known.intervalMs) return;
  // Probe the known host's ports, except any the announcing daemon claims for itself at the same ip.
  const own = info.ip === announced.ip ? new Set(portsOf(announced)) : new Set<number>();
  const ports = portsOf(info).filter((p) => !own.has(p));
  const alive = await Promise.all(ports.map((p) => probe(info.ip, p, HOST_PROBE_TIMEOUT_MS)));
  if (alive.some(Boolean)) throw alreadyExists(hostIdTakenMessage(info, announced));
}
