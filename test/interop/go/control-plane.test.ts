// Our dfdaemons in a real Dragonfly cluster: the upstream Go manager (d7y.io/dragonfly/v2 v2.5.1, on MariaDB and
// Redis) and the upstream Go scheduler announcing itself to it. Our seed peer and normal peers take their scheduler
// from the manager (`manager.addr` → manager.v2 ListSchedulers), announce their hosts to the Go scheduler, and:
//   - download one file P2P: the scheduler triggers our seed (DfdaemonUpload.DownloadTask), the seed goes to the
//     origin once, the peers take every piece from peers over Vortex;
//   - receive a preheat made through the manager's REST API (manager → Redis job queue → scheduler → our seed's
//     DownloadTask), after which a normal peer takes the file from peers, no piece from the origin;
//   - the same through our `dfctl task preheat --wait` calling the scheduler's PreheatFile, ListHosts, StatFile.
// ("no piece": a peer stats a task it has not stored with one `bytes=0-0` GET first, as upstream's does.)
// Every upstream program is a process with its own config in a temp dir on free loopback ports, ended by PID
// (test/helpers/upstream/). A missing program fails each test with one line naming it and the install command.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { Origin, contentSha256 } from '../../helpers/origin.js';
import {
  DIST,
  dfget,
  downloadTraffic,
  run,
  startDaemon,
  stopDaemon,
  tempDir,
  type DaemonHandle,
} from '../../helpers/daemon.js';
import { sha256File } from '../../helpers/files.js';
import { DEFAULT_FILTERED_QUERY_PARAMS, taskIdFromUrl } from '../../../src/core/task-id.js';
import { GoControlPlane, jobResults } from '../../helpers/upstream/go-control-plane.js';
import { missingUpstream } from '../../helpers/upstream/programs.js';
import { originBytes } from '../../helpers/upstream/origin-bytes.js';

const MiB = 1024 * 1024;
const DFCTL = join(DIST, 'src/cli/dfctl.js');
/** The scheduler triggers the seed on a peer's behalf (a remote caller): the loopback origin must be allowed. */
const SEED = 'seedPeer:\n  enable: true\n  type: super\nsecurity:\n  allowedPrivateSources: [127.0.0.1]\n';

const missing = missingUpstream([
  'manager',
  'scheduler',
  'mariadbd',
  'mariadb-install-db',
  'mariadb',
  'redis-server',
]);

function requirePrograms(): void {
  if (missing.length > 0) assert.fail(`upstream programs missing: ${missing.join('; ')}`);
}

/** A host in a get_task job's answer (internal/job/types.go Peer). */
interface JobPeer {
  id: string;
  hostname: string;
  IsFinished: boolean;
}

/** `dfctl task ls -o json` of a daemon: the ids of the tasks it stores. */
async function dfctlTaskLs(d: DaemonHandle): Promise<string[]> {
  const r = await run([DFCTL, 'task', 'ls', '-o', 'json', '-e', d.socket]);
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as Array<{ id: string }>).map((t) => t.id);
}

const traffic = downloadTraffic;

describe('our dfdaemons under the upstream Go manager and scheduler', { timeout: 600_000 }, () => {
  const origin = new Origin();
  const cp = new GoControlPlane();
  const out = tempDir('dft-interop-cp-');
  let seed: DaemonHandle | undefined;
  const peers: DaemonHandle[] = [];

  /**
   * A dfget of a preheated URL on `p`: the right bytes, and nothing from the origin but the stat. Like upstream's
   * dfdaemon (resource/task.rs download_started), a peer stats a task it has not stored with a `Range: bytes=0-0`
   * GET before it asks the scheduler; no piece may come from the origin.
   */
  async function dfgetWithoutOrigin(
    p: DaemonHandle,
    url: string,
    path: string,
    name: string,
    sha256: string,
  ) {
    const requestsBefore = origin.requests.filter((q) => q.path === path).length;
    const r = await dfget(p, url, join(out, name));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await sha256File(join(out, name)), sha256);
    const after = origin.requests.filter((q) => q.path === path).slice(requestsBefore);
    assert.deepEqual(
      after.map((q) => `${q.method} ${q.range ?? ''}`),
      ['GET bytes=0-0'],
      'the origin saw more than the stat after the preheat',
    );
  }

  const managerConfig = () => `manager:\n  addr: http://${cp.manager!.addr}\n`;

  before(async () => {
    if (missing.length > 0) return;
    await origin.start();
    await cp.start();
    seed = await startDaemon({ extraConfig: managerConfig() + SEED });
    const seedAnnounced = Date.now();
    for (let i = 0; i < 3; i++) peers.push(await startDaemon({ extraConfig: managerConfig() }));
    // The scheduler adds seed peers to its hash ring every 30 s; before that it neither triggers nor preheats.
    await cp.scheduler!.waitForSeedRefresh(seedAnnounced);
  });

  after(async () => {
    for (const p of peers) await stopDaemon(p);
    if (seed) await stopDaemon(seed);
    await cp.stop();
    await origin.stop();
    rmSync(out, { recursive: true, force: true });
  });

  test('the daemons take their scheduler from the manager', () => {
    requirePrograms();
    for (const d of [seed!, ...peers]) {
      const line = d.logs.find((l) => l.includes('"schedulers: '));
      assert.ok(line?.includes(cp.scheduler!.addr), `dynconfig line of ${d.hostId}: ${line}`);
    }
  });

  test('a file goes P2P: the seed fetches it from the origin once, the peers from peers', async () => {
    requirePrograms();
    const size = 40 * MiB + 12345;
    const url = origin.add('/p2p.bin', { size, seed: 31 });
    const want = contentSha256(31, size);
    const [a, b, c] = peers as [DaemonHandle, DaemonHandle, DaemonHandle];

    // A first: the scheduler triggers our seed, A takes pieces from it as they land.
    const ra = await dfget(a, url, join(out, 'a.bin'));
    assert.equal(ra.code, 0, `${ra.stderr}\nscheduler log:\n${cp.scheduler!.logTail()}`);
    // Then B and C together: the scheduler prefers normal peers once the seed is done (evaluator_default.go).
    const [rb, rc] = await Promise.all([
      dfget(b, url, join(out, 'b.bin')),
      dfget(c, url, join(out, 'c.bin')),
    ]);
    assert.equal(rb.code, 0, rb.stderr);
    assert.equal(rc.code, 0, rc.stderr);
    for (const f of ['a.bin', 'b.bin', 'c.bin']) assert.equal(await sha256File(join(out, f)), want, f);

    const fromOrigin = originBytes(origin, '/p2p.bin', size);
    assert.ok(
      fromOrigin >= size && fromOrigin <= size + 64 * 1024,
      `origin served ${fromOrigin} bytes for a ${size}-byte file (expected ≈ 1×)`,
    );
    assert.equal(await traffic(seed!, 'BACK_TO_SOURCE'), size, 'the seed fetched the file from the origin');
    for (const [name, p] of [
      ['A', a],
      ['B', b],
      ['C', c],
    ] as const) {
      assert.equal(await traffic(p, 'BACK_TO_SOURCE'), 0, `${name} went to the origin`);
      assert.equal(await traffic(p, 'REMOTE_PEER'), size, `${name}'s bytes from peers`);
    }
    // B's and C's parents, as the Go scheduler offered them: A (a normal peer) among them.
    const offered = [b, c].flatMap((p) =>
      p.logs.filter((l) => l.includes('scheduler gave candidate parents')).join('\n'),
    );
    assert.match(offered.join('\n'), new RegExp(a.hostId), 'A was offered as a parent to B or C');
  });

  test("the manager's preheat reaches our seed; a peer is then served without the origin", async () => {
    requirePrograms();
    const size = 24 * MiB + 1;
    const path = '/preheat.bin';
    // Query parameters out of order: the Go scheduler and manager sort them when they compute a task id
    // (pkg/net/url FilterQueryParams), the Rust client and ours keep them. The preheat works all the same: the
    // scheduler's id only picks the seed, which computes the id itself, as the peer does.
    const url = `${origin.add(path, { size, seed: 32 })}?b=2&a=1`;
    const manager = cp.manager!;
    const seedBefore = await traffic(seed!, 'BACK_TO_SOURCE');
    const job = await manager.runJob({
      type: 'preheat',
      args: { type: 'file', url, scope: 'single_seed_peer' },
    });
    assert.equal(job.state, 'SUCCESS', `preheat job: ${JSON.stringify(job)}\n${cp.scheduler!.logTail()}`);
    const preheated = originBytes(origin, path, size);
    assert.ok(
      preheated >= size && preheated <= size + 64 * 1024,
      `origin served ${preheated} for the preheat`,
    );
    assert.equal((await traffic(seed!, 'BACK_TO_SOURCE')) - seedBefore, size, 'the seed fetched it');

    const p = peers[2]!;
    const remoteBefore = await traffic(p, 'REMOTE_PEER');
    await dfgetWithoutOrigin(p, url, path, 'preheated.bin', contentSha256(32, size));
    assert.equal((await traffic(p, 'REMOTE_PEER')) - remoteBefore, size);
  });

  test("our dfctl task preheat calls the Go scheduler's PreheatFile; --wait follows it to our seed", async () => {
    requirePrograms();
    const size = 9 * MiB + 3;
    const path = '/dfctl-preheat.bin';
    const url = origin.add(path, { size, seed: 33 });
    // The Go scheduler answers ListHosts and StatFile (its GetTask job: StatLocalTask on every host) as ours does.
    const r = await run(
      [
        DFCTL,
        'task',
        'preheat',
        url,
        '--scope',
        'single_seed_peer',
        '--wait',
        '--timeout',
        '2m',
        '--scheduler-endpoint',
        `http://${cp.scheduler!.addr}`,
      ],
      { timeoutMs: 150_000 },
    );
    assert.equal(r.code, 0, `${r.stderr}\n${cp.scheduler!.logTail()}`);
    assert.equal(r.stdout, 'Preheat Succeeded!\n');
    assert.match(r.stderr, /preheat: 1\/1 finished \(1 file on 1 hosts\)\n$/);
    const preheated = originBytes(origin, path, size);
    assert.ok(
      preheated >= size && preheated <= size + 64 * 1024,
      `origin served ${preheated} for the preheat`,
    );

    await dfgetWithoutOrigin(peers[1]!, url, path, 'dfctl-preheated.bin', contentSha256(33, size));
  });

  test("the manager's get_task and delete_task jobs reach our daemons' upload ports", async () => {
    requirePrograms();
    const url = `${origin.url}/p2p.bin`;
    const taskId = taskIdFromUrl({ url, filteredQueryParams: DEFAULT_FILTERED_QUERY_PARAMS });
    const manager = cp.manager!;
    const all = [seed!, ...peers];

    // get_task: the scheduler asks every host it knows with StatLocalTask on its upload port.
    const got = await manager.runJob({ type: 'get_task', args: { task_id: taskId } });
    assert.equal(got.state, 'SUCCESS', JSON.stringify(got));
    const found = jobResults(got).flatMap((r) => (r as { peers?: JobPeer[] }).peers ?? []);
    for (const d of all) {
      const p = found.find((f) => f.id === d.hostId);
      assert.ok(p, `get_task did not list ${d.hostId}: ${JSON.stringify(found)}\n${cp.scheduler!.logTail()}`);
      assert.equal(p.IsFinished, true, `${d.hostId} not finished`);
    }

    // delete_task: the scheduler calls DeleteTask on the upload port of every peer that finished the task.
    const deleted = await manager.runJob({ type: 'delete_task', args: { task_id: taskId } });
    assert.equal(deleted.state, 'SUCCESS', JSON.stringify(deleted));
    for (const d of all) {
      const r = await dfctlTaskLs(d);
      assert.ok(!r.includes(taskId), `${d.hostId} still stores ${taskId}`);
    }
  });
});
