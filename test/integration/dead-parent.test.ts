// A parent that dies (issue 16, item 11, second part): the child used to try the dead parent for ~10 s (28
// failed attempts) before giving up on it. PeerTask now drops a parent whose piece server refuses or resets the
// connection at once. dfscheduler, parent A (has the whole task) and child B, each a real process: B takes its
// pieces from A at 8 MiB/s (download.bandwidthLimit) so that A can be killed (SIGKILL) mid-transfer; then B must
// finish byte-exact (from the source), and B's failed attempts at A must be only those already under way when A
// died: at most download.concurrentPieceCount (8), within a few seconds of the first (they were waiting for B's
// bandwidth limit). Measured: 3-4 attempts over 1-1.4 s.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
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
import { sha256File } from '../helpers/files.js';

const MiB = 1024 * 1024;

interface LogLine {
  time?: number;
  msg?: string;
}

describe('a parent killed mid-transfer', () => {
  const origin = new Origin();
  const out = tempDir('dft-dead-parent-');
  let scheduler: SchedulerHandle;
  const daemons: DaemonHandle[] = [];

  before(async () => {
    await origin.start();
    scheduler = await startScheduler({ retryInterval: '100ms' });
  });

  after(async () => {
    for (const d of daemons) await stopDaemon(d);
    await stopScheduler(scheduler);
    await origin.stop();
    rmSync(out, { recursive: true, force: true });
  });

  test('is dropped at once: a few failed attempts at most, and the child finishes', async () => {
    const a = await startDaemon({ schedulerAddr: scheduler.addr });
    daemons.push(a);
    const b = await startDaemon({ schedulerAddr: scheduler.addr, download: 'bandwidthLimit: 8MiB' });
    daemons.push(b);
    const size = 48 * MiB;
    const url = origin.add('/dead-parent.bin', { size, seed: 21 });
    const ra = await dfget(a, url, join(out, 'a'));
    assert.equal(ra.code, 0, ra.stderr);
    const fromOrigin = origin.pieceRequests('/dead-parent.bin').length;

    const pending = dfget(b, url, join(out, 'b'));
    // Kill A once B has taken two pieces from it: at 8 MiB/s the next ones are on their way or waiting their turn.
    const deadline = Date.now() + 30_000;
    for (;;) {
      const remote = metricValue(
        await metricsText(b),
        'dragonfly_client_download_traffic',
        'type="REMOTE_PEER"',
      );
      if (remote >= 8 * MiB) break;
      assert.ok(Date.now() < deadline, 'B takes pieces from A');
      await new Promise((r) => setTimeout(r, 50));
    }
    await stopDaemon(a, { signal: 'SIGKILL', keepDir: true });
    const rb = await pending;
    assert.equal(rb.code, 0, rb.stderr);
    assert.equal(await sha256File(join(out, 'b')), contentSha256(21, size));
    assert.ok(
      origin.pieceRequests('/dead-parent.bin').length > fromOrigin,
      'B fetched what A could not give from the origin (A died before B had everything)',
    );

    // A is B's only parent: every failed piece of B is an attempt at A.
    const failures = b.logs
      .map((l) => {
        try {
          return JSON.parse(l) as LogLine;
        } catch {
          return {} as LogLine;
        }
      })
      .filter((l) => l.msg === 'piece from parent failed');
    console.log(
      `B's failed attempts at the dead parent: ${failures.length}` +
        (failures.length > 1 ? `, over ${failures.at(-1)!.time! - failures[0]!.time!} ms` : ''),
    );
    assert.ok(failures.length >= 1, 'B was taking pieces from A when it died');
    assert.ok(failures.length <= 8, `B tried the dead parent ${failures.length} times`);
    if (failures.length > 1) {
      const span = failures.at(-1)!.time! - failures[0]!.time!;
      // Those attempts were already assigned to A and waiting for B's bandwidth limit (0.5 s a piece).
      assert.ok(span <= 5000, `B kept trying the dead parent for ${span} ms`);
    }
  });
});
