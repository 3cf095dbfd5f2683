// The network: one namespace holding a bridge `br0`, and one namespace per host (the origin, the seed, the
// peers) with a veth `eth0` whose other end is a port of br0. Every eth0 (the host's egress) and every bridge
// port (the host's ingress) gets `tbf rate R burst B latency L` (L 400ms unless P2P_TBF_LATENCY says otherwise), so
// each host has R up and R down.
// All addresses live only inside these namespaces; names carry the run's random suffix.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { exec, log, must, namespaces } from './procs.js';

export interface Host {
  /** origin, seed, peer1, peer2, … */
  name: string;
  ns: string;
  ip: string;
  /** The host's working dir (configs, storage, outputs). */
  dir: string;
  /** The bridge-side veth name. */
  port: string;
}

export interface Topology {
  bridgeNs: string;
  origin: Host;
  /** hosts[0] is the seed, hosts[1..] the peers. */
  hosts: Host[];
  rate: string;
  burst: string;
  /** How long a packet may wait in a tbf queue: the queue's length at the rate. */
  latency: string;
}

async function shape(ns: string, dev: string, link: Link): Promise<void> {
  await must('ip', [
    ...['netns', 'exec', ns, 'tc', 'qdisc', 'add', 'dev', dev, 'root', 'tbf'],
    ...['rate', link.rate, 'burst', link.burst, 'latency', link.latency],
  ]);
}

/** One host link's shape. */
interface Link {
  rate: string;
  burst: string;
  latency: string;
}

async function makeBridge(ns: string): Promise<void> {
  await must('ip', ['netns', 'add', ns]);
  namespaces.push(ns);
  await must('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  await must('ip', ['-n', ns, 'link', 'add', 'br0', 'type', 'bridge']);
  await must('ip', ['-n', ns, 'link', 'set', 'br0', 'up']);
}

async function makeHost(h: Host, bridgeNs: string, link: Link): Promise<void> {
  await must('ip', ['netns', 'add', h.ns]);
  namespaces.push(h.ns);
  await must('ip', ['-n', h.ns, 'link', 'set', 'lo', 'up']);
  await must('ip', [
    '-n',
    h.ns,
    'link',
    'add',
    'eth0',
    'type',
    'veth',
    'peer',
    'name',
    h.port,
    'netns',
    bridgeNs,
  ]);
  await must('ip', ['-n', h.ns, 'addr', 'add', `${h.ip}/24`, 'dev', 'eth0']);
  await must('ip', ['-n', h.ns, 'link', 'set', 'eth0', 'up']);
  await must('ip', ['-n', bridgeNs, 'link', 'set', h.port, 'master', 'br0']);
  await must('ip', ['-n', bridgeNs, 'link', 'set', h.port, 'up']);
  await shape(h.ns, 'eth0', link);
  await shape(bridgeNs, h.port, link);
}

/**
 * Makes the bridge, the origin and `peers + 1` hosts (the seed and the peers) under `prefix` (a unique
 * namespace-name prefix) on `net`.0/24, with their dirs under `dir`.
 */
export async function makeTopology(o: {
  prefix: string;
  net: string;
  peers: number;
  rate: string;
  burst: string;
  latency: string;
  dir: string;
}): Promise<Topology> {
  const t0 = performance.now();
  const bridgeNs = `${o.prefix}-br`;
  await makeBridge(bridgeNs);
  const origin: Host = {
    name: 'origin',
    ns: `${o.prefix}-o`,
    ip: `${o.net}.2`,
    dir: join(o.dir, 'origin'),
    port: 'vo',
  };
  const hosts: Host[] = Array.from({ length: o.peers + 1 }, (_, i) => ({
    name: i === 0 ? 'seed' : `peer${i}`,
    ns: `${o.prefix}-h${i}`,
    ip: `${o.net}.${10 + i}`,
    dir: join(o.dir, `h${i}`),
    port: `v${i}`,
  }));
  for (const h of [origin, ...hosts]) {
    mkdirSync(h.dir, { recursive: true });
    await makeHost(h, bridgeNs, o);
  }
  log(`network: ${hosts.length + 2} namespaces in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return { bridgeNs, origin, hosts, rate: o.rate, burst: o.burst, latency: o.latency };
}

/** Bytes through a namespace's eth0 so far (NaN when unreadable). */
export async function ifaceBytes(ns: string): Promise<{ rx: number; tx: number }> {
  const r = await exec('ip', ['-n', ns, '-s', '-j', 'link', 'show', 'eth0'], 5000);
  try {
    const j = JSON.parse(r.stdout) as { stats64?: { rx: { bytes: number }; tx: { bytes: number } } }[];
    return { rx: j[0]?.stats64?.rx.bytes ?? NaN, tx: j[0]?.stats64?.tx.bytes ?? NaN };
  } catch {
    return { rx: NaN, tx: NaN };
  }
}
