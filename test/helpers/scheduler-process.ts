// Starts the dfscheduler binary on a free (or given) port for multi-peer tests; ended by PID. Its state
// (server.dataDir) is in its own temp dir, which a restart may reuse.

import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stopByPid } from './child-process.js';
import { DIST, tempDir } from './daemon.js';
import { waitForLogLine } from './process-log.js';

export const DFSCHEDULER = join(DIST, 'src/cli/dfscheduler.js');

export interface SchedulerHandle {
  proc: ChildProcess;
  port: number;
  addr: string;
  dir: string;
  logs: string[];
}

/**
 * `scheduler` holds more keys of the `scheduler:` section (YAML lines, unindented), e.g. "swarm: false"; `server`
 * more keys of `server:` (e.g. "maxConnections: 2"); `extra` more top-level sections (e.g. "seedPeer: ...").
 */
export async function startScheduler(
  opts: {
    port?: number;
    retryInterval?: string;
    scheduler?: string;
    server?: string;
    extra?: string;
    /** The dir of a scheduler stopped with keepDir: this one starts from its state. */
    dir?: string;
    env?: NodeJS.ProcessEnv;
  } = {},
): Promise<SchedulerHandle> {
  const dir = opts.dir ?? tempDir('dfsched-');
  const conf = join(dir, 'scheduler.yaml');
  const indent = (lines: string | undefined) => (lines ? lines.replace(/^/gm, '  ') + '\n' : '');
  writeFileSync(
    conf,
    `server:\n  listenIP: 127.0.0.1\n  port: ${opts.port ?? 0}\n  dataDir: ${dir}\n${indent(opts.server)}` +
      `scheduler:\n  retryInterval: ${opts.retryInterval ?? '500ms'}\n${indent(opts.scheduler)}${opts.extra ?? ''}`,
  );
  const proc = spawn(process.execPath, [DFSCHEDULER, '-c', conf, '--console'], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: opts.env ? { ...process.env, ...opts.env } : undefined,
  });
  const logs: string[] = [];
  const { port } = await waitForLogLine<{ port: number }>(proc, 'scheduler started', logs, 'dfscheduler');
  return { proc, port, addr: `127.0.0.1:${port}`, dir, logs };
}

/** Ends the scheduler by PID; removes its dir (config and state) unless `keepDir`, for a restart from it. */
export async function stopScheduler(
  s: SchedulerHandle,
  signal: NodeJS.Signals = 'SIGTERM',
  opts: { keepDir?: boolean } = {},
): Promise<void> {
  await stopByPid(s.proc, 5000, signal);
  if (!opts.keepDir) rmSync(s.dir, { recursive: true, force: true });
}
