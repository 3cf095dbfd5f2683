// The life of a server process that tests (and benchmarks) start themselves: wait until it is ready, failing at once
// when it exits first, and stop it by the PID of the process we spawned.

import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/**
 * A port for a program that must be told its port (a recipe, a config file), free when this returns: a random port
 * below the kernel's ephemeral range that accepts a listener on every address. A port picked by listening on port 0
 * comes from the ephemeral range, where every other process's port-0 listener and outgoing connection draws too:
 * with several suites running at once, one took such a port between our close and the program's bind (EADDRINUSE
 * in the docs/cluster.md recipe test). Below the range only another caller of this function can collide, one chance
 * in ~10^4 per pair of calls.
 */
export async function freePort(): Promise<number> {
  const [low] = ephemeralRange();
  const floor = 20_000;
  const ceiling = Math.max(floor + 1000, low) - 1;
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = floor + Math.floor(Math.random() * (ceiling - floor + 1));
    if (await canListen(port)) return port;
  }
  throw new Error(`no free port found between ${floor} and ${ceiling}`);
}

/** The kernel's ephemeral port range (Linux; the common default elsewhere). */
function ephemeralRange(): [number, number] {
  try {
    const [a, b] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')
      .trim()
      .split(/\s+/)
      .map(Number);
    if (Number.isInteger(a) && Number.isInteger(b)) return [a!, b!];
  } catch {
    // not Linux
  }
  return [32768, 60999];
}

/** Whether a listener can bind `port` on all addresses (so on 127.0.0.1 too), closed again at once. */
async function canListen(port: number): Promise<boolean> {
  const srv = createServer();
  const ok = await new Promise<boolean>((resolve) => {
    srv.once('error', () => resolve(false));
    srv.listen(port, '0.0.0.0', () => resolve(true));
  });
  if (ok) await new Promise<void>((resolve) => srv.close(() => resolve()));
  return ok;
}

/**
 * Starts a server that cannot be told to listen on port 0: `start(port)` with a free port, up to `attempts` times,
 * since another process may take the port before the server binds it. A failed attempt is undone with `undo()`
 * (stop what it started) and tried again on a new port while `retry(error)` allows it (default: always).
 * Rejects with the last attempt's error.
 */
export async function startOnFreePort(
  start: (port: number) => Promise<void>,
  o: { attempts: number; undo: () => Promise<void>; retry?: (e: unknown) => boolean },
): Promise<void> {
  let lastErr: unknown;
  for (let attempt = 0; attempt < o.attempts; attempt++) {
    try {
      await start(await freePort());
      return;
    } catch (e) {
      lastErr = e;
      await o.undo();
      if (o.retry && !o.retry(e)) break;
    }
  }
  throw lastErr;
}

/** Spawns `cmd args` with its stdout appended to the file `out` and its stderr to `err` (the same file by default). */
export function spawnLogged(cmd: string, args: string[], out: string, err = out): ChildProcess {
  const outFd = openSync(out, 'a');
  const errFd = err === out ? outFd : openSync(err, 'a');
  try {
    return spawn(cmd, args, { stdio: ['ignore', outFd, errFd] });
  } finally {
    closeSync(outFd);
    if (errFd !== outFd) closeSync(errFd);
  }
}

/** Whether `proc` has exited (normally or by a signal). */
export function exited(proc: ChildProcess): boolean {
  return proc.exitCode !== null || proc.signalCode !== null;
}

/**
 * Ends `proc` by its PID: `signal` (SIGTERM by default), then SIGKILL when it is still running after `graceMs`.
 * Resolves once it has exited; at once when there is no process or it has exited already.
 */
export async function stopByPid(
  proc: ChildProcess | undefined,
  graceMs: number,
  signal: NodeJS.Signals = 'SIGTERM',
): Promise<void> {
  if (!proc || exited(proc)) return;
  const done = new Promise((r) => proc.once('exit', r));
  proc.kill(signal);
  const t = setTimeout(() => proc.kill('SIGKILL'), graceMs);
  await done;
  clearTimeout(t);
}

export interface WaitOptions {
  /** The process that should become ready: its exit ends the wait with an error. */
  proc: ChildProcess;
  /** Its name in errors, e.g. "nginx". */
  what: string;
  /** What it failed to do in time, for the error: "<what> did not <until>", e.g. "listen on 8080". */
  until: string;
  timeoutMs: number;
  /** What the process said, for either error ("<what> exited with 1: <detail()>"), e.g. the end of its log. */
  detail?: () => string;
}

/**
 * Polls `check` every 50 ms until it returns true. Rejects as soon as `proc` has exited ("<what> exited with CODE"),
 * or when `check` is still false after `timeoutMs` ("<what> did not <until>"). `check` should not throw for
 * "not ready yet": what it throws ends the wait.
 */
export async function waitUntil(check: () => boolean | Promise<boolean>, o: WaitOptions): Promise<void> {
  const said = () => (o.detail ? `: ${o.detail()}` : '');
  const deadline = Date.now() + o.timeoutMs;
  for (;;) {
    if (exited(o.proc))
      throw new Error(`${o.what} exited with ${o.proc.exitCode ?? o.proc.signalCode}${said()}`);
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`${o.what} did not ${o.until}${said()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The status of `GET url` (body read and dropped), or undefined when nothing answers within `timeoutMs`. */
export async function httpStatus(url: string, timeoutMs = 1000): Promise<number | undefined> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return undefined;
  }
}
