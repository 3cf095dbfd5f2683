// `npm run bench:objstore`: a cold dfget of one object from an object store against curl of the same object (a
// presigned URL, from the same store), measured in one run, and the store's requests per GiB for the dfget.
// Stores: MinIO when scripts/install-object-stores.sh built it (s3:// as most self-hosted stores serve it), HDFS
// (Hadoop's MiniDFSCluster when scripts/install-hdfs.sh built it; curl follows WebHDFS's OPEN redirect to the
// DataNode), and s3rver (always; a Node server, so it measures s3rver more than us). OBJSTORE_BENCH_MIB sets the
// size (1024).

import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Operator } from 'opendal';
import { DFGET, startDaemon, stopDaemon, type DaemonHandle } from '../test/helpers/daemon.js';
import { HdfsMiniCluster } from '../test/helpers/hdfs-mini-cluster.js';
import { MinioStore } from '../test/helpers/minio.js';
import { toolsDir, type ObjectStoreUnderTest } from '../test/helpers/object-store.js';
import { S3rverStore } from '../test/helpers/s3rver.js';
import { machineInfo } from './machine.js';
import { NGINX } from './nginx.js';
import { median, timed } from './proc.js';
import { publishReport, type Figure } from './report.js';
import { runBenchmark } from './run.js';

const MIB = 1024 * 1024;
const SIZE = Number(process.env.OBJSTORE_BENCH_MIB ?? 1024) * MIB;
const RUNS = 2;
const TIMEOUT_MS = 20 * 60_000;
const WATCHDOG_MS = 60 * 60_000;
const log = (m: string) => process.stderr.write(`bench:objstore ${m}\n`);

let tmp: string | undefined;
const running: Array<{ stop(): Promise<void> }> = [];

async function cleanup(): Promise<void> {
  for (const r of running.splice(0).reverse()) await r.stop().catch(() => undefined);
  if (tmp) rmSync(tmp, { recursive: true, force: true });
}

/** SIZE pseudo-random bytes in 64 MiB chunks (one buffer, reused): never the whole object in memory. */
async function* benchBytes(): AsyncGenerator<Buffer> {
  const chunk = Buffer.alloc(64 * MIB);
  for (let off = 0; off < SIZE; off += chunk.length) {
    for (let i = 0; i < chunk.length; i += 4) chunk.writeUInt32LE(((off + i) * 2654435761) >>> 0, i);
    yield chunk.subarray(0, Math.min(chunk.length, SIZE - off));
  }
}

/** What the benchmark needs of a source: start it, write the object, and the URLs dfget and curl read it at. */
interface BenchedSource {
  readonly server: string;
  /** How curl reads the object, for the report. */
  readonly curlReads: string;
  readonly requests: unknown[];
  start(): Promise<void>;
  stop(): Promise<void>;
  writeObject(): Promise<void>;
  /** The dfget URL and flags. */
  readonly url: string;
  flags(): string[];
  /** A URL curl (following redirects) reads the same bytes from. */
  curlUrl(): Promise<string>;
}

function objectStoreSource(store: ObjectStoreUnderTest & { operator(): Operator }): BenchedSource {
  return {
    server: store.server,
    curlReads: 'presigned GET',
    get requests() {
      return store.requests;
    },
    start: () => store.start(),
    stop: () => store.stop(),
    // opendal multipart, 64 MiB at a time.
    async writeObject() {
      const w = await store.operator().writer('bench.bin');
      for await (const chunk of benchBytes()) await w.write(chunk);
      await w.close();
    },
    url: `${store.scheme}://${store.bucket}/bench.bin`,
    flags: () => store.flags(),
    curlUrl: async () => (await store.operator().presignRead('bench.bin', 3600)).url,
  };
}

function hdfsSource(hdfs: HdfsMiniCluster): BenchedSource {
  return {
    server: 'HDFS',
    curlReads: 'WebHDFS OPEN, redirect followed',
    get requests() {
      return hdfs.requests;
    },
    start: () => hdfs.start(),
    stop: () => hdfs.stop(),
    writeObject: () => hdfs.put('/bench.bin', benchBytes(), SIZE),
    get url() {
      return `hdfs://${hdfs.namenode}/bench.bin`;
    },
    flags: () => [],
    curlUrl: () => Promise.resolve(`http://${hdfs.namenode}/webhdfs/v1/bench.bin?op=OPEN`),
  };
}

async function benchStore(
  store: BenchedSource,
  figures: Figure[],
  samples: Record<string, number[]>,
): Promise<void> {
  await store.start();
  running.push(store);
  const daemon: DaemonHandle = await startDaemon({ dir: mkdtempSync(join(tmp!, 'daemon-')) });
  running.push({ stop: () => stopDaemon(daemon) });
  log(`${store.server}: writing ${SIZE / MIB} MiB`);
  await store.writeObject();
  const url = store.url;
  const curlMs: number[] = [];
  const dfgetMs: number[] = [];
  let requests = 0;
  for (let i = 0; i < RUNS; i++) {
    const source = await store.curlUrl();
    const c = await timed('curl', ['-s', '-f', '-L', '-o', join(tmp!, `curl-${i}`), source], TIMEOUT_MS);
    if (c.code !== 0) throw new Error(`curl failed: ${c.stderr}`);
    curlMs.push(c.ms);
    const before = store.requests.length;
    // A new tag each run: a new task, so every run is cold.
    const args = [
      DFGET,
      url,
      '-O',
      join(tmp!, `dfget-${i}`),
      '-e',
      daemon.socket,
      '--no-progress',
      '--tag',
      `run-${i}`,
      ...store.flags(),
    ];
    const d = await timed(process.execPath, args, TIMEOUT_MS);
    if (d.code !== 0) throw new Error(`dfget failed: ${d.stderr}`);
    dfgetMs.push(d.ms);
    requests = store.requests.length - before;
    rmSync(join(tmp!, `curl-${i}`));
    rmSync(join(tmp!, `dfget-${i}`));
    log(
      `${store.server} run ${i}: curl ${c.ms.toFixed(0)} ms, dfget ${d.ms.toFixed(0)} ms, ${requests} store requests`,
    );
  }
  const ratio = median(dfgetMs) / median(curlMs);
  figures.push(
    {
      name: `${store.server}: curl ${SIZE / MIB} MiB (${store.curlReads})`,
      value: median(curlMs) / 1000,
      unit: 's',
      target: 'baseline',
    },
    {
      name: `${store.server}: dfget ${SIZE / MIB} MiB cold`,
      value: median(dfgetMs) / 1000,
      unit: 's',
      target: '',
    },
    {
      name: `${store.server}: cold ratio dfget/curl`,
      value: ratio,
      unit: 'ratio',
      target: '≤ 1.0',
      ok: ratio <= 1.0,
    },
    {
      name: `${store.server}: store requests per GiB (dfget)`,
      value: requests / (SIZE / (1024 * MIB)),
      unit: 'req',
      target: '',
    },
  );
  samples[`${store.server}CurlMs`] = curlMs;
  samples[`${store.server}DfgetMs`] = dfgetMs;
  await stopDaemon(daemon);
  await store.stop();
  running.length = 0;
}

async function main(): Promise<void> {
  const began = performance.now();
  tmp = mkdtempSync(join(tmpdir(), 'dfbench-objstore-'));
  const figures: Figure[] = [];
  const samples: Record<string, number[]> = {};
  const notes = [
    `${RUNS} runs per store, medians; the object is ${SIZE / MIB} MiB; dfget and curl write to ${tmpdir()}.`,
  ];
  const stores: BenchedSource[] = [];
  if (existsSync(join(toolsDir(), 'bin/minio'))) stores.push(objectStoreSource(new MinioStore('bench')));
  else notes.push('MinIO is not installed (scripts/install-object-stores.sh).');
  if (existsSync(join(toolsDir(), 'hdfs-minicluster/stamp'))) stores.push(hdfsSource(new HdfsMiniCluster()));
  else notes.push('The hdfs mini cluster is not built (scripts/install-hdfs.sh).');
  stores.push(objectStoreSource(new S3rverStore('bench')));
  for (const s of stores) await benchStore(s, figures, samples);
  publishReport(
    { began, machine: machineInfo(NGINX), figures, samples, notes },
    {
      prefix: 'objstore-',
      log,
      title: 'Object storage benchmark',
      origin:
        'the store on loopback; curl reads a presigned URL of the same object (HDFS: its WebHDFS OPEN, redirect followed).',
    },
  );
}

await runBenchmark({ main, cleanup, watchdogMs: WATCHDOG_MS, log });
