// How many TCP connections to a local port a process holds open, read from /proc (Linux). A client cannot tell
// this itself: a connection the kernel completed but the process has not yet accepted (in the listen queue, or
// one whose final ACK the kernel dropped because that queue was full) looks connected from the client's side
// until the process accepts and closes it, which can be many seconds later (SYN-ACK retransmits back off).

import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/** Inodes of the sockets in /proc/net/tcp{,6} whose local port is `port`, other than the listener. */
function inodesOnLocalPort(port: number): Set<string> {
  const inodes = new Set<string>();
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // f[1] local address:port, f[3] state (0A = LISTEN), f[9] inode (0 while no process holds it)
      if (f.length < 10 || !f[1]!.endsWith(`:${hexPort}`) || f[3] === '0A' || f[9] === '0') continue;
      inodes.add(f[9]!);
    }
  }
  return inodes;
}

/** The number of open descriptors of process `pid` that are TCP connections accepted on local port `port`. */
export function connectionsHeld(pid: number, port: number): number {
  const inodes = inodesOnLocalPort(port);
  let held = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    let target: string;
    try {
      target = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue; // closed while we looked
    }
    const m = /^socket:\[(\d+)\]$/.exec(target);
    if (m && inodes.has(m[1]!)) held++;
  }
  return held;
}
