// `dfget --disable-back-to-source` (Download.disable_back_to_source): the pieces may come from parents only.
// Found against the upstream Rust client (test/interop/rust): ours refused at once any task it did not store
// ("not stored here and back-to-source is disabled") without asking the scheduler, so a file another peer had was
// not fetched from that peer. Upstream stats the origin as for any task (resource/task.rs download_started), asks
// the scheduler for parents and refuses only the origin's pieces; ours now does the same.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Origin, contentSha256 } from '../helpers/origin.js';
import { dfget, downloadTraffic, tempDir, type DaemonHandle } from '../helpers/daemon.js';
import { sha256File } from '../helpers/files.js';
import { startSmallCluster, type SmallCluster } from '../helpers/small-cluster.js';

const MiB = 1024 * 1024;

describe('dfget --disable-back-to-source', () => {
  const origin = new Origin();
  const out = tempDir('dft-no-source-');
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

  test('a task another peer has comes from that peer, no piece from the origin', async () => {
    const size = 12 * MiB + 5;
    const path = '/shared.bin';
    const url = origin.add(path, { size, seed: 91 });
    const ra = await dfget(a, url, join(out, 'a.bin'));
    assert.equal(ra.code, 0, ra.stderr);
    const pieceRequests = origin.pieceRequests(path).length;
    const rb = await dfget(b, url, join(out, 'b.bin'), ['--disable-back-to-source']);
    assert.equal(rb.code, 0, rb.stderr);
    assert.equal(await sha256File(join(out, 'b.bin')), contentSha256(91, size));
    assert.equal(await downloadTraffic(b, 'REMOTE_PEER'), size);
    assert.equal(origin.pieceRequests(path).length, pieceRequests, 'a piece came from the origin');
  });

  test('a task no peer has fails with one line, and the origin gives no piece', async () => {
    const path = '/nobody.bin';
    const url = origin.add(path, { size: 9 * MiB, seed: 92 });
    const r = await dfget(b, url, join(out, 'nobody.bin'), ['--disable-back-to-source']);
    assert.notEqual(r.code, 0, 'dfget succeeded without a source');
    assert.match(r.stderr, /back-to-source is disabled/);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.equal(origin.pieceRequests(path).length, 0, 'a piece came from the origin');
    assert.equal(existsSync(join(out, 'nobody.bin')), false);
  });
});
