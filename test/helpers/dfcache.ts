// dfcache against a test daemon, and what the persistent cache tests poll: `dfcache stat` fields, the replica
// count, whether a daemon holds a task's content file.

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DIST, run, type DaemonHandle, type RunResult } from './daemon.js';

export const DFCACHE = join(DIST, 'src/cli/dfcache.js');

export function dfcache(d: DaemonHandle, args: string[]): Promise<RunResult> {
  return run([DFCACHE, ...args, '-e', d.socket], { timeoutMs: 60_000 });
}

/** `dfcache stat` output as fields ("State" → "Succeeded"). */
export function statFields(stdout: string): Record<string, string> {
  return Object.fromEntries(
    stdout
      .trim()
      .split('\n')
      .map((l) => {
        const at = l.indexOf(':');
        return [l.slice(0, at), l.slice(at + 1).trim()];
      }),
  );
}

/** `dfcache stat` as fields; fails the test unless it succeeds. */
export async function stat(d: DaemonHandle, id: string): Promise<Record<string, string>> {
  const r = await dfcache(d, ['stat', id]);
  assert.equal(r.code, 0, r.stderr);
  return statFields(r.stdout);
}

/** `dfcache stat` retried until it succeeds (e.g. while the daemon reconnects to a restarted scheduler). */
export async function waitForStat(d: DaemonHandle, id: string, timeoutMs = 20_000) {
  const until = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < until) {
    const r = await dfcache(d, ['stat', id]);
    if (r.code === 0) return statFields(r.stdout);
    last = r.stderr;
    await new Promise((res) => setTimeout(res, 250));
  }
  assert.fail(`dfcache stat ${id} kept failing: ${last}`);
}

/** Polls `dfcache stat` until the persistent replica count reads `want` (e.g. "2/2"). */
export async function waitForReplicas(d: DaemonHandle, id: string, want: string, timeoutMs = 30_000) {
  const until = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < until) {
    last = (await stat(d, id))['Persistent replicas'] ?? '';
    if (last === want) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.fail(`persistent replicas stayed ${last}, expected ${want}`);
}

/** Where the daemon stores the task's content file. */
export function contentFile(d: DaemonHandle, id: string): string {
  return join(d.storageDir, 'content', 'persistent-cache-tasks', id.slice(0, 3), id);
}

/** Whether the daemon stores the task's content file. */
export function holds(d: DaemonHandle, id: string): boolean {
  return existsSync(contentFile(d, id));
}
