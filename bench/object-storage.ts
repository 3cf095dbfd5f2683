// `npm run bench:objstore`: a cold dfget of one object from an object store against curl of the same object (a
// presigned URL, from the same store), measured in one run, and the store's requests per GiB for the dfget.
// Stores: MinIO when scripts/install-object-stores.sh built it (s3:// as most self-hosted stores serve it), and
// s3rver (always; a Node server, so it measures s3rver more than us). OBJSTORE_BENCH_MIB sets the size (1024).

import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Operator } from 'opendal';
import { DFGET, startDaemon, stopDaemon, type DaemonHandle } from '../test/helpers/daemon.js';
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

/** Writes SIZE pseudo-random bytes to `key` in 64 MiB chunks (opendal multipart): never the whole in memory. */
async function putLarge(op: Operator, key: string): Promise<void> {
  const w = await op.writer(key);
  const chunk = Buffer.alloc(64 * MIB);
  for (let off = 0; off < SIZE; off += chunk.length) {
    for (let i = 0; i < chunk.length; i += 4) chunk.writeUInt32LE(((off + i) * 2654435761) >>> 0, i);
    await w.write(chunk.subarray(0, Math.min(chunk.length, SIZE - off)));
  }
  await w.close();
}

async function benchStore(
  store: ObjectStoreUnderTest & { operator(): Operator },
  figures: Figure[],
  samples: Record<string, number[]>,
): Promise<void> {
  await store.start();
  running.push(store);
  const daemon: DaemonHandle = await startDaemon({ dir: mkdtempSync(join(tmp!, 'daemon-')) });
  running.push({ stop: () => stopDaemon(daemon) });
  const op = store.operator();
  log(`${store.server}: writing ${SIZE / MIB} MiB`);
  await putLarge(op, 'bench.bin');
  const url = `${store.scheme}://${store.bucket}/bench.bin`;
  const curlMs: number[] = [];
  const dfgetMs: number[] = [];
  let requests = 0;
  for (let i = 0; i < RUNS; i++) {
    const signed = await op.presignRead('bench.bin', 3600);
    const c = await timed('curl', ['-s', '-f', '-o', join(tmp!, `curl-${i}`), signed.url], TIMEOUT_MS);
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
      name: `${store.server}: curl ${SIZE / MIB} MiB (presigned GET)`,
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
  const stores: Array<ObjectStoreUnderTest & { operator(): Operator }> = [];
  if (existsSync(join(toolsDir(), 'bin/minio'))) stores.push(new MinioStore('bench'));
  else notes.push('MinIO is not installed (scripts/install-object-stores.sh): s3rver only.');
  stores.push(new S3rverStore('bench'));
  for (const s of stores) await benchStore(s, figures, samples);
  publishReport(
    { began, machine: machineInfo(NGINX), figures, samples, notes },
    {
      prefix: 'objstore-',
      log,
      title: 'Object storage benchmark',
      origin: 'the store on loopback; curl reads a presigned URL of the same object.',
    },
  );
}

await runBenchmark({ main, cleanup, watchdogMs: WATCHDOG_MS, log });
