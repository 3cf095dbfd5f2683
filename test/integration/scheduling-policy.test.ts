// Download.scheduling_policy (dragonfly-api 2.3.8, dragonfly-client 1.5.10): with AUTO, upstream's default, a
// download of one piece at most (≤ 4 MiB, or a range that short) goes straight to the origin and the scheduler never
// hears of it; with ALWAYS (`dfget --scheduling-policy always`, DFGET_SCHEDULING_POLICY, the proxy's
// X-Dragonfly-Scheduling-Policy or a rule's schedulingPolicy) it is announced like any task, so another peer takes
// it from this one instead of from the origin.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { Origin, contentSha256 } from '../helpers/origin.js';
import { DFGET, dfget, downloadTraffic, run, tempDir, type DaemonHandle } from '../helpers/daemon.js';
import { curl } from '../helpers/curl.js';
import { sha256File } from '../helpers/files.js';
import { startSmallCluster, type SmallCluster } from '../helpers/small-cluster.js';

const MiB = 1024 * 1024;

describe('scheduling policy', () => {
  const origin = new Origin();
  const out = tempDir('dft-policy-');
  let cluster: SmallCluster | undefined;
  let a: DaemonHandle;
  let b: DaemonHandle;

  before(async () => {
    await origin.start();
    cluster = await startSmallCluster(2);
    [a, b] = cluster.daemons as [DaemonHandle, DaemonHandle];
  });

  after(async () => {
    await cluster?.stop();
    await origin.stop();
    rmSync(out, { recursive: true, force: true });
  });

  test('auto (the default): a one-piece file comes from the origin on every peer', async () => {
    const size = MiB + 3;
    const path = '/auto.bin';
    const url = origin.add(path, { size, seed: 11 });
    const before = (await downloadTraffic(b, 'REMOTE_PEER')) ?? 0;
    for (const [d, name] of [
      [a, 'a'],
      [b, 'b'],
    ] as const) {
      const r = await dfget(d, url, join(out, `auto-${name}`));
      assert.equal(r.code, 0, r.stderr);
      assert.equal(await sha256File(join(out, `auto-${name}`)), contentSha256(11, size));
    }
    assert.equal(origin.pieceRequests(path).length, 2, 'each peer fetched the file from the origin');
    assert.equal((await downloadTraffic(b, 'REMOTE_PEER')) ?? 0, before, 'b took bytes from a peer');
  });

  test('always: the first peer announces a one-piece file and the second takes it from that peer', async () => {
    const size = MiB + 5;
    const path = '/always.bin';
    const url = origin.add(path, { size, seed: 12 });
    const ra = await dfget(a, url, join(out, 'always-a'), ['--scheduling-policy', 'always']);
    assert.equal(ra.code, 0, ra.stderr);
    const before = (await downloadTraffic(b, 'REMOTE_PEER')) ?? 0;
    // The environment variable, as upstream's dfget reads it.
    const rb = await run([DFGET, url, '-O', join(out, 'always-b'), '-e', b.socket, '--no-progress'], {
      env: { DFGET_SCHEDULING_POLICY: 'always' },
    });
    assert.equal(rb.code, 0, rb.stderr);
    assert.equal(await sha256File(join(out, 'always-b')), contentSha256(12, size));
    assert.equal(origin.pieceRequests(path).length, 1, 'the origin was asked for the file more than once');
    assert.equal((await downloadTraffic(b, 'REMOTE_PEER')) ?? 0, before + size);
  });

  test('always through the proxy (X-Dragonfly-Scheduling-Policy): the next peer takes the file from this one', async () => {
    const size = MiB + 7;
    const path = '/proxied.bin';
    const url = origin.add(path, { size, seed: 14 });
    const r = await curl([
      '-x',
      `http://127.0.0.1:${a.proxyPort}`,
      '-H',
      'X-Dragonfly-Use-P2P: true',
      '-H',
      'X-Dragonfly-Scheduling-Policy: Always',
      url,
    ]);
    assert.equal(r.status, 200, r.stderr);
    assert.equal(createHash('sha256').update(r.body).digest('hex'), contentSha256(14, size));
    const before = (await downloadTraffic(b, 'REMOTE_PEER')) ?? 0;
    const rb = await dfget(b, url, join(out, 'proxied-b'), ['--scheduling-policy', 'always']);
    assert.equal(rb.code, 0, rb.stderr);
    assert.equal(origin.pieceRequests(path).length, 1, 'the origin was asked for the file more than once');
    assert.equal((await downloadTraffic(b, 'REMOTE_PEER')) ?? 0, before + size);
  });

  test('an unknown policy is refused by dfget in one line, before anything is fetched', async () => {
    const path = '/never.bin';
    const url = origin.add(path, { size: 10, seed: 13 });
    const r = await dfget(a, url, join(out, 'never'), ['--scheduling-policy', 'sometimes']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /--scheduling-policy.*sometimes.*(auto|always)/s);
    assert.equal(origin.requests.filter((q) => q.path === path).length, 0);
  });
});
