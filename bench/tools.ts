// What `npm run bench`'s sections share: curl and dfget runs, timed and checked, a sampled comparison of two big
// files, and the formatting of figures.

import { open, stat } from 'node:fs/promises';
import { DFGET } from '../test/helpers/daemon.js';
import { timed, type Timed } from './proc.js';

const MIB = 2 ** 20;

/** The run, or an error naming what failed and how (a benchmark of a failed download means nothing). */
export function check<T extends Timed>(what: string, r: T): T {
  if (r.code !== 0) {
    throw new Error(`${what} failed (exit ${r.code ?? r.signal}): ${r.stderr.trim().slice(0, 2000)}`);
  }
  return r;
}

/** Writes dirty pages back, so the next run does not pay for the previous one's writeback. */
export async function sync(): Promise<void> {
  await timed('sync', [], 120_000);
}

/** curl of `url` to `out` (a file or /dev/null); `extra` goes before the URL (e.g. `-x PROXY`). */
export function curl(url: string, out: string, timeoutMs: number, extra: string[] = []): Promise<Timed> {
  return timed('curl', ['-s', '-f', '-o', out, ...extra, url], timeoutMs);
}

/**
 * curl of `url` to `out` with the CPU time curl used (user + system, from bash's `times`): the kernel's share of a
 * download — the socket receive and the page-cache write — is the floor of any downloader's CPU per byte.
 */
export async function curlWithCpu(
  url: string,
  out: string,
  timeoutMs: number,
): Promise<Timed & { cpuMs: number }> {
  const r = await timed('bash', ['-c', 'curl -s -f -o "$1" "$2" && times >&2', 'bash', out, url], timeoutMs);
  // `times` prints the shell's user/sys on one line, then its children's: "0m0.120s 0m0.310s".
  const m = /^(\d+)m([\d.]+)s (\d+)m([\d.]+)s\s*$/m.exec(r.stderr.trim().split('\n').at(-1) ?? '');
  const cpuMs = m ? (Number(m[1]) * 60 + Number(m[2]) + Number(m[3]) * 60 + Number(m[4])) * 1000 : NaN;
  return { ...r, cpuMs };
}

/** dfget of `url` to `out` through the daemon at `socket`, as its own task (`tag`); `extra` flags appended. */
export function dfget(
  socket: string,
  url: string,
  out: string,
  tag: string,
  timeoutMs: number,
  extra: string[] = [],
): Promise<Timed> {
  return timed(
    process.execPath,
    [DFGET, url, '-O', out, '-e', socket, '--no-progress', '--tag', tag, ...extra],
    timeoutMs,
  );
}

/**
 * Compares the sizes and a few 64 KiB windows of two files: the first, the last and `randomWindows` others (a full
 * hash of 1 GiB would cost more than the download).
 */
export async function sampledEqual(a: string, b: string, size: number, randomWindows = 6): Promise<boolean> {
  const [sa, sb] = await Promise.all([stat(a), stat(b)]);
  if (sa.size !== size || sb.size !== size) return false;
  const win = Math.min(64 * 1024, size);
  const offsets = [
    0,
    size - win,
    ...Array.from({ length: randomWindows }, () => Math.floor(Math.random() * (size - win))),
  ];
  const [fa, fb] = await Promise.all([open(a, 'r'), open(b, 'r')]);
  try {
    for (const off of offsets) {
      const ba = Buffer.alloc(win);
      const bb = Buffer.alloc(win);
      await fa.read(ba, 0, win, off);
      await fb.read(bb, 0, win, off);
      if (!ba.equals(bb)) return false;
    }
    return true;
  } finally {
    await fa.close();
    await fb.close();
  }
}

export function mbps(bytes: number, ms: number): string {
  return `${(bytes / MIB / (ms / 1000)).toFixed(0)} MiB/s`;
}

export function spread(ms: number[]): string {
  return `${(Math.min(...ms) / 1000).toFixed(2)}–${(Math.max(...ms) / 1000).toFixed(2)} s`;
}

export function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
