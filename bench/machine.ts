// The machine a benchmark ran on, for the report.

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';

export interface Machine {
  cpu: string;
  cores: number;
  ramGiB: number;
  node: string;
  kernel: string;
  nginx: string;
  curl: string;
  /** 1, 5 and 15 minute load averages when the benchmark started: the machine may be shared with other work. */
  load: number[];
}

function cpuModel(): string {
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) return m[1]!.trim();
  } catch {
    // fall through
  }
  return cpus()[0]?.model ?? 'unknown';
}

/** The first match of `pattern` in what `cmd args` prints on stdout or stderr (nginx -v uses stderr). */
function version(cmd: string, args: string[], pattern: RegExp): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 5000 });
  return pattern.exec(`${r.stdout ?? ''}\n${r.stderr ?? ''}`)?.[1] ?? 'unknown';
}

export function machineInfo(nginxPath: string): Machine {
  return {
    cpu: cpuModel(),
    cores: cpus().length,
    ramGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    kernel: release(),
    // nginx -v prints to stderr
    nginx: version(nginxPath, ['-v'], /nginx\/(\S+)/),
    curl: version('curl', ['--version'], /^curl (\S+)/m),
    load: loadavg().map((l) => Math.round(l * 10) / 10),
  };
}

export function machineLine(m: Machine): string {
  return (
    `${m.cpu}, ${m.cores} cores, ${m.ramGiB} GiB RAM, Node ${m.node}, Linux ${m.kernel}, nginx ${m.nginx}, ` +
    `curl ${m.curl}, load average ${m.load.join(' / ')} at the start`
  );
}
