// `npm run bench:startup`: only the start-up rows of `npm run bench` (startup.ts), against nginx on loopback and
// one dfdaemon, in about a minute. Writes bench/results/startup-latest.{json,md} and startup-YYYY-MM-DD.md.
// Every process is ended by PID and the temp dir removed, also on SIGINT/SIGTERM.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { DFGET, startDaemon, stopDaemon, type DaemonHandle } from '../test/helpers/daemon.js';
import { machineInfo, machineLine } from './machine.js';
import { NGINX, startNginx, type NginxHandle } from './nginx.js';
import { publishReport } from './report.js';
import { runBenchmark } from './run.js';
import { measureStartup } from './startup.js';

const log = (msg: string) => process.stderr.write(`[bench:startup] ${msg}\n`);

let tmp: string | undefined;
let nginx: NginxHandle | undefined;
let daemon: DaemonHandle | undefined;

async function main(): Promise<void> {
  const began = performance.now();
  const loadBefore = loadavg()[0]!;
  const machine = machineInfo(NGINX);
  log(`machine: ${machineLine(machine)}`);
  tmp = mkdtempSync(join(tmpdir(), 'dfbench-startup-'));
  const www = join(tmp, 'www');
  mkdirSync(www);
  mkdirSync(join(tmp, 'out'));
  mkdirSync(join(tmp, 'daemon'));
  writeFileSync(join(www, '1k.bin'), Buffer.alloc(1024, 7));
  writeFileSync(join(www, '1b.bin'), 'x');
  nginx = await startNginx(join(tmp, 'nginx'), www);
  daemon = await startDaemon({ dir: join(tmp, 'daemon') });
  log(`nginx pid ${nginx.pid} on ${nginx.baseUrl}; dfdaemon pid ${daemon.proc.pid}`);
  const { figures, samples } = await measureStartup({
    dfgetPath: DFGET,
    socket: daemon.socket,
    url1k: `${nginx.baseUrl}/1k.bin`,
    url1b: `${nginx.baseUrl}/1b.bin`,
    outDir: join(tmp, 'out'),
    log,
  });
  // Start-up times are wall times of short processes: on a shared 2-core machine they follow its load.
  const notes = [
    `load average (1 min) ${loadBefore.toFixed(1)} at the start, ${loadavg()[0]!.toFixed(1)} at the end`,
  ];
  publishReport(
    { began, machine, figures, samples, notes },
    {
      prefix: 'startup-',
      log,
      title: 'Start-up benchmark',
      origin: 'nginx on loopback; one dfdaemon; every figure a median, the runs interleaved.',
    },
  );
}

async function cleanup(): Promise<void> {
  if (daemon) await stopDaemon(daemon, { keepDir: true }).catch(() => undefined);
  if (nginx) await nginx.stop().catch(() => undefined);
  if (tmp) rmSync(tmp, { recursive: true, force: true });
}

await runBenchmark({ main, cleanup, watchdogMs: 5 * 60_000, log });
