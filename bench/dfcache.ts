// The dfcache rows of `npm run bench` (issue 14), each a ratio against a baseline measured in the same run:
//   1. import of 1 GiB by hard link (--content-for-calculating-task-id: nothing read) vs `cp` of the same file
//      (target ≤ 0.05); and with the id from the file's SHA-256 (one read of the file), for context;
//   2. import of 1 GiB by copy (the source on /dev/shm, another filesystem) vs `cp` of it from there;
//   3. export on a second host vs dfget of the same bytes from the same peer, medians of 3 alternating (target ≤ 1.0);
//   4. time until 2 persistent replicas exist after an import (the second host fetching 1 GiB P2P).
// Medians of 3 where a run is cheap; every daemon and temp dir is the caller's or removed here.

import { mkdirSync, rmSync, statfsSync } from 'node:fs';
import { copyFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { DIST, DFGET, startDaemon, stopDaemon, type DaemonHandle } from '../test/helpers/daemon.js';
import { taskIdFromContent } from '../src/core/task-id.js';
import { runCommand } from '../test/helpers/exec.js';
import { median, timed, type Timed } from './proc.js';
import type { Figure } from './report.js';

const DFCACHE = join(DIST, 'src/cli/dfcache.js');
const GIB = 2 ** 30;
const RUNS = 3;
const TIMEOUT_MS = 180_000;

export interface DfcacheBench {
  /** The first daemon (its embedded scheduler serves the second). */
  daemon: DaemonHandle;
  /** A 1 GiB file on the daemon's filesystem. */
  file: string;
  /** URL of the same bytes, already downloaded by `daemon` with `tag` (dfget on the second host gets it P2P). */
  url: string;
  tag: string;
  /** Scratch directory on the daemon's filesystem. */
  tmp: string;
  log: (msg: string) => void;
  check: (what: string, r: Timed) => Timed;
  sync: () => Promise<void>;
  /** Registers something to remove at cleanup (the second daemon, the /dev/shm copy). */
  onCleanup: (f: () => Promise<void>) => void;
}

function dfcache(d: DaemonHandle, args: string[]): Promise<Timed> {
  return timed(process.execPath, [DFCACHE, ...args, '-e', d.socket, '--no-progress'], TIMEOUT_MS);
}

/** A timed `dfcache import`; the runs name their ids (--content-for-calculating-task-id), so stdout is not needed. */
async function importTimed(d: DaemonHandle, path: string, extra: string[]): Promise<Timed> {
  return dfcache(d, ['import', path, '--ttl', '1h', ...extra]);
}

/** "current/wanted" persistent replicas as `dfcache stat` reports them ('' when it fails). */
async function replicasOf(d: DaemonHandle, taskId: string): Promise<string> {
  const r = await runCommand(process.execPath, [DFCACHE, 'stat', taskId, '-e', d.socket], {
    timeoutMs: 10_000,
  });
  return /^Persistent replicas:\s+(\S+)$/m.exec(r.stdout)?.[1] ?? '';
}

export async function benchDfcache(
  o: DfcacheBench,
): Promise<{ figures: Figure[]; samples: Record<string, number[]> }> {
  const { daemon, file, check } = o;
  const cpMs: number[] = [];
  const linkMs: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    await o.sync();
    const copy = join(o.tmp, `cp-${i}`);
    cpMs.push(check('cp', await timed('cp', [file, copy], TIMEOUT_MS)).ms);
    await rm(copy, { force: true });
    await o.sync();
    // A fresh id each run: a task already stored would be refused (ALREADY_EXISTS).
    const r = await importTimed(daemon, file, [
      '--content-for-calculating-task-id',
      `bench-link-${i}-${Date.now()}`,
    ]);
    linkMs.push(check('dfcache import (hard link)', r).ms);
  }
  o.log(
    `cp ${cpMs.map(Math.round).join(', ')} ms; import by hard link ${linkMs.map(Math.round).join(', ')} ms`,
  );
  await o.sync();
  const hashed = check(
    'dfcache import (hard link, id from content)',
    await importTimed(daemon, file, ['--tag', `bench-${Date.now()}`]),
  );
  o.log(`import by hard link, id from the content: ${Math.round(hashed.ms)} ms`);

  // Copy mode: the source on another filesystem (/dev/shm), so the hard link fails with EXDEV.
  let copyImport: number | undefined;
  let cpFromShm: number | undefined;
  const shm = '/dev/shm';
  let shmFree = 0;
  try {
    const s = statfsSync(shm);
    shmFree = s.bavail * s.bsize;
  } catch {
    // no /dev/shm: the row is left out
  }
  if (shmFree >= 2 * GIB) {
    const dir = join(shm, `dfbench-${process.pid}`);
    mkdirSync(dir);
    o.onCleanup(async () => rmSync(dir, { recursive: true, force: true }));
    const src = join(dir, '1g.bin');
    await copyFile(file, src);
    await o.sync();
    cpFromShm = check('cp from /dev/shm', await timed('cp', [src, join(o.tmp, 'cp-shm')], TIMEOUT_MS)).ms;
    await rm(join(o.tmp, 'cp-shm'), { force: true });
    await o.sync();
    copyImport = check(
      'dfcache import (copy)',
      await importTimed(daemon, src, ['--content-for-calculating-task-id', `bench-copy-${Date.now()}`]),
    ).ms;
    rmSync(dir, { recursive: true, force: true });
    o.log(`cp from /dev/shm ${Math.round(cpFromShm)} ms; import by copy ${Math.round(copyImport)} ms`);
  }

  // A second host on the first's embedded scheduler.
  mkdirSync(join(o.tmp, 'daemon-2'));
  const second = await startDaemon({
    dir: join(o.tmp, 'daemon-2'),
    schedulerAddr: `127.0.0.1:${daemon.schedulerPort}`,
  });
  o.onCleanup(() => stopDaemon(second, { keepDir: true }));

  // 4. Replicas: an import asking for 2 copies; the second host is the only other one.
  const replicaId = `bench-replica-${Date.now()}`;
  const t0 = performance.now();
  check(
    'dfcache import (2 replicas)',
    await importTimed(daemon, file, [
      '--content-for-calculating-task-id',
      replicaId,
      '--persistent-replica-count',
      '2',
    ]),
  );
  const taskOf = (content: string) => taskIdFromContent(content);
  const replicaTask = taskOf(replicaId);
  let replicasMs = NaN;
  const until = Date.now() + TIMEOUT_MS;
  while (Date.now() < until) {
    if ((await replicasOf(daemon, replicaTask)) === '2/2') {
      replicasMs = performance.now() - t0;
      break;
    }
    await new Promise((res) => setTimeout(res, 100));
  }
  o.log(`2 replicas after ${Math.round(replicasMs)} ms`);

  // 3. Export on the second host vs dfget there of the same bytes, both from the first host, RUNS times each,
  // alternating which goes first (one sample each swung 2 x between runs). Each round uses tasks the second host
  // has not seen: a fresh import for the export, and for the dfget a tag the first host downloads first.
  const exportMs: number[] = [];
  const fetchedMs: number[] = [];
  const exportOnce = async (i: number) => {
    const exportId = `bench-export-${i}-${Date.now()}`;
    check(
      'dfcache import (for export)',
      await importTimed(daemon, file, [
        '--content-for-calculating-task-id',
        exportId,
        '--persistent-replica-count',
        '1',
      ]),
    );
    await o.sync();
    exportMs.push(
      check(
        'dfcache export',
        await dfcache(second, ['export', taskOf(exportId), '-O', join(o.tmp, 'exported')]),
      ).ms,
    );
    await rm(join(o.tmp, 'exported'), { force: true });
  };
  const fetchOnce = async (i: number) => {
    const tag = i === 0 ? o.tag : `${o.tag}-peer-${i}-${Date.now()}`;
    const get = (d: DaemonHandle, out: string) =>
      timed(
        process.execPath,
        [DFGET, o.url, '-O', out, '-e', d.socket, '--no-progress', '--tag', tag],
        TIMEOUT_MS,
      );
    if (i > 0) {
      check('dfget on the first host', await get(daemon, join(o.tmp, 'seeded')));
      await rm(join(o.tmp, 'seeded'), { force: true });
    }
    await o.sync();
    fetchedMs.push(check('dfget from a peer', await get(second, join(o.tmp, 'fetched'))).ms);
    await rm(join(o.tmp, 'fetched'), { force: true });
  };
  for (let i = 0; i < RUNS; i++) {
    if (i % 2 === 0) {
      await exportOnce(i);
      await fetchOnce(i);
    } else {
      await fetchOnce(i);
      await exportOnce(i);
    }
  }
  const exported = median(exportMs);
  const fetched = median(fetchedMs);
  o.log(
    `export on a second host ${exportMs.map(Math.round).join(', ')} ms; dfget of the same bytes from the peer ${fetchedMs.map(Math.round).join(', ')} ms`,
  );

  const cp = median(cpMs);
  const link = median(linkMs);
  const figures: Figure[] = [
    { name: 'cp 1 GiB (median of 3)', value: cp / 1000, unit: 's', target: 'baseline' },
    { name: 'dfcache import 1 GiB, hard link (median of 3)', value: link / 1000, unit: 's', target: '' },
    {
      name: 'import by hard link / cp',
      value: link / cp,
      unit: 'ratio',
      target: '≤ 0.05',
      ok: link / cp <= 0.05,
    },
    {
      name: 'dfcache import 1 GiB, hard link, id from the content',
      value: hashed.ms / 1000,
      unit: 's',
      target: '',
      note: `${(hashed.ms / cp).toFixed(2)} × cp: one SHA-256 pass over the file`,
    },
  ];
  if (copyImport !== undefined && cpFromShm !== undefined) {
    figures.push(
      { name: 'cp 1 GiB from /dev/shm', value: cpFromShm / 1000, unit: 's', target: 'baseline' },
      {
        name: 'import by copy (from /dev/shm) / cp',
        value: copyImport / cpFromShm,
        unit: 'ratio',
        target: '',
        note: `${(copyImport / 1000).toFixed(2)} s; piece digests computed in the same pass`,
      },
    );
  }
  figures.push(
    {
      name: `dfget 1 GiB from a peer (second host, median of ${RUNS})`,
      value: fetched / 1000,
      unit: 's',
      target: 'baseline',
    },
    {
      name: `dfcache export 1 GiB on a second host / dfget from a peer (medians of ${RUNS})`,
      value: exported / fetched,
      unit: 'ratio',
      target: '≤ 1.0',
      ok: exported / fetched <= 1.0,
      note: `${(exported / 1000).toFixed(2)} s`,
    },
    { name: 'time until 2 persistent replicas of 1 GiB', value: replicasMs / 1000, unit: 's', target: '' },
  );
  return {
    figures,
    samples: {
      cpMs: cpMs.map(Math.round),
      importLinkMs: linkMs.map(Math.round),
      importHashedMs: [Math.round(hashed.ms)],
      importCopyMs: copyImport === undefined ? [] : [Math.round(copyImport)],
      cpFromShmMs: cpFromShm === undefined ? [] : [Math.round(cpFromShm)],
      exportMs: exportMs.map(Math.round),
      dfgetFromPeerMs: fetchedMs.map(Math.round),
      replicasMs: [Math.round(replicasMs)],
    },
  };
}
