// containerd (1.6) for e2e tests, with `ctr` as its client. Its config v2 keeps everything in a temp dir: root,
// state, temp, the gRPC and ttrpc sockets; the debug and metrics endpoints stay off. Plugins that a pull does not
// need and that would reach outside the dir are disabled: CRI (CNI dirs, its own servers and pulls), the `opt`
// plugin (creates /opt/containerd) and the snapshotters other than native and overlayfs. Started with
// `containerd --config CONF`, stopped by its PID. No container is ever started, so no shim runs.
//
// `ctr images pull` fetches in the ctr process (containerd 1.6 has no transfer service) and then unpacks with the
// snapshotter (overlayfs by default; it works here as root, and the mounts are temporary ones under root/).
// With --debug, ctr logs each request and each response's URL and headers; parseCtrFetches reads them, so a test can
// tell whether a blob came through the mirror or from the registry itself (ctr falls back to the registry when
// every host of hosts.toml fails).

import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnLogged, stopByPid, waitUntil } from './child-process.js';
import type { RunResult } from './daemon.js';
import { tempDir } from './daemon.js';
import { runCommand, which } from './exec.js';

export function findContainerd(): { containerd: string; ctr: string } | undefined {
  const containerd = which('containerd');
  const ctr = which('ctr');
  return containerd && ctr ? { containerd, ctr } : undefined;
}

const DISABLED_PLUGINS = [
  'io.containerd.grpc.v1.cri',
  'io.containerd.internal.v1.opt',
  'io.containerd.snapshotter.v1.aufs',
  'io.containerd.snapshotter.v1.btrfs',
  'io.containerd.snapshotter.v1.devmapper',
  'io.containerd.snapshotter.v1.zfs',
  'io.containerd.tracing.processor.v1.otlp',
  'io.containerd.internal.v1.tracing',
];

export interface PullOptions {
  /** `--hosts-dir`: a certs.d-style dir of <host>/hosts.toml (see writeHostsToml). */
  hostsDir?: string;
  /** `--plain-http`: plain HTTP for the registry named by the reference (hosts.toml entries carry their scheme). */
  plainHttp?: boolean;
  /** containerd namespace (default "default"). Content is shared between namespaces: a blob is fetched once. */
  namespace?: string;
  /** false: `ctr content fetch` (no unpack, no snapshotter) instead of `ctr images pull`. */
  unpack?: boolean;
  snapshotter?: string;
  timeoutMs?: number;
}

/** One HTTP response ctr received, from its `--debug` log ("fetch response received"). */
export interface CtrFetch {
  url: URL;
  digest?: string;
  status?: string;
  /** Response headers, lower-case names. */
  headers: Record<string, string>;
}

export interface CtrPullResult extends RunResult {
  fetches: CtrFetch[];
  /** The URLs ctr requested ("do request"), in order. */
  requests: URL[];
  /** Hosts ctr gave up on ("trying next host") before one answered. */
  fallbacks: string[];
}

export class Containerd {
  readonly dir: string;
  readonly root: string;
  readonly state: string;
  readonly socket: string;
  readonly conf: string;
  readonly log: string;
  private proc?: ChildProcess;

  constructor(readonly bins: { containerd: string; ctr: string }) {
    this.dir = tempDir('dft-containerd-');
    this.root = join(this.dir, 'root');
    this.state = join(this.dir, 'state');
    this.socket = join(this.dir, 'containerd.sock');
    this.conf = join(this.dir, 'config.toml');
    this.log = join(this.dir, 'containerd.log');
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  private config(): string {
    const q = (s: string) => JSON.stringify(s);
    return `version = 2
root = ${q(this.root)}
state = ${q(this.state)}
temp = ${q(join(this.dir, 'tmp'))}
plugin_dir = ""
disabled_plugins = [${DISABLED_PLUGINS.map(q).join(', ')}]
oom_score = 0

[grpc]
  address = ${q(this.socket)}

[ttrpc]
  address = ${q(`${this.socket}.ttrpc`)}

[debug]
  address = ""
  level = "info"

[metrics]
  address = ""
`;
  }

  /** Starts containerd and waits (up to 15 s) until `ctr version` reaches it. */
  async start(): Promise<void> {
    mkdirSync(join(this.dir, 'tmp'));
    writeFileSync(this.conf, this.config());
    const proc = spawnLogged(this.bins.containerd, ['--config', this.conf], this.log);
    this.proc = proc;
    const answers = async () =>
      existsSync(this.socket) && (await this.ctr(['version'], { timeoutMs: 5000 })).code === 0;
    try {
      await waitUntil(answers, {
        proc,
        what: 'containerd',
        until: `answer on ${this.socket}`,
        timeoutMs: 15_000,
        detail: () => this.logTail(),
      });
    } catch (e) {
      await this.stop({ keepDir: true });
      throw e;
    }
  }

  logTail(): string {
    return existsSync(this.log) ? readFileSync(this.log, 'utf8').slice(-4000) : '';
  }

  /** `ctr -a SOCK ARGS…` */
  ctr(args: string[], o: { namespace?: string; timeoutMs?: number } = {}): Promise<RunResult> {
    const ns = o.namespace ? ['-n', o.namespace] : [];
    return runCommand(this.bins.ctr, ['-a', this.socket, ...ns, ...args], { timeoutMs: o.timeoutMs });
  }

  /** Pulls `ref` with ctr --debug; never rejects on failure (check `code`). */
  async pull(ref: string, o: PullOptions = {}): Promise<CtrPullResult> {
    const args = ['--debug', '-a', this.socket, '-n', o.namespace ?? 'default'];
    args.push(...(o.unpack === false ? ['content', 'fetch'] : ['images', 'pull']));
    if (o.plainHttp) args.push('--plain-http');
    if (o.hostsDir) args.push('--hosts-dir', o.hostsDir);
    if (o.snapshotter && o.unpack !== false) args.push('--snapshotter', o.snapshotter);
    args.push(ref);
    const r = await runCommand(this.bins.ctr, args, { timeoutMs: o.timeoutMs ?? 120_000 });
    return { ...r, ...parseCtrDebug(r.stderr) };
  }

  /** The digests and sizes of the content blobs containerd holds (`ctr content ls`). */
  async content(namespace = 'default'): Promise<Map<string, number>> {
    const r = await this.ctr(['content', 'ls'], { namespace });
    if (r.code !== 0) throw new Error(`ctr content ls failed: ${r.stderr}`);
    const out = new Map<string, number>();
    for (const line of r.stdout.split('\n').slice(1)) {
      const [digest, size] = line.split('\t');
      if (digest?.startsWith('sha256:')) out.set(digest, parseSize(size ?? ''));
    }
    return out;
  }

  /** Stops containerd by the PID of the process we spawned (SIGTERM, SIGKILL after 10 s); removes the dir. */
  async stop(opts: { keepDir?: boolean } = {}): Promise<void> {
    await stopByPid(this.proc, 10_000);
    this.proc = undefined;
    if (!opts.keepDir) rmSync(this.dir, { recursive: true, force: true });
  }
}

/** `ctr content ls` prints sizes as "557B", "1.084MB" (decimal units). */
function parseSize(s: string): number {
  const m = /^([\d.]+)\s*([kMGT]?B)$/.exec(s.trim());
  if (!m) return NaN;
  const mult: Record<string, number> = { B: 1, kB: 1e3, MB: 1e6, GB: 1e9, TB: 1e12 };
  return Number(m[1]) * mult[m[2]!]!;
}

/** The key=value pairs of one logrus text line (values bare or double-quoted with Go escapes). */
export function parseLogfmt(line: string): Record<string, string> {
  const out: Record<string, string> = {};
  const re = /([\w.-]+)=("(?:[^"\\]|\\.)*"|\S*)/g;
  for (const m of line.matchAll(re)) {
    const v = m[2]!;
    out[m[1]!] = v.startsWith('"') ? unquote(v) : v;
  }
  return out;
}

/** A Go-quoted string; Go escapes that JSON lacks (\x00) are kept as written. */
function unquote(v: string): string {
  try {
    return JSON.parse(v) as string;
  } catch {
    return v.slice(1, -1);
  }
}

function parseCtrDebug(stderr: string): { fetches: CtrFetch[]; requests: URL[]; fallbacks: string[] } {
  const fetches: CtrFetch[] = [];
  const requests: URL[] = [];
  const fallbacks: string[] = [];
  for (const line of stderr.split('\n')) {
    if (!line.startsWith('time=')) continue;
    const kv = parseLogfmt(line);
    if (kv.msg === 'trying next host') fallbacks.push(`${kv.host ?? '?'}: ${kv.error ?? ''}`);
    if (!kv.url) continue;
    let url: URL;
    try {
      url = new URL(kv.url);
    } catch {
      continue;
    }
    if (kv.msg === 'do request') requests.push(url);
    if (kv.msg === 'fetch response received') {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(kv)) {
        if (k.startsWith('response.header.')) headers[k.slice('response.header.'.length).toLowerCase()] = v;
      }
      fetches.push({ url, digest: kv.digest, status: kv['response.status'], headers });
    }
  }
  return { fetches, requests, fallbacks };
}

/**
 * Writes `<certsDir>/<host>/hosts.toml` routing pulls of registry `host` ("127.0.0.1:PORT", as in the image
 * reference) through `mirror` ("http://127.0.0.1:PROXY_PORT"), the way `dfinit` configures containerd: without
 * `server`, containerd adds `?ns=<host>` to every request and the proxy reads the registry from it (dfinit's
 * `_default` catch-all); with `server` and `registryHeader`, the X-Dragonfly-Registry header names it (dfinit's
 * per-registry file). Returns the file's path.
 */
export function writeHostsToml(
  certsDir: string,
  host: string,
  mirror: string,
  o: { server?: string; registryHeader?: string; capabilities?: string[] } = {},
): string {
  const dir = join(certsDir, host);
  mkdirSync(dir, { recursive: true });
  const q = (s: string) => JSON.stringify(s);
  const lines: string[] = [];
  if (o.server) lines.push(`server = ${q(o.server)}`, '');
  lines.push(
    `[host.${q(mirror)}]`,
    `capabilities = [${(o.capabilities ?? ['pull', 'resolve']).map(q).join(', ')}]`,
  );
  if (o.registryHeader)
    lines.push('', `[host.${q(mirror)}.header]`, `X-Dragonfly-Registry = ${q(o.registryHeader)}`);
  const path = join(dir, 'hosts.toml');
  writeFileSync(path, lines.join('\n') + '\n');
  return path;
}
