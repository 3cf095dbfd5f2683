// Starts real dfdaemon processes (the built binary) on temp dirs and free ports, and runs dfget against them.
// Every process is ended by PID in stop(); every dir is removed.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stopByPid } from './child-process.js';
import { runCommand } from './exec.js';
import { waitForLogLine } from './process-log.js';

export const DIST = fileURLToPath(new URL('../../', import.meta.url));
export const DFDAEMON = join(DIST, 'src/cli/dfdaemon.js');
export const DFGET = join(DIST, 'src/cli/dfget.js');

export interface DaemonHandle {
  dir: string;
  socket: string;
  storageDir: string;
  configPath: string;
  proc: ChildProcess;
  metricsPort: number;
  healthPort: number;
  uploadPort: number;
  vortexPort: number;
  /** The embedded scheduler's port, when the daemon runs one. */
  schedulerPort?: number;
  /** The HTTP proxy's (registry mirror's) port, when the daemon runs one. */
  proxyPort?: number;
  hostId: string;
  logs: string[];
}

/** The fields of dfdaemon's "dfdaemon started" log line that tests use. */
interface StartedLine {
  health: number;
  metrics: number;
  upload: number;
  vortex: number;
  schedulerPort?: number;
  proxy?: number;
  hostId: string;
}

/** dfdaemon's shebang, `#!/usr/bin/env -S [NAME=VALUE ...] node [FLAGS]`: the environment and node flags it sets. */
function dfdaemonShebang(): { env: Record<string, string>; flags: string[] } {
  const first = readFileSync(DFDAEMON, 'utf8').split('\n', 1)[0]!;
  const m = /^#!\/usr\/bin\/env -S((?: \w+=\S+)*) node((?: --?\S+)*)\s*$/.exec(first);
  if (!m) return { env: {}, flags: [] };
  const words = (s: string) => s.trim().split(/\s+/).filter(Boolean);
  const env = Object.fromEntries(
    words(m[1]!).map((w) => [w.slice(0, w.indexOf('=')), w.slice(w.indexOf('=') + 1)]),
  );
  return { env, flags: words(m[2]!) };
}

/**
 * The node flags dfdaemon's shebang gives it, so that a daemon the tests start as `node dfdaemon.js` runs as the
 * installed binary does.
 */
export function dfdaemonNodeFlags(): string[] {
  return dfdaemonShebang().flags;
}

/** The environment dfdaemon's shebang sets (MALLOC_ARENA_MAX), for the same reason. */
export function dfdaemonEnv(): Record<string, string> {
  return dfdaemonShebang().env;
}

export function tempDir(prefix = 'dft-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** The proxy section testConfig adds unless `extra` has its own top-level `proxy:` (a YAML key may appear once). */
const DEFAULT_PROXY = 'proxy:\n  server:\n    ip: 127.0.0.1\n    port: 0\n';

/** dfdaemon.yaml for a test daemon: everything under `dir`, every TCP port 0 (the proxy's too). */
export function testConfig(
  dir: string,
  extra = '',
  opts: SectionOptions & { schedulerAddr?: string } = {},
): string {
  const more = (lines: string | undefined, indent: string) =>
    lines ? lines.replace(/^/gm, indent) + '\n' : '';
  return `host:
  ip: 127.0.0.1
  hostname: test-${basename(dir)}
download:
  server:
    socketPath: ${join(dir, 'dfdaemon.sock')}
${opts.downloadServer ? opts.downloadServer.replace(/^/gm, '    ') + '\n' : ''}${opts.download ? opts.download.replace(/^/gm, '  ') + '\n' : ''}health:
  server:
    ip: 127.0.0.1
    port: 0
metrics:
  server:
    ip: 127.0.0.1
    port: 0
upload:
${more(opts.upload, '  ')}  server:
    ip: 127.0.0.1
    port: 0
${more(opts.uploadServer, '    ')}${opts.uploadClient ? `  client:\n${more(opts.uploadClient, '    ')}` : ''}storage:
  dir: ${join(dir, 'storage')}
  server:
    ip: 127.0.0.1
    tcpPort: 0
${more(opts.storageServer, '    ')}${opts.storageClient ? `  client:\n${more(opts.storageClient, '    ')}` : ''}embeddedScheduler:
  ip: 127.0.0.1
  port: 0
${opts.schedulerAddr ? '  enable: false\n' : ''}${more(opts.embeddedScheduler, '  ')}${opts.scheduler ? `scheduler:\n${more(opts.scheduler, '  ')}` : ''}${/^proxy:/m.test(extra) ? '' : DEFAULT_PROXY}${extra}`;
}

/** More keys of the sections testConfig writes (YAML lines, unindented), e.g. uploadServer: "caCert: /ca.crt". */
export interface SectionOptions {
  /** `download.server`, e.g. "requestRateLimit: 2". */
  downloadServer?: string;
  /** `download`, e.g. "bandwidthLimit: 10MiB". */
  download?: string;
  /** `upload`, e.g. "bandwidthLimit: 4MiB". */
  upload?: string;
  /** `upload.server`, e.g. "caCert: /path/ca.crt". */
  uploadServer?: string;
  /** `upload.client`. */
  uploadClient?: string;
  /** `storage.server` (the Vortex server). */
  storageServer?: string;
  /** `storage.client` (the Vortex client). */
  storageClient?: string;
  /** `embeddedScheduler`. */
  embeddedScheduler?: string;
  /** `scheduler` (the scheduler client). */
  scheduler?: string;
}

/**
 * Starts a dfdaemon. By default it runs its own embedded scheduler (on a free port); with `schedulerAddr`
 * ("127.0.0.1:PORT") it uses that scheduler through a local dynconfig file instead.
 */
export async function startDaemon(
  opts: SectionOptions & {
    dir?: string;
    extraConfig?: string;
    schedulerAddr?: string;
    /** More top-level keys for the dynconfig file written with `schedulerAddr` (e.g. clientConfig). */
    dynconfigExtra?: string;
    env?: NodeJS.ProcessEnv;
    /** A dfdaemon executable to run instead of `node DFDAEMON` (e.g. an installed package's .bin/dfdaemon). */
    bin?: string;
    /**
     * The whole dfdaemon.yaml to use instead of testConfig's (e.g. one written for the Rust client); it must put
     * the socket at `<dir>/dfdaemon.sock` and storage at `<dir>/storage`, as the handle assumes.
     */
    config?: string;
  } = {},
): Promise<DaemonHandle> {
  const dir = opts.dir ?? tempDir();
  const configPath = join(dir, 'dfdaemon.yaml');
  writeFileSync(configPath, opts.config ?? testConfig(dir, opts.extraConfig, opts));
  const dynconfigPath = join(dir, 'dynconfig.yaml');
  if (opts.schedulerAddr) {
    writeFileSync(
      dynconfigPath,
      `scheduler:\n  addrs:\n    - ${opts.schedulerAddr}\n${opts.dynconfigExtra ?? ''}`,
    );
  }
  const args = ['-c', configPath, '--dynconfig', dynconfigPath, '--console', '-l', 'info'];
  const proc = spawn(
    opts.bin ?? process.execPath,
    opts.bin ? args : [...dfdaemonNodeFlags(), DFDAEMON, ...args],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, ...(opts.bin ? {} : dfdaemonEnv()), HOME: dir, ...opts.env },
    },
  );
  const logs: string[] = [];
  let started: StartedLine;
  try {
    started = await waitForLogLine<StartedLine>(proc, 'dfdaemon started', logs, 'dfdaemon');
  } catch (e) {
    // A daemon that never said it started (too slow, or stuck) is ended here: nobody else holds its handle.
    await stopByPid(proc, 5000);
    throw e;
  }
  return {
    dir,
    socket: join(dir, 'dfdaemon.sock'),
    storageDir: join(dir, 'storage'),
    configPath,
    proc,
    healthPort: started.health,
    metricsPort: started.metrics,
    uploadPort: started.upload,
    vortexPort: started.vortex,
    schedulerPort: started.schedulerPort,
    proxyPort: started.proxy,
    hostId: started.hostId,
    logs,
  };
}

/** Ends the daemon by PID (SIGTERM, then SIGKILL after 5 s); removes its dir unless `keepDir`. */
export async function stopDaemon(d: DaemonHandle, opts: { keepDir?: boolean; signal?: NodeJS.Signals } = {}) {
  await stopByPid(d.proc, 5000, opts.signal);
  if (!opts.keepDir) rmSync(d.dir, { recursive: true, force: true });
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `node ARGS` (one of our built CLIs) with `env` added to ours; see runCommand. */
export function run(
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<RunResult> {
  return runCommand(process.execPath, args, {
    env: { ...process.env, ...opts.env },
    timeoutMs: opts.timeoutMs,
  });
}

export function dfget(
  d: { socket: string },
  url: string,
  output: string,
  extra: string[] = [],
): Promise<RunResult> {
  return run([DFGET, url, '-O', output, '-e', d.socket, '--no-progress', ...extra]);
}

export async function metricsText(d: DaemonHandle): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${d.metricsPort}/metrics`);
  return res.text();
}

/** Sum of a metric's samples whose labels include `labels` (e.g. `type="BACK_TO_SOURCE"`). */
/** dragonfly_client_download_traffic of one type (BACK_TO_SOURCE, REMOTE_PEER, LOCAL_PEER): bytes so far. */
export async function downloadTraffic(d: DaemonHandle, type: string): Promise<number> {
  return metricValue(await metricsText(d), 'dragonfly_client_download_traffic', `type="${type}"`);
}

export function metricValue(text: string, name: string, labels = ''): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (!(rest.startsWith('{') || rest.startsWith(' '))) continue;
    if (labels && !rest.includes(labels)) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}
