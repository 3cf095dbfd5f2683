// Issue 16, item 13: requests that used to get a misleading answer get one that names the cause.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { Metadata, status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { downloadClient } from '../../src/cli/daemon-client.js';
import type { Download } from '../../src/gen/common.js';
import type { DownloadTaskResponse } from '../../src/gen/dfdaemon.js';
import { Origin } from '../helpers/origin.js';
import { DFGET, startDaemon, stopDaemon, tempDir, type DaemonHandle } from '../helpers/daemon.js';
import { testDownload } from '../helpers/download.js';
import { runCommand } from '../helpers/exec.js';
import { waitUntil } from '../helpers/child-process.js';

const MiB = 1024 * 1024;

describe('error answers name their cause', () => {
  const origin = new Origin();
  let daemon: DaemonHandle;
  let client: ReturnType<typeof downloadClient>;
  let out: string;

  before(async () => {
    await origin.start();
    daemon = await startDaemon();
    client = downloadClient(daemon.socket);
    out = tempDir('dft-errors-');
  });

  after(async () => {
    client.close();
    await stopDaemon(daemon);
    await origin.stop();
    rmSync(out, { recursive: true, force: true });
  });

  /** The status a DownloadTask ends with (OK when the stream ends normally). */
  function downloadStatus(d: Download): Promise<{ code: number; details: string }> {
    return new Promise((resolve) => {
      const stream = client.downloadTask({ download: d }, { deadline: Date.now() + 30_000 });
      stream.on('data', (_: DownloadTaskResponse) => undefined);
      stream.on('error', (e: ServiceError) => resolve({ code: e.code, details: e.details }));
      stream.on('end', () => resolve({ code: GrpcStatus.OK, details: '' }));
    });
  }

  test('a 3 MB task id is NOT_FOUND (the status message is bounded), not RESOURCE_EXHAUSTED', async () => {
    const id = 'a'.repeat(3 * MiB);
    const err = await new Promise<ServiceError>((resolve) =>
      client.statTask({ taskId: id }, new Metadata(), { deadline: Date.now() + 20_000 }, (e) => resolve(e!)),
    );
    assert.equal(err.code, GrpcStatus.NOT_FOUND, err.details);
    assert.ok(err.details.length < 2048);
    assert.match(err.details, /^task a{64}… \(an id of 3145728 characters\) not found$/);
  });

  test('an unreachable origin is UNAVAILABLE naming the host', async () => {
    const r = await downloadStatus(testDownload('http://127.0.0.1:1/nothing-listens-here'));
    assert.equal(r.code, GrpcStatus.UNAVAILABLE, r.details);
    assert.match(r.details, /cannot reach 127\.0\.0\.1:1: connection refused/);
  });

  test('timeouts of 2^62 s and -5 s are INVALID_ARGUMENT naming download.timeout', async () => {
    const url = origin.add('/t', { size: 10, seed: 1 });
    const huge = await downloadStatus(testDownload(url, { timeout: { seconds: 2 ** 62, nanos: 0 } }));
    assert.equal(huge.code, GrpcStatus.INVALID_ARGUMENT, huge.details);
    assert.match(huge.details, /download\.timeout 4611686018427387904s is too long/);
    const negative = await downloadStatus(testDownload(url, { timeout: { seconds: -5, nanos: 0 } }));
    assert.equal(negative.code, GrpcStatus.INVALID_ARGUMENT, negative.details);
    assert.match(negative.details, /download\.timeout -5s must be positive/);
  });

  test('priority 99 and type 99 are INVALID_ARGUMENT', async () => {
    const url = origin.add('/p', { size: 10, seed: 2 });
    const p = await downloadStatus(testDownload(url, { priority: 99 as never }));
    assert.equal(p.code, GrpcStatus.INVALID_ARGUMENT, p.details);
    assert.match(p.details, /download\.priority 99 is not a priority/);
    const t = await downloadStatus(testDownload(url, { type: 99 as never }));
    assert.equal(t.code, GrpcStatus.INVALID_ARGUMENT, t.details);
    assert.match(t.details, /download\.type 99 is not a task type/);
  });

  test('a range past the end is INVALID_ARGUMENT naming the content length', async () => {
    const url = origin.add('/r', { size: 1000, seed: 3 });
    const r = await downloadStatus(testDownload(url, { range: { start: 900, length: 200 } }));
    assert.equal(r.code, GrpcStatus.INVALID_ARGUMENT, r.details);
    assert.match(r.details, /ends at byte 1100, past the content length 1000/);
    const inside = await downloadStatus(testDownload(url, { range: { start: 900, length: 100 } }));
    assert.equal(inside.code, GrpcStatus.OK, inside.details);
  });

  test('dfdaemon dying mid-download is reported as such, not as "Connect Dfdaemon Failed"', async () => {
    const own = await startDaemon();
    try {
      const url = origin.add('/slow', { size: 64 * MiB, seed: 4, delayMs: 300 });
      const dl = runCommand(process.execPath, [DFGET, url, '-O', join(out, 'slow'), '-e', own.socket]);
      await waitUntil(() => origin.requests.some((r) => r.path === '/slow' && r.range !== 'bytes=0-0'), {
        proc: own.proc,
        what: 'dfdaemon',
        until: 'start fetching pieces',
        timeoutMs: 20_000,
      });
      own.proc.kill('SIGKILL');
      const r = await dl;
      assert.equal(r.code, 1);
      assert.doesNotMatch(r.stderr, /Connect Dfdaemon Failed/);
      assert.match(r.stderr, /dfdaemon closed the connection during the download .*did it stop or crash/);
    } finally {
      await stopDaemon(own);
    }
  });
});
