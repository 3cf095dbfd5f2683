// `npm run bench:proxy`: dfdaemon's proxy as a registry mirror against the registry itself, on loopback, one run.
//   1. one image layer of PROXY_BENCH_SIZE (default 512 MiB) as a blob: curl of /v2/REPO/blobs/DIGEST from the
//      registry directly vs through the proxy as a mirror (…?ns=REGISTRY, as containerd asks), cold (a fresh
//      dfdaemon, empty storage; median of 3) and warm (the same request again: a cache hit); ratios proxy/direct;
//      and curl of the blob from the registry to a file, what storing it costs any client, beside the cold proxy
//   2. skopeo copy of the image into an OCI layout (digests checked by skopeo), directly vs through the mirror
//      (registries.conf), cold and warm; ratios
//   3. small requests, wrk -d 5s each: a 4 KiB Range of the cached layer (a cache hit through the proxy) and the
//      small config blob, through the proxy vs against the registry; ratios of requests/s
// Writes bench/results/proxy-latest.{json,md} and bench/results/proxy-YYYY-MM-DD.md; never fails on a number.
// When dfdaemon reports no proxy port, only the direct figures are measured (and a note says so).
// Every process is ended by PID and every temp dir removed, also on error, SIGINT/SIGTERM and the watchdog.

import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { get } from 'node:http';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  metricsText,
  metricValue,
  startDaemon,
  stopDaemon,
  type DaemonHandle,
} from '../test/helpers/daemon.js';
import { runCommand, which } from '../test/helpers/exec.js';
import { buildImage, findUmoci, pushImage, type OciImage } from '../test/helpers/oci-image.js';
import { findRegistry, Registry } from '../test/helpers/registry.js';
import { checkLayoutBlobs, findSkopeo, Skopeo, writeRegistriesConf } from '../test/helpers/skopeo.js';
import { machineInfo, machineLine } from './machine.js';
import { NGINX } from './nginx.js';
import { median, timed, type Timed } from './proc.js';
import { publishReport, type Figure } from './report.js';
import { runBenchmark } from './run.js';

const MIB = 2 ** 20;
const SIZE = parseSize(process.env.PROXY_BENCH_SIZE ?? '512MiB');
const CURL_RUNS = 3;
const SKOPEO_RUNS = 2;
const WRK_SECONDS = 5;
const WRK_THREADS = 2;
const WRK_CONNECTIONS = 16;
const RANGE_BYTES = 4096;
const WATCHDOG_MS = 10 * 60_000;
const BIG_TIMEOUT_MS = 180_000;
const REPO = 'bench/big';
const TAG = 'v1';

const log = (msg: string) => process.stderr.write(`[proxy] ${msg}\n`);

let tmp: string | undefined;
let registry: Registry | undefined;
let skopeo: Skopeo | undefined;
let img: OciImage | undefined;
let daemon: DaemonHandle | undefined;

async function cleanup(): Promise<void> {
  if (daemon) await stopDaemon(daemon).catch(() => undefined);
  if (registry) await registry.stop().catch(() => undefined);
  skopeo?.remove();
  img?.remove();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
}

function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB)?$/i.exec(s.trim());
  if (!m) throw new Error(`PROXY_BENCH_SIZE: expected bytes or N KiB/MiB/GiB, got ${s}`);
  const unit = (m[2] ?? 'B').toLowerCase();
  const mult = unit === 'gib' ? 2 ** 30 : unit === 'mib' ? MIB : unit === 'kib' ? 1024 : 1;
  return Math.round(Number(m[1]) * mult);
}

function check(what: string, r: Timed): Timed {
  if (r.code !== 0)
    throw new Error(`${what} failed (exit ${r.code ?? r.signal}): ${r.stderr.trim().slice(0, 2000)}`);
  return r;
}

function curl(url: string, out = '/dev/null'): Promise<Timed> {
  return timed('curl', ['-s', '-f', '-o', out, url], BIG_TIMEOUT_MS);
}

async function sync(): Promise<void> {
  await timed('sync', [], 120_000);
}

/** The sha256 of what `url` answers, streamed; rejects on a status other than 200. */
function sha256OfUrl(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    get(url, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new Error(`GET ${url}: ${res.statusCode}`));
        return;
      }
      const h = createHash('sha256');
      res.on('data', (c: Buffer) => h.update(c));
      res.on('end', () => resolve(`sha256:${h.digest('hex')}`));
      res.on('error', reject);
    }).on('error', reject);
  });
}

interface WrkResult {
  rps: number;
  latencyMs: number;
  requests: number;
  non2xx: number;
  socketErrors: string;
}

function wrkLatencyMs(v: string, unit: string): number {
  const n = Number(v);
  return unit === 'us' ? n / 1000 : unit === 's' ? n * 1000 : unit === 'm' ? n * 60_000 : n;
}

async function wrk(bin: string, url: string, headers: string[] = []): Promise<WrkResult> {
  const args = [`-t${WRK_THREADS}`, `-c${WRK_CONNECTIONS}`, `-d${WRK_SECONDS}s`, '--timeout', '5s'];
  for (const h of headers) args.push('-H', h);
  args.push(url);
  const r = await runCommand(bin, args, { timeoutMs: (WRK_SECONDS + 20) * 1000 });
  if (r.code !== 0) throw new Error(`wrk ${url} failed (${r.code}): ${r.stderr}${r.stdout}`);
  const num = (re: RegExp) => Number(re.exec(r.stdout)?.[1] ?? NaN);
  const lat = /Latency\s+([\d.]+)(us|ms|s|m)\b/.exec(r.stdout);
  return {
    rps: num(/Requests\/sec:\s+([\d.]+)/),
    latencyMs: lat ? wrkLatencyMs(lat[1]!, lat[2]!) : NaN,
    requests: num(/(\d+) requests in/),
    non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(r.stdout)?.[1] ?? 0),
    socketErrors: /Socket errors: (.*)/.exec(r.stdout)?.[1] ?? '',
  };
}

function mbps(bytes: number, ms: number): string {
  return `${(bytes / MIB / (ms / 1000)).toFixed(0)} MiB/s`;
}

/**
 * The figures of one client through the proxy: the cold and the warm median, each followed by its ratio to the
 * direct median with the target (cold ≤ 1.1×, warm faster than direct).
 */
function coldWarmFigures(o: {
  /** "curl blob through the proxy": the figures are "<what>, cold (median of N)" and "…, warm …". */
  what: string;
  /** "proxy/direct (curl)": the ratios are "cold ratio <ratio>" and "warm ratio <ratio>". */
  ratio: string;
  runs: number;
  /** What one run transferred, for the rate in the notes. */
  bytes: number;
  directMs: number;
  coldMs: number;
  warmMs: number;
  coldNote?: string;
  warmNote?: string;
}): Figure[] {
  const note = (ms: number, more?: string) => [mbps(o.bytes, ms), more].filter(Boolean).join('; ');
  const phase = (
    which: 'cold' | 'warm',
    ms: number,
    more: string | undefined,
    target: string,
    ok: boolean,
  ) => [
    {
      name: `${o.what}, ${which} (median of ${o.runs})`,
      value: ms / 1000,
      unit: 's',
      target: '',
      note: note(ms, more),
    },
    { name: `${which} ratio ${o.ratio}`, value: ms / o.directMs, unit: 'ratio', target, ok },
  ];
  return [
    ...phase('cold', o.coldMs, o.coldNote, '≤ 1.10', o.coldMs / o.directMs <= 1.1),
    ...phase('warm', o.warmMs, o.warmNote, '< 1 (faster than direct)', o.warmMs < o.directMs),
  ];
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}

async function freshDaemon(name: string): Promise<DaemonHandle> {
  if (daemon) await stopDaemon(daemon);
  daemon = undefined;
  const dir = join(tmp!, name);
  mkdirSync(dir);
  daemon = await startDaemon({
    dir,
    extraConfig: `proxy:\n  server:\n    ip: 127.0.0.1\n    port: 0\n  registryMirror:\n    addr: ${registry!.url}\n`,
  });
  return daemon;
}

async function main(): Promise<void> {
  const began = performance.now();
  const registryBin = findRegistry();
  const skopeoBin = findSkopeo();
  const wrkBin = which('wrk');
  const missing = [
    ['docker-registry', registryBin],
    ['skopeo', skopeoBin],
    ['umoci', findUmoci()],
    ['wrk', wrkBin],
    ['curl', which('curl')],
  ].filter(([, p]) => !p);
  if (missing.length) throw new Error(`not installed: ${missing.map(([n]) => n).join(', ')}`);
  const machine = machineInfo(NGINX);
  log(`machine: ${machineLine(machine)}`);
  tmp = mkdtempSync(join(tmpdir(), 'dfbench-proxy-'));
  const notes: string[] = [];
  const samples: Record<string, number[]> = {};
  const figures: Figure[] = [];
  const load0 = loadavg()[0]!;

  log(`building an image with one ${(SIZE / MIB).toFixed(0)} MiB layer`);
  const buildStart = performance.now();
  img = await buildImage({ layers: [SIZE], busybox: false, seed: 'bench-proxy' });
  registry = new Registry(registryBin!, { dir: join(tmp, 'registry') });
  skopeo = new Skopeo(skopeoBin!);
  await registry.start();
  await pushImage(skopeo, img, `${registry.host}/${REPO}:${TAG}`);
  log(`image built and pushed in ${((performance.now() - buildStart) / 1000).toFixed(1)} s`);
  const layer = img.layers[0]!;
  const directUrl = `${registry.url}/v2/${REPO}/blobs/${layer.digest}`;
  const configDirectUrl = `${registry.url}/v2/${REPO}/blobs/${img.config.digest}`;
  const ns = `ns=${encodeURIComponent(registry.host)}`;

  // 1. the layer blob with curl, directly (page cache warmed by one untimed request first).
  check('curl warm-up', await curl(directUrl));
  const direct: number[] = [];
  for (let i = 0; i < CURL_RUNS; i++) direct.push(check('curl direct', await curl(directUrl)).ms);
  const directMs = median(direct);
  log(`curl direct: ${direct.map((m) => m.toFixed(0)).join(', ')} ms`);
  figures.push({
    name: `curl blob ${(layer.size / MIB).toFixed(0)} MiB from the registry (median of ${CURL_RUNS})`,
    value: directMs / 1000,
    unit: 's',
    target: '',
    note: mbps(layer.size, directMs),
  });
  samples.curlDirectMs = direct.map(round);

  // The floor of any client that keeps the blob (dfdaemon stores every task it serves): the same request written to
  // a file, a page-cache write per byte, where /dev/null takes the registry's sendfile alone.
  const toFile: number[] = [];
  for (let i = 0; i < CURL_RUNS; i++) {
    const out = join(tmp, `direct-${i}.blob`);
    await sync();
    toFile.push(check('curl direct to a file', await curl(directUrl, out)).ms);
    rmSync(out);
  }
  log(`curl direct to a file: ${toFile.map((m) => m.toFixed(0)).join(', ')} ms`);
  figures.push({
    name: `curl blob from the registry to a file (median of ${CURL_RUNS})`,
    value: median(toFile) / 1000,
    unit: 's',
    target: '',
    note: `${mbps(layer.size, median(toFile))}; what storing the blob costs any client`,
  });
  samples.curlDirectToFileMs = toFile.map(round);

  // Is there a proxy at all?
  const probe = await freshDaemon('daemon-probe');
  const hasProxy = probe.proxyPort !== undefined;
  if (!hasProxy) notes.push('dfdaemon reported no proxy port: only the direct figures were measured');

  const cold: number[] = [];
  const warm: number[] = [];
  const skopeoDirect: number[] = [];
  const skopeoCold: number[] = [];
  const skopeoWarm: number[] = [];
  const proxyUrl = () => `http://127.0.0.1:${daemon!.proxyPort}/v2/${REPO}/blobs/${layer.digest}?${ns}`;
  const configProxyUrl = () =>
    `http://127.0.0.1:${daemon!.proxyPort}/v2/${REPO}/blobs/${img!.config.digest}?${ns}`;

  if (hasProxy) {
    // 1. cold (fresh daemon each run) and warm (the same daemon, the same request again).
    for (let i = 0; i < CURL_RUNS; i++) {
      await freshDaemon(`daemon-curl-${i}`);
      await sync();
      cold.push(check('curl via proxy, cold', await curl(proxyUrl())).ms);
      const b2s = metricValue(
        await metricsText(daemon!),
        'dragonfly_client_download_traffic',
        'type="BACK_TO_SOURCE"',
      );
      const getsBefore = registry.blobGets(layer.digest).length;
      warm.push(check('curl via proxy, warm', await curl(proxyUrl())).ms);
      const getsWarm = registry.blobGets(layer.digest).length - getsBefore;
      if (getsWarm > 0)
        notes.push(`warm run ${i}: the registry served ${getsWarm} GETs of the layer (expected none)`);
      if (i === 0) {
        if (b2s < layer.size) notes.push(`cold run 0: back-to-source bytes ${b2s} < blob size ${layer.size}`);
        const digest = await sha256OfUrl(proxyUrl());
        if (digest !== layer.digest)
          notes.push(`the proxy served the layer with digest ${digest}, not ${layer.digest}!`);
      }
      log(`proxy ${i}: cold ${cold[i]!.toFixed(0)} ms, warm ${warm[i]!.toFixed(0)} ms`);
    }
    figures.push(
      ...coldWarmFigures({
        what: 'curl blob through the proxy',
        ratio: 'proxy/direct (curl)',
        runs: CURL_RUNS,
        bytes: layer.size,
        directMs,
        coldMs: median(cold),
        warmMs: median(warm),
        coldNote: 'fresh dfdaemon, writes the task to disk',
        warmNote: 'cache hit',
      }),
    );
    figures.push({
      name: 'cold proxy / curl from the registry to a file',
      value: median(cold) / median(toFile),
      unit: 'ratio',
      target: '',
      note: 'both store the blob; the proxy also checks its digest and sends it on',
    });
    samples.curlProxyColdMs = cold.map(round);
    samples.curlProxyWarmMs = warm.map(round);
  }

  // 2. skopeo copy into a fresh OCI layout each time; the layouts are removed after each copy.
  const conf = skopeo.path('registries.conf');
  const skopeoCopy = async (name: string, viaMirror: boolean): Promise<number> => {
    if (viaMirror) writeRegistriesConf(conf, registry!.host, [`127.0.0.1:${daemon!.proxyPort}`]);
    const out = skopeo!.path(name);
    await sync();
    const t0 = performance.now();
    const r = await skopeo!.copy(`docker://${registry!.host}/${REPO}:${TAG}`, `oci:${out}:${TAG}`, {
      registriesConf: viaMirror ? conf : undefined,
      timeoutMs: BIG_TIMEOUT_MS,
    });
    const ms = performance.now() - t0;
    if (r.code !== 0) throw new Error(`skopeo ${name} failed (${r.code}): ${r.stderr.slice(-2000)}`);
    if (name.endsWith('-0')) {
      const problems = await checkLayoutBlobs(out, img!.blobs);
      if (problems.length) notes.push(`skopeo ${name}: ${problems.join('; ')}`);
    }
    rmSync(out, { recursive: true, force: true });
    return ms;
  };
  // skopeo falls back to the registry when the mirror fails: count what went through dfdaemon to tell.
  const viaDfdaemon = async () =>
    metricValue(await metricsText(daemon!), 'dragonfly_client_proxy_request_via_dfdaemon_total');
  for (let i = 0; i < SKOPEO_RUNS; i++) {
    skopeoDirect.push(await skopeoCopy(`direct-${i}`, false));
    if (hasProxy) {
      await freshDaemon(`daemon-skopeo-${i}`);
      for (const [name, into] of [
        [`cold-${i}`, skopeoCold],
        [`warm-${i}`, skopeoWarm],
      ] as const) {
        const via = await viaDfdaemon();
        into.push(await skopeoCopy(name, true));
        if ((await viaDfdaemon()) <= via)
          notes.push(`skopeo ${name}: no request went through dfdaemon (fell back?)`);
      }
    }
    log(
      `skopeo ${i}: direct ${skopeoDirect[i]!.toFixed(0)} ms` +
        (hasProxy
          ? `, mirror cold ${skopeoCold[i]!.toFixed(0)} ms, warm ${skopeoWarm[i]!.toFixed(0)} ms`
          : ''),
    );
  }
  const skDirectMs = median(skopeoDirect);
  figures.push({
    name: `skopeo copy from the registry (median of ${SKOPEO_RUNS})`,
    value: skDirectMs / 1000,
    unit: 's',
    target: '',
    note: `${mbps(layer.size, skDirectMs)}; into an OCI layout, digests checked`,
  });
  samples.skopeoDirectMs = skopeoDirect.map(round);
  if (hasProxy) {
    figures.push(
      ...coldWarmFigures({
        what: 'skopeo copy through the mirror',
        ratio: 'mirror/direct (skopeo)',
        runs: SKOPEO_RUNS,
        bytes: layer.size,
        directMs: skDirectMs,
        coldMs: median(skopeoCold),
        warmMs: median(skopeoWarm),
      }),
    );
    samples.skopeoMirrorColdMs = skopeoCold.map(round);
    samples.skopeoMirrorWarmMs = skopeoWarm.map(round);
  }

  // 3. small requests with wrk: the daemon of the last skopeo run holds the layer (a cache hit).
  const range = [`Range: bytes=0-${RANGE_BYTES - 1}`];
  const wrkFigure = (name: string, w: WrkResult, note = ''): Figure => ({
    name,
    value: w.rps,
    unit: 'req/s',
    target: '',
    note: [
      `mean latency ${w.latencyMs.toFixed(2)} ms`,
      w.non2xx ? `${w.non2xx} non-2xx` : '',
      w.socketErrors ? `socket errors: ${w.socketErrors}` : '',
      note,
    ]
      .filter(Boolean)
      .join('; '),
  });
  const wrkDirectRange = await wrk(wrkBin!, directUrl, range);
  const wrkDirectConfig = await wrk(wrkBin!, configDirectUrl);
  const wrkWhat = `wrk -t${WRK_THREADS} -c${WRK_CONNECTIONS} -d${WRK_SECONDS}s`;
  figures.push(
    wrkFigure(`${wrkWhat}: ${RANGE_BYTES} B Range of the layer from the registry`, wrkDirectRange),
    wrkFigure(`${wrkWhat}: config blob (${img.config.size} B) from the registry`, wrkDirectConfig),
  );
  if (hasProxy) {
    const wrkProxyRange = await wrk(wrkBin!, proxyUrl(), range);
    const wrkProxyConfig = await wrk(wrkBin!, configProxyUrl());
    figures.push(
      wrkFigure(`${wrkWhat}: the same Range through the proxy`, wrkProxyRange, 'cache hit'),
      {
        name: 'small-request ratio proxy/direct (Range, req/s)',
        value: wrkProxyRange.rps / wrkDirectRange.rps,
        unit: 'ratio',
        target: '',
      },
      wrkFigure(`${wrkWhat}: the config blob through the proxy`, wrkProxyConfig),
      {
        name: 'small-request ratio proxy/direct (config blob, req/s)',
        value: wrkProxyConfig.rps / wrkDirectConfig.rps,
        unit: 'ratio',
        target: '',
      },
    );
    if (wrkProxyRange.non2xx || wrkProxyConfig.non2xx) {
      notes.push('wrk saw non-2xx answers from the proxy (see the notes of the wrk figures)');
    }
  }
  notes.push(
    `curl writes to /dev/null in every case; through the proxy, dfdaemon also writes the task to its storage (cold) ` +
      `or reads it back (warm). Requests through the proxy name the registry with ?${ns}, as containerd does.`,
  );
  notes.push(
    `load average (1 min) ${load0.toFixed(2)} at the start, ${loadavg()[0]!.toFixed(2)} at the end, on ${machine.cores} cores`,
  );
  notes.push(
    `versions: ${(await runCommand(registryBin!, ['--version'])).stdout.trim()}; ` +
      `${(await runCommand(skopeoBin!, ['--version'])).stdout.trim()}; ` +
      `${(await runCommand(wrkBin!, ['--version'])).stdout.split('\n')[0]!.trim()}`,
  );

  publishReport(
    { began, machine, figures, samples, notes },
    {
      prefix: 'proxy-',
      title: 'Proxy (registry mirror) benchmark',
      origin: "docker-registry (filesystem storage) on loopback; dfdaemon's proxy as its mirror.",
      log,
    },
  );
}

await runBenchmark({ main, cleanup, watchdogMs: WATCHDOG_MS, log });
