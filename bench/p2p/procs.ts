// Process, namespace and temp-dir bookkeeping for the P2P benchmark: every child is tracked and ended by PID,
// every namespace made here is remembered and deleted, also from the synchronous exit hook.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const MIB = 2 ** 20;

export const log = (msg: string) => process.stderr.write(`[p2p] ${msg}\n`);

const children = new Set<ChildProcess>();
/** Namespaces made here, in creation order (the bridge first). */
export const namespaces: string[] = [];
const state: { tmp?: string; keepLogsDir?: string; cleaning?: Promise<void> } = {};

export function setTempDir(dir: string, keepLogsDir?: string): void {
  state.tmp = dir;
  state.keepLogsDir = keepLogsDir;
}

export function track(p: ChildProcess): ChildProcess {
  children.add(p);
  p.once('exit', () => children.delete(p));
  return p;
}

export function alive(p: ChildProcess): boolean {
  return p.exitCode === null && p.signalCode === null;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** SIGTERM by PID, SIGKILL after `graceMs`; resolves once the process has exited. */
export async function killProc(p: ChildProcess, graceMs = 5000): Promise<void> {
  if (!alive(p) || p.pid === undefined) return;
  const exited = new Promise<void>((r) => p.once('exit', () => r()));
  try {
    process.kill(p.pid, 'SIGTERM');
  } catch {
    return;
  }
  const t = setTimeout(() => {
    try {
      if (p.pid !== undefined && alive(p)) process.kill(p.pid, 'SIGKILL');
    } catch {
      // gone
    }
  }, graceMs);
  await exited;
  clearTimeout(t);
}

export interface ExecResult {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs a command to completion (SIGKILL after `timeoutMs`); never rejects. */
export function exec(cmd: string, args: string[], timeoutMs = 30_000): Promise<ExecResult> {
  return new Promise((resolve) => {
    const start = performance.now();
    const p = track(spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
    let stdout = '';
    let stderr = '';
    p.stdout!.setEncoding('utf8').on('data', (d: string) => {
      if (stdout.length < 4 * MIB) stdout += d;
    });
    p.stderr!.setEncoding('utf8').on('data', (d: string) => {
      if (stderr.length < 64 * 1024) stderr += d;
    });
    const t = setTimeout(() => {
      if (p.pid !== undefined && alive(p)) process.kill(p.pid, 'SIGKILL');
    }, timeoutMs);
    p.once('error', (e) => {
      clearTimeout(t);
      resolve({ code: -1, stdout, stderr: `${stderr}${e.message}`, ms: performance.now() - start });
    });
    p.once('close', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr, ms: performance.now() - start });
    });
  });
}

/** Like exec, but throws on a non-zero exit: for the namespace set-up, where a failure must stop the run. */
export async function must(cmd: string, args: string[]): Promise<string> {
  const r = await exec(cmd, args);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

/** Processes still inside one of our namespaces (started here: the names are unique to this run). */
function nsPids(ns: string): number[] {
  const r = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8', timeout: 5000 });
  return (r.stdout ?? '')
    .split('\n')
    .map((s) => Number(s.trim()))
    .filter((n) => Number.isInteger(n) && n > 0);
}

function killNsPids(ns: string): void {
  for (const pid of nsPids(ns)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
}

/**
 * Ends every tracked child by PID, then whatever is left inside our namespaces (processes survive `ip netns
 * del`), and deletes the namespaces (with them the veths and the bridge). Used between scenarios too.
 */
export async function teardownNetwork(): Promise<void> {
  await Promise.all([...children].map((p) => killProc(p).catch(() => undefined)));
  for (const ns of [...namespaces].reverse()) killNsPids(ns);
  for (const ns of [...namespaces].reverse()) spawnSync('ip', ['netns', 'del', ns], { timeout: 10_000 });
  namespaces.length = 0;
}

/** The full cleanup: network, then the temp dir (its logs copied first when asked). Runs once. */
export function cleanup(): Promise<void> {
  state.cleaning ??= (async () => {
    await teardownNetwork();
    const tmp = state.tmp;
    if (tmp) {
      if (state.keepLogsDir) {
        try {
          mkdirSync(state.keepLogsDir, { recursive: true });
          cpSync(join(tmp, 'logs'), state.keepLogsDir, { recursive: true });
          log(`logs copied to ${state.keepLogsDir}`);
        } catch (e) {
          log(`could not keep the logs: ${(e as Error).message}`);
        }
      }
      rmSync(tmp, { recursive: true, force: true });
      state.tmp = undefined;
    }
  })();
  return state.cleaning;
}

/** Last resort on exit: synchronous, by PID and by the names of the namespaces made here. */
export function cleanupSync(): void {
  for (const p of children) {
    try {
      if (p.pid !== undefined && alive(p)) process.kill(p.pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  for (const ns of [...namespaces].reverse()) {
    killNsPids(ns);
    spawnSync('ip', ['netns', 'del', ns], { timeout: 10_000 });
  }
  namespaces.length = 0;
  if (state.tmp) rmSync(state.tmp, { recursive: true, force: true });
}
