// Finding which local user is on the other end of a connection, from the kernel, never from what the client says.
//
// Unix socket (dfget, dfctl, SDKs): SO_PEERCRED (pid, uid, gid at connect time) and SO_PEERGROUPS (supplementary
// groups). Node has no getsockopt, so a tiny perl program (perl-base is Essential on Debian and Ubuntu) reads
// both on the connection's socket, which it inherits as fd 3; once per connection, and only when a request needs
// it (an output path). Without perl the caller stays unidentified and its output paths are refused.
//
// TCP loopback (the proxy's X-Dragonfly-Output-Path): the connection's client end is a socket of this host, so
// /proc/net/tcp{,6} lists it by its address and port, with its inode; the process holding that inode (found under
// /proc/<pid>/fd) gives the uid, gid and groups from /proc/<pid>/status.

import { spawn } from 'node:child_process';
import { readFile, readdir, readlink, stat } from 'node:fs/promises';
import type { Socket } from 'node:net';
import type { Caller, CallerCredentials } from '../core/caller.js';

const PEERCRED_PERL = `
use strict; use Socket qw(SOL_SOCKET SO_PEERCRED);
open(my $s, '+<&=', 3) or die "fd 3: $!\\n";
my $c = getsockopt($s, SOL_SOCKET, SO_PEERCRED) or die "SO_PEERCRED: $!\\n";
my ($pid, $uid, $gid) = unpack('lLL', $c);
my $g = getsockopt($s, SOL_SOCKET, 59);
print join(' ', $pid, $uid, $gid, defined $g ? unpack('L*', $g) : ()), "\\n";
`;

const PERL_TIMEOUT_MS = 5000;

/** Runs the perl reader on the socket's fd. Rejects with a one-line reason. */
function readPeerCred(fd: number, perl: string): Promise<CallerCredentials> {
  return new Promise((resolve, reject) => {
    const child = spawn(perl, ['-e', PEERCRED_PERL], {
      stdio: ['ignore', 'pipe', 'pipe', fd],
      timeout: PERL_TIMEOUT_MS,
    });
    let out = '';
    let err = '';
    child.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s));
    child.stderr!.setEncoding('utf8').on('data', (s: string) => (err += s));
    child.on('error', (e) => reject(new Error(`cannot run ${perl} to read SO_PEERCRED: ${e.message}`)));
    child.on('close', (code) => {
      const f = out.trim().split(/\s+/).map(Number);
      if (code !== 0 || f.length < 3 || f.some((n) => !Number.isInteger(n) || n < 0)) {
        reject(new Error(`reading SO_PEERCRED failed: ${err.trim() || `exit ${code}`}`));
        return;
      }
      const [pid, uid, gid, ...groups] = f as [number, number, number, ...number[]];
      resolve({ pid, uid, gid, groups });
    });
  });
}

/**
 * Lookups started at accept (prefetch) at once at most: beyond this, a burst of connections is looked up only
 * when a request needs it, so it cannot start a process per connection.
 */
const MAX_PREFETCHES = 4;

/** The callers of the download socket, by connection (one lookup per connection). */
export class UnixSocketCallers {
  private readonly cache = new WeakMap<Socket, Promise<Caller>>();
  private readonly perl: string;
  private prefetching = 0;

  constructor(options: { perl?: string } = {}) {
    this.perl = options.perl ?? 'perl';
  }

  /**
   * Starts the lookup of a new connection's caller before its first request: a dfget's whole download of a
   * cached file takes a few milliseconds, the perl process tens on a loaded machine, and a dfget connects before
   * it has loaded what it needs to ask (docs/benchmarks.md, "Start-up"), so the two overlap.
   */
  prefetch(socket: Socket): void {
    if (this.prefetching >= MAX_PREFETCHES) return;
    this.prefetching++;
    void this.callerOf(socket).finally(() => this.prefetching--);
  }

  /** The caller on this connection; `unidentified` with the reason when the kernel could not be asked. */
  callerOf(socket: Socket | undefined): Promise<Caller> {
    const via = 'the download socket';
    if (!socket) return Promise.resolve({ kind: 'unidentified', why: 'connection not found', via });
    let p = this.cache.get(socket);
    if (!p) {
      const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
      p =
        typeof fd === 'number' && fd >= 0
          ? readPeerCred(fd, this.perl).then(
              (cred): Caller => ({ kind: 'local', cred, via }),
              (e: Error): Caller => ({ kind: 'unidentified', why: e.message, via }),
            )
          : Promise.resolve({ kind: 'unidentified', why: 'the connection has no file descriptor', via });
      this.cache.set(socket, p);
    }
    return p;
  }
}

/** "0100007F:1F90" style address of /proc/net/tcp for an IPv4 or IPv6 address and port. */
function procAddress(address: string, port: number): string | undefined {
  const v4 = address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  if (/^\d+\.\d+\.\d+\.\d+$/.test(v4)) {
    // Each 32-bit word in host byte order (little-endian on every platform Node runs dfdaemon on).
    const b = v4.split('.').map(Number);
    const word = [b[3], b[2], b[1], b[0]].map((n) => n!.toString(16).toUpperCase().padStart(2, '0')).join('');
    return `${word}:${hexPort}`;
  }
  if (v4 === '::1') return `00000000000000000000000001000000:${hexPort}`;
  return undefined;
}

/** The IPv4-mapped form /proc/net/tcp6 uses for an IPv4 address (::ffff:a.b.c.d). */
function procMapped(address: string, port: number): string | undefined {
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address;
  const p = procAddress(v4, port);
  if (!p || !/^\d+\.\d+\.\d+\.\d+$/.test(v4)) return undefined;
  return `0000000000000000FFFF0000${p.split(':')[0]}:${p.split(':')[1]}`;
}

/** Looks up the socket whose local end is `client` and remote end is `server`: its inode and owner's uid. */
async function tcpSocket(
  client: { address: string; port: number },
  server: { address: string; port: number },
  procRoot: string,
): Promise<{ inode: number; uid: number } | undefined> {
  const pairs: Array<[string, string | undefined, string | undefined]> = [
    ['net/tcp', procAddress(client.address, client.port), procAddress(server.address, server.port)],
    ['net/tcp6', procAddress(client.address, client.port), procAddress(server.address, server.port)],
    ['net/tcp6', procMapped(client.address, client.port), procMapped(server.address, server.port)],
  ];
  for (const [file, local, remote] of pairs) {
    if (!local || !remote || local.length !== remote.length) continue;
    if ((file === 'net/tcp') !== (local.length === 13)) continue;
    const text = await readFile(`${procRoot}/${file}`, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[1] === local && f[2] === remote) return { inode: Number(f[9]), uid: Number(f[7]) };
    }
  }
  return undefined;
}

/**
 * The credentials of the process holding socket inode `inode`, created by `uid`: a scan of /proc/<pid>/fd of that
 * user's processes (a /proc/<pid> directory belongs to the process's effective uid).
 */
async function processOfInode(
  inode: number,
  uid: number,
  procRoot: string,
): Promise<CallerCredentials | undefined> {
  const target = `socket:[${inode}]`;
  const pids = (await readdir(procRoot).catch(() => [] as string[])).filter((n) => /^\d+$/.test(n));
  for (const pid of pids) {
    if ((await stat(`${procRoot}/${pid}`).catch(() => undefined))?.uid !== uid) continue;
    const fds = await readdir(`${procRoot}/${pid}/fd`).catch(() => [] as string[]);
    for (const fd of fds) {
      if ((await readlink(`${procRoot}/${pid}/fd/${fd}`).catch(() => '')) !== target) continue;
      const status = await readFile(`${procRoot}/${pid}/status`, 'utf8').catch(() => '');
      const field = (name: string) => status.match(new RegExp(`^${name}:[ \\t]*(.*)$`, 'm'))?.[1]?.trim();
      // Uid/Gid lines: real, effective, saved, filesystem. The filesystem ids are what file access uses.
      const uid = Number(field('Uid')?.split(/\s+/)[3]);
      const gid = Number(field('Gid')?.split(/\s+/)[3]);
      if (!Number.isInteger(uid) || !Number.isInteger(gid)) return undefined;
      const groups = (field('Groups') ?? '').split(/\s+/).filter(Boolean).map(Number);
      return { uid, gid, groups, pid: Number(pid) };
    }
  }
  return undefined;
}

/**
 * The local user behind a TCP connection to this host (the proxy's client): `unidentified` when the client end is
 * not a socket of this host's network namespace or its process is gone.
 */
export async function tcpCaller(
  socket: Pick<Socket, 'remoteAddress' | 'remotePort' | 'localAddress' | 'localPort'>,
  options: { procRoot?: string } = {},
): Promise<Caller> {
  const via = 'the proxy';
  const procRoot = options.procRoot ?? '/proc';
  const { remoteAddress, remotePort, localAddress, localPort } = socket;
  if (!remoteAddress || !remotePort || !localAddress || !localPort) {
    return { kind: 'unidentified', why: 'the connection has no address', via };
  }
  const found = await tcpSocket(
    { address: remoteAddress, port: remotePort },
    { address: localAddress, port: localPort },
    procRoot,
  );
  if (!found) {
    return {
      kind: 'unidentified',
      why: `no socket of this host is the client end ${remoteAddress}:${remotePort}`,
      via,
    };
  }
  // root needs no groups to pass every check.
  if (found.uid === 0) return { kind: 'local', cred: { uid: 0, gid: 0, groups: [] }, via };
  const cred = await processOfInode(found.inode, found.uid, procRoot);
  if (!cred) {
    return { kind: 'unidentified', why: `no process holds the client socket (inode ${found.inode})`, via };
  }
  return { kind: 'local', cred, via };
}
