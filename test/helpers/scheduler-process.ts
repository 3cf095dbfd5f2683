// Starts the dfscheduler binary on a free (or given) port for multi-peer tests; ended by PID.

import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DIST, tempDir } from './daemon.js';

export const DFSCHEDULER = join(DIST, 'src/cli/dfscheduler.js');

export interface SchedulerHandle {
  proc: ChildProcess;
  port: number;
  addr: string;
  dir: string;
  logs: string[];
}

export async function startScheduler(
  opts: { port?: number; retryInterval?: string } = {},
): Promise<SchedulerHandle> {
  const dir = tempDir('dfsched-');
  const conf = join(dir, 'scheduler.yaml');
  writeFileSync(
    conf,
    `server:\n  listenIP: 127.0.0.1\n  port: ${opts.port ?? 0}\nscheduler:\n  retryInterval: ${opts.retryInterval ?? '500ms'}\n`,
  );
  const proc = spawn(process.execPath, [DFSCHEDULER, '-c', conf, '--console'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const logs: string[] = [];
  const port = await new Promise<number>((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(
      () => reject(new Error(`dfscheduler did not start:\n${logs.join('\n')}`)),
      15_000,
    );
    proc.stderr!.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        logs.push(line);
        if (line.includes('"scheduler started"')) {
          clearTimeout(timer);
          resolve((JSON.parse(line) as { port: number }).port);
        }
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`dfscheduler exited with ${code}:\n${logs.join('\n')}`));
    });
  });
  return { proc, port, addr: `127.0.0.1:${port}`, dir, logs };
}

export async function stopScheduler(s: SchedulerHandle, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (s.proc.exitCode === null && s.proc.signalCode === null) {
    const exited = new Promise((r) => s.proc.once('exit', r));
    s.proc.kill(signal);
    const t = setTimeout(() => s.proc.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  }
  rmSync(s.dir, { recursive: true, force: true });
}
