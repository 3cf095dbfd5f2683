// dfdaemon.v2.DfdaemonDownload through our generated client on the unix socket (as dfget does), against a
// dfdaemon process and the Node origin: piece content, ranges, StatTask/DeleteTask/ListTaskEntries, hostile
// output paths, hard links, origin errors with errordetails, deadlines, graceful shutdown and a bad config.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { downloadClient } from '../../src/cli/daemon-client.js';
import { pieceDigest } from '../../src/core/digest.js';
import { type Download, type Task } from '../../src/gen/common.js';
import type { DfdaemonDownloadClient, DownloadTaskResponse } from '../../src/gen/dfdaemon.js';
import { contentSlice, Origin } from '../helpers/origin.js';
import { testDownload } from '../helpers/download.js';
import { DFDAEMON, run, startDaemon, stopDaemon, tempDir, type DaemonHandle } from '../helpers/daemon.js';

const MiB = 1024 * 1024;
const PIECE = 4 * MiB;

const download = testDownload;

interface Outcome {
  msgs: DownloadTaskResponse[];
  err?: ServiceError;
}

async function downloadTask(
  client: DfdaemonDownloadClient,
  d: Download,
  deadlineMs = 60_000,
): Promise<Outcome> {
  const msgs: DownloadTaskResponse[] = [];
  const stream = client.downloadTask({ download: d }, { deadline: Date.now() + deadlineMs });
  try {
    for await (const m of stream as AsyncIterable<DownloadTaskResponse>) msgs.push(m);
    return { msgs };
  } catch (e) {
    return { msgs, err: e as ServiceError };
  }
}

function unary<Req, Res>(
  fn: (req: Req, cb: (err: ServiceError | null, res: Res) => void) => unknown,
  req: Req,
): Promise<{ res?: Res; err?: ServiceError }> {
  return new Promise((resolve) => fn(req, (err, res) => resolve(err ? { err } : { res })));
}

function statTask(client: DfdaemonDownloadClient, taskId: string) {
  return unary<{ taskId: string; remoteIp?: string; localOnly: boolean }, Task>(
    (r, cb) => client.statTask(r, cb),
    { taskId, localOnly: false },
  );
}

function assertCode(err: ServiceError | undefined, code: number, what: string): asserts err {
  assert.ok(err, `${what}: expected ${GrpcStatus[code]}, got success`);
  assert.equal(err.code, code, `${what}: got ${GrpcStatus[err.code]} (${err.details})`);
}

function finishedPieces(msgs: DownloadTaskResponse[]) {
  return msgs.flatMap((m) =>
    m.downloadPieceFinishedResponse?.piece ? [m.downloadPieceFinishedResponse.piece] : [],
  );
}

describe('DfdaemonDownload service', () => {
  const origin = new Origin();
  let daemon: DaemonHandle;
  let client: DfdaemonDownloadClient;
  let out: string;

  before(async () => {
    await origin.start();
    daemon = await startDaemon();
    client = downloadClient(daemon.socket);
    out = tempDir('dft-svc-out-');
  });

  after(async () => {
    client?.close();
    if (daemon) await stopDaemon(daemon);
    await origin.stop();
    rmSync(out, { recursive: true, force: true });
  });

  test('need_piece_content returns every piece with its bytes and a matching crc32 digest', async () => {
    const size = 9 * MiB + 5;
    const url = origin.add('/content', { size, seed: 31 });
    const { msgs, err } = await downloadTask(client, download(url, { needPieceContent: true }));
    assert.ifError(err);
    const started = msgs[0]?.downloadTaskStartedResponse;
    assert.ok(started);
    assert.equal(started.contentLength, size);
    const pieces = finishedPieces(msgs);
    assert.equal(pieces.length, Math.ceil(size / PIECE));
    assert.deepEqual(
      pieces.map((p) => p.number).sort((a, b) => a - b),
      [0, 1, 2],
    );
    for (const p of pieces) {
      assert.ok(p.content, `piece ${p.number} has content`);
      assert.equal(p.content.length, p.length);
      assert.equal(p.digest, pieceDigest(p.content));
      assert.ok(p.content.equals(contentSlice(31, p.offset, p.offset + p.length)), `piece ${p.number} bytes`);
    }
  });

  test('a range returns only the overlapping pieces and the started response echoes it', async () => {
    const size = 12 * MiB + 3;
    const url = origin.add('/range', { size, seed: 32 });
    const range = { start: 3 * MiB, length: 2 * MiB };
    const { msgs, err } = await downloadTask(client, download(url, { range, needPieceContent: true }));
    assert.ifError(err);
    const started = msgs[0]?.downloadTaskStartedResponse;
    assert.ok(started);
    assert.deepEqual(started.range, range);
    assert.deepEqual(
      started.pieces.map((p) => p.number),
      [0, 1],
    );
    const pieces = finishedPieces(msgs);
    assert.deepEqual(
      pieces.map((p) => p.number).sort((a, b) => a - b),
      [0, 1],
    );
    for (const p of pieces) assert.equal(p.digest, pieceDigest(p.content!));
  });

  test('a range past the end is INVALID_ARGUMENT', async () => {
    const size = 12 * MiB + 3;
    const url = origin.add('/range-end', { size, seed: 33 });
    for (const start of [size + 10, 16 * MiB]) {
      const { msgs, err } = await downloadTask(client, download(url, { range: { start, length: 5 } }));
      assertCode(err, GrpcStatus.INVALID_ARGUMENT, `range start ${start}`);
      assert.equal(finishedPieces(msgs).length, 0);
    }
  });

  test('StatTask: unknown id is NOT_FOUND; a finished task has length, piece count and Succeeded', async () => {
    const unknown = await statTask(client, 'f'.repeat(64));
    assertCode(unknown.err, GrpcStatus.NOT_FOUND, 'unknown task');
    const size = 5 * MiB + 1;
    const url = origin.add('/stat', { size, seed: 34 });
    const { msgs, err } = await downloadTask(client, download(url, { outputPath: join(out, 'stat') }));
    assert.ifError(err);
    const taskId = msgs[0]!.taskId;
    const { res, err: e2 } = await statTask(client, taskId);
    assert.ifError(e2);
    assert.equal(res!.id, taskId);
    assert.equal(res!.contentLength, size);
    assert.equal(res!.pieceCount, 2);
    assert.equal(res!.state, 'Succeeded');
  });

  test('DeleteTask removes the task: StatTask is NOT_FOUND and the next download goes to the origin', async () => {
    const size = 5 * MiB;
    const url = origin.add('/delete', { size, seed: 35 });
    const first = await downloadTask(client, download(url, { outputPath: join(out, 'delete-1') }));
    assert.ifError(first.err);
    const taskId = first.msgs[0]!.taskId;
    const fetched = origin.pieceRequests('/delete').length;
    assert.equal(fetched, 2);

    const del = await unary((r: { taskId: string; remoteIp?: string }, cb) => client.deleteTask(r, cb), {
      taskId,
    });
    assert.ifError(del.err);
    assertCode((await statTask(client, taskId)).err, GrpcStatus.NOT_FOUND, 'stat after delete');
    const again = await unary((r: { taskId: string; remoteIp?: string }, cb) => client.deleteTask(r, cb), {
      taskId,
    });
    assertCode(again.err, GrpcStatus.NOT_FOUND, 'second delete');

    const second = await downloadTask(client, download(url, { outputPath: join(out, 'delete-2') }));
    assert.ifError(second.err);
    assert.equal(origin.pieceRequests('/delete').length, fetched + 2, 'pieces fetched from the origin again');
    assert.ok(statSync(join(out, 'delete-2')).size === size);
  });

  test('ListTaskEntries for http is INVALID_ARGUMENT with a clear message', async () => {
    const { err } = await unary(
      (r: Parameters<DfdaemonDownloadClient['listTaskEntries']>[0], cb) => client.listTaskEntries(r, cb),
      { taskId: '', url: `${origin.url}/dir/`, requestHeader: {}, certificateChain: [] },
    );
    assertCode(err, GrpcStatus.INVALID_ARGUMENT, 'ListTaskEntries http');
    assert.match(err.details, /http/);
    assert.match(err.details, /unsupported|not supported/i);
  });

  test('hostile output paths are refused before anything is fetched or written', async () => {
    const url = origin.add('/hostile', { size: 1000, seed: 36 });
    const cases: Array<[string, number]> = [
      ['relative/out', GrpcStatus.INVALID_ARGUMENT],
      [join(daemon.storageDir, 'content', 'x'), GrpcStatus.PERMISSION_DENIED],
      [daemon.storageDir, GrpcStatus.PERMISSION_DENIED],
      [join(daemon.storageDir, '..', 'storage', 'metadata-evil'), GrpcStatus.PERMISSION_DENIED],
      [join(out, 'nul\0byte'), GrpcStatus.INVALID_ARGUMENT],
      ['', GrpcStatus.INVALID_ARGUMENT],
    ];
    const storageBefore = readdirSync(daemon.storageDir).sort();
    for (const [path, code] of cases) {
      const { msgs, err } = await downloadTask(client, download(url, { outputPath: path }));
      assertCode(err, code, `output ${JSON.stringify(path)}`);
      assert.equal(msgs.length, 0);
    }
    assert.equal(
      origin.requests.filter((r) => r.path === '/hostile').length,
      0,
      'no request reached the origin',
    );
    assert.deepEqual(readdirSync(daemon.storageDir).sort(), storageBefore);
    assert.equal(existsSync(join(daemon.storageDir, 'content', 'x')), false);
    assert.equal(existsSync(join(daemon.storageDir, 'metadata-evil')), false);
    assert.equal(existsSync(join(out, 'nul')), false);
  });

  test('force_hard_link links the output to the task content (same inode)', async () => {
    const size = 4 * MiB + 9;
    const url = origin.add('/link', { size, seed: 37 });
    const output = join(out, 'linked');
    const { msgs, err } = await downloadTask(
      client,
      download(url, { outputPath: output, forceHardLink: true }),
    );
    assert.ifError(err);
    const taskId = msgs[0]!.taskId;
    const content = join(daemon.storageDir, 'content', 'tasks', taskId.slice(0, 3), taskId);
    const a = statSync(output);
    const b = statSync(content);
    assert.equal(a.ino, b.ino);
    assert.equal(a.dev, b.dev);
    assert.equal(a.size, size);
  });

  test('force_hard_link to another filesystem fails and leaves nothing', async (t) => {
    const shm = '/dev/shm';
    if (!existsSync(shm) || statSync(shm).dev === statSync(daemon.storageDir).dev) {
      t.skip('no second filesystem (/dev/shm) to link across');
      return;
    }
    const url = origin.add('/xdev', { size: 1000, seed: 38 });
    const output = join(shm, `dft-xdev-${process.pid}-${Date.now()}`);
    try {
      const { err } = await downloadTask(client, download(url, { outputPath: output, forceHardLink: true }));
      assertCode(err, GrpcStatus.INVALID_ARGUMENT, 'cross-device force_hard_link');
      assert.match(err.details, /hard link/);
      assert.equal(existsSync(output), false);
      // Without force_hard_link the same output is a copy.
      const copy = await downloadTask(client, download(url, { outputPath: output }));
      assert.ifError(copy.err);
      assert.equal(statSync(output).size, 1000);
    } finally {
      rmSync(output, { force: true });
    }
  });

  test('an origin 500 is INTERNAL with errordetails JSON after 1 + backend.maxRetries attempts', async () => {
    origin.add('/fail', { size: 100, seed: 39, status: 500 });
    const { err } = await downloadTask(
      client,
      download(`${origin.url}/fail`, { outputPath: join(out, 'fail') }),
    );
    assertCode(err, GrpcStatus.INTERNAL, 'origin 500');
    const raw = err.metadata.get('grpc-status-details-bin')[0];
    assert.ok(raw, 'grpc-status-details-bin is set');
    const details = JSON.parse(Buffer.from(raw as Buffer).toString('utf8')) as {
      message: string;
      header: Record<string, string>;
      status_code: number;
    };
    assert.equal(details.status_code, 500);
    assert.equal(typeof details.message, 'string');
    assert.equal(details.header['x-origin'], 'test');
    assert.equal(origin.requests.filter((r) => r.path === '/fail').length, 2, 'one attempt and one retry');
    assert.equal(existsSync(join(out, 'fail')), false);
  });

  test('a deadline the origin exceeds is DEADLINE_EXCEEDED (client deadline and download.timeout)', async () => {
    const url = origin.add('/slow', { size: 1000, seed: 40, delayMs: 3000 });
    const t0 = Date.now();
    const a = await downloadTask(client, download(url, { outputPath: join(out, 'slow-a') }), 500);
    assertCode(a.err, GrpcStatus.DEADLINE_EXCEEDED, 'client deadline');
    assert.ok(Date.now() - t0 < 2500);

    const url2 = origin.add('/slow2', { size: 1000, seed: 41, delayMs: 3000 });
    const t1 = Date.now();
    const b = await downloadTask(
      client,
      download(url2, { outputPath: join(out, 'slow-b'), timeout: { seconds: 0, nanos: 500e6 } }),
    );
    assertCode(b.err, GrpcStatus.DEADLINE_EXCEEDED, 'download.timeout');
    assert.ok(Date.now() - t1 < 2500, `answered after ${Date.now() - t1} ms`);
    assert.equal(existsSync(join(out, 'slow-b')), false);

    // The daemon is still serving.
    const ok = await downloadTask(client, download(origin.add('/after-slow', { size: 10, seed: 42 })));
    assert.ifError(ok.err);
  });
});

describe('dfdaemon process', () => {
  test('SIGTERM: exits 0 within a few seconds, even with a download in flight; the socket is gone', async () => {
    const origin = new Origin();
    await origin.start();
    const daemon = await startDaemon();
    const client = downloadClient(daemon.socket);
    try {
      const url = origin.add('/inflight', { size: 1000, seed: 50, delayMs: 30_000 });
      const pending = downloadTask(client, download(url, { outputPath: join(daemon.dir, 'inflight') }));
      await new Promise((r) => setTimeout(r, 300));
      const exited = new Promise<number | null>((r) => daemon.proc.once('exit', (code) => r(code)));
      const t0 = Date.now();
      daemon.proc.kill('SIGTERM');
      const code = await exited;
      assert.equal(code, 0);
      assert.ok(Date.now() - t0 < 4000, `stopped after ${Date.now() - t0} ms`);
      const { err } = await pending;
      assert.ok(err, 'the in-flight download ends with an error');
      assert.ok(
        [GrpcStatus.UNAVAILABLE, GrpcStatus.CANCELLED].includes(err.code),
        `${GrpcStatus[err.code]}: ${err.details}`,
      );
      if (existsSync(daemon.socket)) {
        const after = await statTask(client, 'x');
        assertCode(after.err, GrpcStatus.UNAVAILABLE, 'call after shutdown');
      }
    } finally {
      client.close();
      await stopDaemon(daemon);
      await origin.stop();
    }
  });

  test('a malformed dfdaemon.yaml: exit 1 with one line naming the file and line', async () => {
    const dir = tempDir();
    try {
      mkdirSync(join(dir, 'x'), { recursive: true });
      const config = join(dir, 'dfdaemon.yaml');
      writeFileSync(config, 'host:\n  ip: 127.0.0.1\nstorage:\n  dir: [unclosed\n  keep: true\n');
      const r = await run([DFDAEMON, '-c', config, '--console'], { env: { HOME: dir }, timeoutMs: 15_000 });
      assert.equal(r.code, 1, r.stderr);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, r.stderr);
      assert.ok(lines[0]!.includes(config), r.stderr);
      assert.match(lines[0]!, new RegExp(`${config.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+`));
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
