// Process helpers for the benchmark: a timed, bounded spawn and an RSS sampler reading /proc/PID/status.

import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface Timed {
  ms: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

/** Runs `cmd args`, timing spawn to exit; SIGKILL after `timeoutMs`. Never rejects on a non-zero exit. */
export function timed(
  cmd: string,
  args: string[],
  timeoutMs: number,
  env?: NodeJS.ProcessEnv,
): Promise<Timed> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const p = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env: env ?? process.env });
    let stderr = '';
    p.stderr.setEncoding('utf8').on('data', (d: string) => {
      if (stderr.length < 8192) stderr += d;
    });
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.once('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
    p.once('close', (code, signal) => {
      clearTimeout(t);
      resolve({ ms: performance.now() - start, code, signal, stderr });
    });
  });
}

/** A field of /proc/PID/status in bytes (VmRSS, VmHWM), or undefined when the process is gone. */
export function procStatusBytes(pid: number, field: 'VmRSS' | 'VmHWM'): number | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Polls VmRSS of `pid` every `intervalMs`; stop() returns the peak seen. */
export function sampleRss(pid: number, intervalMs = 50): { stop(): number } {
  let peak = procStatusBytes(pid, 'VmRSS') ?? 0;
  const t = setInterval(() => {
    const v = procStatusBytes(pid, 'VmRSS');
    if (v !== undefined && v > peak) peak = v;
  }, intervalMs);
  return {
    stop() {
      clearInterval(t);
      const v = procStatusBytes(pid, 'VmRSS');
      if (v !== undefined && v > peak) peak = v;
      return peak;
    },
  };
}

export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** CPU time (user + system) a process has used so far, in ms, from /proc/PID/stat; NaN when it is gone. */
export function procCpuMs(pid: number): number {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    // Fields 14 and 15 (utime, stime) are the 12th and 13th after the command name; clock ticks of 10 ms.
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return NaN;
  }
}
