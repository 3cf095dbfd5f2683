// Running third-party programs (skopeo, umoci, ctr, tar) from tests: bounded in time, output collected, and
// optionally as another user (see unprivileged()).

import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { RunResult } from './daemon.js';

export interface CommandOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** SIGKILL after this long (default 120 s); the result then has code null. */
  timeoutMs?: number;
  uid?: number;
  gid?: number;
}

/**
 * The pids of `pid`'s descendants, deepest first (children before their parents would be killed last), read from
 * `ps`: a program that timed out may have started others (npm → node-gyp → make) that hold its output pipes.
 */
function descendants(pid: number): number[] {
  const r = spawnSync('ps', ['-e', '-o', 'pid=,ppid='], { encoding: 'utf8' });
  const children = new Map<number, number[]>();
  for (const line of (r.stdout ?? '').split('\n')) {
    const [child, parent] = line.trim().split(/\s+/).map(Number);
    if (!child || parent === undefined) continue;
    children.set(parent, [...(children.get(parent) ?? []), child]);
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const c of children.get(p) ?? []) {
      walk(c);
      out.push(c);
    }
  };
  walk(pid);
  return out;
}

/**
 * Runs `cmd args` to completion; never rejects on a non-zero exit (only when the program cannot be spawned).
 * On timeout the program and everything it started are killed; the result comes at its exit even if something
 * else still holds its output pipes (waiting for them to close could wait for ever).
 */
export function runCommand(cmd: string, args: string[], opts: CommandOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, {
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      uid: opts.uid,
      gid: opts.gid,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    p.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    let pipesGrace: NodeJS.Timeout | undefined;
    const t = setTimeout(() => {
      for (const pid of p.pid === undefined ? [] : descendants(p.pid)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // Gone already.
        }
      }
      p.kill('SIGKILL');
    }, opts.timeoutMs ?? 120_000);
    const finish = (code: number | null) => {
      clearTimeout(t);
      clearTimeout(pipesGrace);
      resolve({ code, stdout, stderr });
    };
    p.once('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
    p.once('close', finish);
    // Output still arriving after the exit is collected for a moment; a pipe held open by a descendant is not
    // waited for beyond it.
    p.once('exit', (code) => {
      pipesGrace = setTimeout(() => {
        p.stdout.destroy();
        p.stderr.destroy();
        finish(code);
      }, 5000);
    });
  });
}

/** Like runCommand, but a non-zero exit is an error naming the command and quoting its stderr. */
export async function mustRun(cmd: string, args: string[], opts: CommandOptions = {}): Promise<RunResult> {
  const r = await runCommand(cmd, args, opts);
  if (r.code !== 0) {
    throw new Error(
      `${cmd} ${args.join(' ')} exited with ${r.code}:\n${r.stderr.slice(-4000)}${r.stdout.slice(-2000)}`,
    );
  }
  return r;
}

/** The absolute path of `name` on PATH (or in the usual sbin dirs), or undefined. */
export function which(name: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v "$1"`, 'sh', name], {
    encoding: 'utf8',
    env: { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin` },
  });
  const p = r.stdout?.trim();
  return r.status === 0 && p ? p : undefined;
}

/** The uid/gid of `nobody`, used to run programs that would write outside the temp dir when run as root. */
export const NOBODY = { uid: 65534, gid: 65534 };

/**
 * The uid/gid to run a program as so that its per-user state lands in a temp HOME: `nobody` when we are root
 * (as root, skopeo writes /var/lib/containers/cache whatever HOME says), else ourselves (undefined).
 */
export function unprivileged(): { uid: number; gid: number } | undefined {
  return process.getuid?.() === 0 ? NOBODY : undefined;
}

/** This checkout (dist/test/helpers/exec.js is three levels below it). */
const CHECKOUT = fileURLToPath(new URL('../../../', import.meta.url));

/** Whether `user` can read `path` (every directory above it included). */
export function canRead(user: { uid: number; gid: number }, path: string): boolean {
  const r = spawnSync('setpriv', [
    `--reuid=${user.uid}`,
    `--regid=${user.gid}`,
    '--clear-groups',
    '--',
    'test',
    '-r',
    path,
  ]);
  return r.status === 0;
}

/**
 * `unprivileged()` for running one of our own binaries (node dist/src/cli/…): it must be able to read this checkout.
 * A checkout under a 0700 directory (`mktemp -d`) cannot be: that fails here, naming the cause, instead of as the
 * binary's MODULE_NOT_FOUND.
 */
export function unprivilegedForOurBinaries(): { uid: number; gid: number } | undefined {
  const user = unprivileged();
  if (!user) return undefined;
  const probe = `${CHECKOUT}package.json`;
  if (!canRead(user, probe)) {
    throw new Error(
      `uid ${user.uid} cannot read ${probe}: this test runs our binaries as an unprivileged user, so every directory ` +
        `above the checkout must be world-executable (e.g. chmod 755 the mktemp -d it lives in)`,
    );
  }
  return user;
}

/** `chown -R` to `owner` (no-op when undefined), so an unprivileged program can read or write the tree. */
export async function chownTree(
  path: string,
  owner: { uid: number; gid: number } | undefined,
): Promise<void> {
  if (!owner) return;
  await mustRun('chown', ['-R', `${owner.uid}:${owner.gid}`, path]);
}
