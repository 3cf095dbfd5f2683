// P2P on loopback: dfscheduler + a seed peer + peers, each a real dfdaemon process with its own ports and storage.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { openSync, writeSync, closeSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Origin, contentSha256 } from '../helpers/origin.js';
import {
  dfget,
  metricsText,
  metricValue,
  startDaemon,
  stopDaemon,
  tempDir,
  type DaemonHandle,
} from '../helpers/daemon.js';
import { startScheduler, stopScheduler, type SchedulerHandle } from '../helpers/scheduler-process.js';
import { taskIdFromUrl, DEFAULT_FILTERED_QUERY_PARAMS } from '../../src/core/task-id.js';
import { sha256File } from '../helpers/files.js';
import Database from 'better-sqlite3';

const MiB = 1024 * 1024;
/**
 * A seed fetches from the origin on the scheduler's behalf (a remote caller), and the test origin is on loopback,
 * which a remote caller may reach only when security.allowedPrivateSources names it.
 */
const SEED = 'seedPeer:\n  enable: true\n  type: super\nsecurity:\n  allowedPrivateSources: [127.0.0.1]\n';

function pieceRangeCounts(origin: Origin, path: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const r of origin.pieceRequests(path)) m.set(r.range!, (m.get(r.range!) ?? 0) + 1);
  return m;
}

function taskPath(d: DaemonHandle, url: string): string {
  const id = taskIdFromUrl({ url, filteredQueryParams: DEFAULT_FILTERED_QUERY_PARAMS });
  return join(d.storageDir, 'content', 'tasks', id.slice(0, 3), id);
}

describe('P2P: a seed peer and three peers around dfscheduler', () => {
  const origin = new Origin();
  let scheduler: SchedulerHandle;
  let seed: DaemonHandle;
  const peers: DaemonHandle[] = [];
  const out = tempDir('dft-p2p-out-');

  before(async () => {
    await origin.start();
    scheduler = await startScheduler();
    seed = await startDaemon({ schedulerAddr: scheduler.addr, extraConfig: SEED });
    for (let i = 0; i < 3; i++) peers.push(await startDaemon({ schedulerAddr: scheduler.addr }));
  });

  after(async () => {
    for (const p of peers) await stopDaemon(p);
    await stopDaemon(seed);
    await stopScheduler(scheduler);
    await origin.stop();
    rmSync(out, { recursive: true, force: true });
  });

  test('a 200 MiB file reaches every peer byte-exact while the origin serves each piece once', async () => {
    const size = 200 * MiB;
    const url = origin.add('/model.bin', { size, seed: 42 });
    const want = contentSha256(42, size);

    const first = await dfget(peers[0]!, url, join(out, 'p0'));
    assert.equal(first.code, 0, first.stderr);
    const rest = await Promise.all([
      dfget(peers[1]!, url, join(out, 'p1')),
      dfget(peers[2]!, url, join(out, 'p2')),
    ]);
    for (const r of rest) assert.equal(r.code, 0, r.stderr);
    for (const name of ['p0', 'p1', 'p2']) assert.equal(await sha256File(join(out, name)), want, name);

    const counts = pieceRangeCounts(origin, '/model.bin');
    assert.equal(counts.size, 50, 'every piece was fetched from the origin');
    for (const [range, n] of counts) assert.equal(n, 1, `${range} served ${n} times`);

    const seedText = await metricsText(seed);
    assert.equal(metricValue(seedText, 'dragonfly_client_download_traffic', 'type="BACK_TO_SOURCE"'), size);
    for (const p of peers) {
      const text = await metricsText(p);
      assert.equal(metricValue(text, 'dragonfly_client_download_traffic', 'type="REMOTE_PEER"'), size);
      assert.equal(metricValue(text, 'dragonfly_client_download_traffic', 'type="BACK_TO_SOURCE"'), 0);
    }
  });

  test('a peer that joins late takes its pieces from the peers, not from the seed', async () => {
    const url = `${origin.url}/model.bin`;
    const late = await startDaemon({ schedulerAddr: scheduler.addr });
    peers.push(late);
    const requestsBefore = origin.pieceRequests('/model.bin').length;
    const r = await dfget(late, url, join(out, 'late'));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await sha256File(join(out, 'late')), contentSha256(42, 200 * MiB));
    assert.equal(origin.pieceRequests('/model.bin').length, requestsBefore, 'the origin was not asked again');

    const parents = pieceParents(late, url);
    assert.equal(parents.length, 50);
    const fromSeed = parents.filter((id) => id.endsWith('-seed'));
    assert.deepEqual(fromSeed, [], 'no piece came from the seed while peers held it');
    assert.ok(
      parents.every((id) => id !== ''),
      'every piece came from a parent',
    );
  });
});

/** The parent of each stored piece of the URL's task on a daemon (its metadata database, read-only). */
function pieceParents(d: DaemonHandle, url: string): string[] {
  const id = taskIdFromUrl({ url, filteredQueryParams: DEFAULT_FILTERED_QUERY_PARAMS });
  const db = new Database(join(d.storageDir, 'metadata', 'dfdaemon.db'), { readonly: true });
  try {
    const rows = db
      .prepare('SELECT parent_id FROM pieces WHERE task_id = ? ORDER BY number')
      .all(id) as Array<{
      parent_id: string | null;
    }>;
    return rows.map((r) => r.parent_id ?? '');
  } finally {
    db.close();
  }
}

/** A small cluster for one test: an origin, dfscheduler (fast retries) and the daemons the test adds. */
class Cluster {
  readonly origin = new Origin();
  readonly out = tempDir('dft-p2p-out-');
  scheduler!: SchedulerHandle;
  private readonly daemons: DaemonHandle[] = [];

  static async start(): Promise<Cluster> {
    const c = new Cluster();
    await c.origin.start();
    c.scheduler = await startScheduler({ retryInterval: '100ms' });
    return c;
  }

  async daemon(extraConfig?: string): Promise<DaemonHandle> {
    const d = await startDaemon({ schedulerAddr: this.scheduler.addr, extraConfig });
    this.daemons.push(d);
    return d;
  }

  /** Kills the scheduler without warning and starts a fresh one (which knows no host) on the same port. */
  async restartScheduler(): Promise<void> {
    const port = this.scheduler.port;
    await stopScheduler(this.scheduler, 'SIGKILL');
    this.scheduler = await startScheduler({ port, retryInterval: '100ms' });
  }

  async close(): Promise<void> {
    for (const d of this.daemons) await stopDaemon(d);
    await stopScheduler(this.scheduler);
    await this.origin.stop();
    rmSync(this.out, { recursive: true, force: true });
  }
}

describe('P2P failures', () => {
  test('a parent that serves a corrupt piece is detected and the piece comes from elsewhere', async () => {
    const c = await Cluster.start();
    try {
      const seed = await c.daemon(SEED);
      const a = await c.daemon();
      const b = await c.daemon();
      const size = 24 * MiB;
      const url = c.origin.add('/corrupt.bin', { size, seed: 7 });
      assert.equal((await dfget(a, url, join(c.out, 'a'))).code, 0);
      // Flip bytes of piece 0 in A's stored content; A still advertises the old digest.
      const fd = openSync(taskPath(a, url), 'r+');
      writeSync(fd, Buffer.from('corrupted!'), 0, 10, 1000);
      closeSync(fd);
      // Without the seed, A is B's only parent: piece 0 must be detected and fetched from the source.
      await stopDaemon(seed);
      const r = await dfget(b, url, join(c.out, 'b'));
      assert.equal(r.code, 0, r.stderr);
      assert.equal(await sha256File(join(c.out, 'b')), contentSha256(7, size));
      // The corrupt piece was detected (never stored), and came from the source instead. Other pieces came from A
      // (on a loaded machine one more may also fall back to the source; every byte is accounted for).
      assert.ok(b.logs.some((l) => l.includes('piece from parent failed') && l.includes('digest')));
      const text = await metricsText(b);
      const fromSource = metricValue(text, 'dragonfly_client_download_traffic', 'type="BACK_TO_SOURCE"');
      const fromPeers = metricValue(text, 'dragonfly_client_download_traffic', 'type="REMOTE_PEER"');
      assert.ok(fromSource >= 4 * MiB, `from source: ${fromSource}`);
      assert.ok(fromPeers >= 4 * MiB, `from peers: ${fromPeers}`);
      assert.equal(fromSource + fromPeers, size);
      assert.equal(pieceRangeCounts(c.origin, '/corrupt.bin').get(`bytes=0-${4 * MiB - 1}`), 2);
    } finally {
      await c.close();
    }
  });

  test('a parent killed mid-transfer: the child finishes from the others or the source', async () => {
    const c = await Cluster.start();
    try {
      await c.daemon(SEED);
      const a = await c.daemon();
      const b = await c.daemon();
      const size = 80 * MiB;
      const url = c.origin.add('/slow.bin', { size, seed: 9, delayMs: 100 });
      const da = dfget(a, url, join(c.out, 'a'));
      while (c.origin.pieceRequests('/slow.bin').length < 4) await new Promise((r) => setTimeout(r, 20));
      const db = dfget(b, url, join(c.out, 'b'));
      await new Promise((r) => setTimeout(r, 400));
      await stopDaemon(a, { signal: 'SIGKILL' });
      await da;
      const r = await db;
      assert.equal(r.code, 0, r.stderr);
      assert.equal(await sha256File(join(c.out, 'b')), contentSha256(9, size));
    } finally {
      await c.close();
    }
  });

  test('the scheduler restarted mid-run: peers finish, and later downloads use the new scheduler', async () => {
    const c = await Cluster.start();
    try {
      const a = await c.daemon();
      const b = await c.daemon();
      const size = 60 * MiB;
      const url = c.origin.add('/restart.bin', { size, seed: 3, delayMs: 100 });
      const da = dfget(a, url, join(c.out, 'a'));
      while (c.origin.pieceRequests('/restart.bin').length < 3) await new Promise((r) => setTimeout(r, 20));
      await c.restartScheduler();
      const ra = await da;
      assert.equal(ra.code, 0, ra.stderr);
      assert.equal(await sha256File(join(c.out, 'a')), contentSha256(3, size));

      // B registers with the new scheduler (its host re-announced) and takes the task from A.
      const url2 = c.origin.add('/after.bin', { size: 12 * MiB, seed: 4 });
      assert.equal((await dfget(a, url2, join(c.out, 'a2'))).code, 0);
      const before = c.origin.pieceRequests('/after.bin').length;
      const rb = await dfget(b, url2, join(c.out, 'b2'));
      assert.equal(rb.code, 0, rb.stderr);
      assert.equal(await sha256File(join(c.out, 'b2')), contentSha256(4, 12 * MiB));
      assert.equal(c.origin.pieceRequests('/after.bin').length, before, 'B took every piece from A');
    } finally {
      await c.close();
    }
  });

  test('a seed that already has the task registers metadata-only when triggered, and serves it', async () => {
    const c = await Cluster.start();
    try {
      // The seed announces every second, so the new scheduler learns of it quickly (upstream: every 300 s).
      const seed = await c.daemon(`${SEED}scheduler:\n  announceInterval: 1s\n`);
      const a = await c.daemon();
      const size = 20 * MiB;
      const url = c.origin.add('/warm-seed.bin', { size, seed: 12 });
      assert.equal((await dfget(seed, url, join(c.out, 'seed'))).code, 0);
      // A fresh scheduler knows nothing of the seed's task: it must trigger the seed, which answers metadata-only.
      await c.restartScheduler();
      // Wait for the seed's next announce to reach the new scheduler (its channel reconnects with backoff).
      for (let i = 0; i < 200 && !c.scheduler.logs.some((l) => l.includes('"host announced"')); i++) {
        await new Promise((r) => setTimeout(r, 50));
      }
      const served = c.origin.pieceRequests('/warm-seed.bin').length;
      const r = await dfget(a, url, join(c.out, 'a'));
      assert.equal(r.code, 0, r.stderr);
      assert.equal(await sha256File(join(c.out, 'a')), contentSha256(12, size));
      assert.equal(
        c.origin.pieceRequests('/warm-seed.bin').length,
        served,
        'A took every piece from the seed',
      );
      assert.ok(seed.logs.some((l) => l.includes('announced a complete task metadata-only')));
    } finally {
      await c.close();
    }
  });
});
