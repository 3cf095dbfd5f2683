// `npm run bench`, sections 5–8: the rest of the data path against its baseline, measured in the same run as
// sections 1–4 and on the same dfdaemon and nginx (see bench.ts for the list). Each pair of runs alternates which
// side goes first; medians are reported, with every sample in the report.

import { join } from 'node:path';
import { rm } from 'node:fs/promises';
import { calculatePieceLength } from '../src/core/piece.js';
import { DEFAULT_FILTERED_QUERY_PARAMS, taskIdFromUrl } from '../src/core/task-id.js';
import type { DaemonHandle } from '../test/helpers/daemon.js';
import { median } from './proc.js';
import type { Figure } from './report.js';
import { check, curl, dfget, mbps, round, sampledEqual, sync } from './tools.js';
import { rawCopy, startRawCopyServer, vortexPieces } from './vortex-serving.js';

const SMALL_COLD_RUNS = 10;
const TRANSFER_RUNS = 3;
const PROXY_RUNS = 3;
const VORTEX_RUNS = 3;
/** Pieces fetched at once from the piece server (download.concurrentPieceCount's default). */
const VORTEX_CONCURRENCY = 8;
const BIG_TIMEOUT_MS = 120_000;
const SMALL_TIMEOUT_MS = 15_000;

export interface DataPathContext {
  daemon: DaemonHandle;
  /** nginx's base URL; it serves `1m.bin` and `1g.bin` from `www`. */
  baseUrl: string;
  www: string;
  /** Where outputs go (removed after each run). */
  out: string;
  /** The tag of a 1 GiB task dfdaemon has stored (section 1's first cold run). */
  cachedTag: string;
  size1g: number;
  log: (msg: string) => void;
}

export interface Section {
  figures: Figure[];
  samples: Record<string, number[]>;
  notes: string[];
}

/** Runs `a` then `b` on even rounds and `b` then `a` on odd ones, `runs` times. */
async function alternate(runs: number, a: (i: number) => Promise<void>, b: (i: number) => Promise<void>) {
  for (let i = 0; i < runs; i++) {
    if (i % 2 === 0) {
      await a(i);
      await b(i);
    } else {
      await b(i);
      await a(i);
    }
  }
}

function ratioFigure(name: string, value: number, target: string, ok: boolean, note = ''): Figure {
  return { name, value, unit: 'ratio', target, ok, note };
}

/** 5. A cold 1 MiB dfget (a new task each time) vs curl to a file, start to exit. */
export async function smallCold(c: DataPathContext): Promise<Section> {
  const url = `${c.baseUrl}/1m.bin`;
  const curlMs: number[] = [];
  const dfgetMs: number[] = [];
  await alternate(
    SMALL_COLD_RUNS,
    async (i) => {
      const path = join(c.out, `curl-1m-${i}`);
      curlMs.push(check('curl 1 MiB', await curl(url, path, SMALL_TIMEOUT_MS)).ms);
      await rm(path, { force: true });
    },
    async (i) => {
      const path = join(c.out, `dfget-1m-${i}`);
      dfgetMs.push(
        check('dfget 1 MiB cold', await dfget(c.daemon.socket, url, path, `1m-${i}`, SMALL_TIMEOUT_MS)).ms,
      );
      await rm(path, { force: true });
    },
  );
  const ratio = median(dfgetMs) / median(curlMs);
  c.log(`1 MiB cold: curl ${median(curlMs).toFixed(0)} ms, dfget ${median(dfgetMs).toFixed(0)} ms`);
  return {
    figures: [
      { name: `curl 1 MiB (median of ${SMALL_COLD_RUNS})`, value: median(curlMs), unit: 'ms', target: '' },
      {
        name: `dfget 1 MiB cold, start to exit (median of ${SMALL_COLD_RUNS})`,
        value: median(dfgetMs),
        unit: 'ms',
        target: '',
        note: 'a new task each run',
      },
      ratioFigure('1 MiB cold ratio dfget/curl', ratio, '≤ 2', ratio <= 2),
    ],
    samples: { small1mCurlMs: curlMs.map(round), small1mDfgetMs: dfgetMs.map(round) },
    notes: [],
  };
}

/** 6. A cold 1 GiB dfget --transfer-from-dfdaemon (dfget writes the bytes it gets over the socket) vs curl. */
export async function transferCold(c: DataPathContext): Promise<Section> {
  const url = `${c.baseUrl}/1g.bin`;
  const curlMs: number[] = [];
  const transferMs: number[] = [];
  const notes: string[] = [];
  await alternate(
    TRANSFER_RUNS,
    async (i) => {
      await sync();
      const path = join(c.out, `curl-t-${i}`);
      curlMs.push(check('curl', await curl(url, path, BIG_TIMEOUT_MS)).ms);
      await rm(path, { force: true });
    },
    async (i) => {
      await sync();
      const path = join(c.out, `dfget-t-${i}`);
      const r = await dfget(c.daemon.socket, url, path, `transfer-${i}`, BIG_TIMEOUT_MS, [
        '--transfer-from-dfdaemon',
      ]);
      transferMs.push(check('dfget --transfer-from-dfdaemon', r).ms);
      if (i === 0 && !(await sampledEqual(path, join(c.www, '1g.bin'), c.size1g))) {
        notes.push('dfget --transfer-from-dfdaemon output differs from the source (sampled comparison)!');
      }
      await rm(path, { force: true });
    },
  );
  const ratio = median(transferMs) / median(curlMs);
  c.log(`transfer: curl ${median(curlMs).toFixed(0)} ms, dfget ${median(transferMs).toFixed(0)} ms`);
  return {
    figures: [
      {
        name: `dfget --transfer-from-dfdaemon 1 GiB cold (median of ${TRANSFER_RUNS})`,
        value: median(transferMs) / 1000,
        unit: 's',
        target: '',
        note: `${mbps(c.size1g, median(transferMs))}; curl in the same rounds ${(median(curlMs) / 1000).toFixed(2)} s`,
      },
      ratioFigure('transfer ratio dfget/curl', ratio, '≤ 1.2', ratio <= 1.2),
    ],
    samples: { transferCurlMs: curlMs.map(round), transferDfgetMs: transferMs.map(round) },
    notes,
  };
}

/** 7. 1 GiB through dfdaemon's HTTP proxy (P2P, cache hit) vs curl straight from nginx, both to /dev/null. */
export async function proxyWarm(c: DataPathContext): Promise<Section> {
  if (c.daemon.proxyPort === undefined) {
    return { figures: [], samples: {}, notes: ['dfdaemon reported no proxy port: section 7 skipped'] };
  }
  const url = `${c.baseUrl}/1g.bin`;
  const viaProxy = ['-x', `http://127.0.0.1:${c.daemon.proxyPort}`, '-H', 'X-Dragonfly-Use-P2P: true'];
  await sync();
  const cold = check('curl -x (cold)', await curl(url, '/dev/null', BIG_TIMEOUT_MS, viaProxy)).ms;
  const directMs: number[] = [];
  const proxyMs: number[] = [];
  await alternate(
    PROXY_RUNS,
    async () => void directMs.push(check('curl', await curl(url, '/dev/null', BIG_TIMEOUT_MS)).ms),
    async () =>
      void proxyMs.push(check('curl -x', await curl(url, '/dev/null', BIG_TIMEOUT_MS, viaProxy)).ms),
  );
  const ratio = median(proxyMs) / median(directMs);
  c.log(
    `proxy: cold ${cold.toFixed(0)} ms; warm ${median(proxyMs).toFixed(0)} ms, direct ${median(directMs).toFixed(0)} ms`,
  );
  return {
    figures: [
      {
        name: `curl 1 GiB from nginx to /dev/null (median of ${PROXY_RUNS})`,
        value: median(directMs) / 1000,
        unit: 's',
        target: '',
        note: mbps(c.size1g, median(directMs)),
      },
      {
        name: 'curl -x 1 GiB through the proxy, cold (one run)',
        value: cold / 1000,
        unit: 's',
        target: '',
        note: `${mbps(c.size1g, cold)}; dfdaemon stores the task as it streams it`,
      },
      {
        name: `curl -x 1 GiB through the proxy, warm (median of ${PROXY_RUNS})`,
        value: median(proxyMs) / 1000,
        unit: 's',
        target: '',
        note: `${mbps(c.size1g, median(proxyMs))}; cache hit`,
      },
      ratioFigure('warm proxy ratio proxy/direct', ratio, '≤ 1.0', ratio <= 1.0),
    ],
    samples: {
      proxyDirectMs: directMs.map(round),
      proxyColdMs: [round(cold)],
      proxyWarmMs: proxyMs.map(round),
    },
    notes: [],
  };
}

/** 8. Every piece of the cached 1 GiB task from the Vortex piece server vs the same file over a raw socket. */
export async function vortexServing(c: DataPathContext): Promise<Section> {
  const taskId = taskIdFromUrl({
    url: `${c.baseUrl}/1g.bin`,
    tag: c.cachedTag,
    filteredQueryParams: DEFAULT_FILTERED_QUERY_PARAMS,
  });
  const content = join(c.daemon.storageDir, 'content', 'tasks', taskId.slice(0, 3), taskId);
  const raw = await startRawCopyServer(content);
  const rawMs: number[] = [];
  const vortexMs: number[] = [];
  try {
    await alternate(
      VORTEX_RUNS,
      async () => {
        const r = await rawCopy(raw.port);
        if (r.bytes !== c.size1g) throw new Error(`raw copy sent ${r.bytes} of ${c.size1g} bytes`);
        rawMs.push(r.ms);
      },
      async () => {
        const r = await vortexPieces({
          port: c.daemon.vortexPort,
          taskId,
          contentLength: c.size1g,
          pieceLength: calculatePieceLength(c.size1g),
          concurrency: VORTEX_CONCURRENCY,
          timeoutMs: BIG_TIMEOUT_MS,
        });
        if (r.bytes !== c.size1g) throw new Error(`the piece server sent ${r.bytes} of ${c.size1g} bytes`);
        vortexMs.push(r.ms);
      },
    );
  } finally {
    await raw.stop();
  }
  // Throughput ratio: Vortex bytes/s over raw bytes/s, i.e. raw time over Vortex time.
  const ratio = median(rawMs) / median(vortexMs);
  c.log(`vortex: raw ${median(rawMs).toFixed(0)} ms, pieces ${median(vortexMs).toFixed(0)} ms`);
  return {
    figures: [
      {
        name: `raw loopback socket copy of the 1 GiB task file (median of ${VORTEX_RUNS})`,
        value: median(rawMs) / 1000,
        unit: 's',
        target: '',
        note: `${mbps(c.size1g, median(rawMs))}; one connection, Node server`,
      },
      {
        name: `Vortex: every piece of the task from dfdaemon (median of ${VORTEX_RUNS})`,
        value: median(vortexMs) / 1000,
        unit: 's',
        target: '',
        note: `${mbps(c.size1g, median(vortexMs))}; ${VORTEX_CONCURRENCY} pieces at a time, a connection each`,
      },
      ratioFigure('Vortex serving throughput / raw socket copy', ratio, '≥ 0.8', ratio >= 0.8),
    ],
    samples: { vortexRawMs: rawMs.map(round), vortexPiecesMs: vortexMs.map(round) },
    notes: [],
  };
}
