// dfdaemon against real third-party programs: nginx as the origin (Range requests, sendfile) and `buf curl` as
// a gRPC client on the download socket, with the upstream protos of the d7y.io/api/v2 Go module (and reflection).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { dfget, startDaemon, stopDaemon, tempDir, type DaemonHandle } from '../helpers/daemon.js';
import { buf, parseJsonStream, upstreamProtoDir } from '../helpers/buf.js';
import { findNginx, Nginx } from '../helpers/nginx.js';
import { sha256File } from '../helpers/files.js';

const MiB = 1024 * 1024;
const PIECE = 4 * MiB;
const SCHEMA = upstreamProtoDir();
const NGINX = findNginx();

/** `buf curl` over the daemon's socket; `schema` false uses server reflection. */
function bufCurl(
  socket: string,
  method: string,
  body: object | undefined,
  opts: { schema?: boolean; verbose?: boolean } = {},
) {
  const args = ['curl', '--protocol', 'grpc', '--http2-prior-knowledge', '--unix-socket', socket];
  if (opts.schema !== false) args.push('--schema', SCHEMA);
  if (opts.verbose) args.push('-v');
  if (body) args.push('-d', JSON.stringify(body));
  args.push(`http://localhost/${method}`);
  return buf(args);
}

interface JsonPiece {
  number?: number;
  offset?: string;
  length?: string;
  digest?: string;
}
interface JsonResponse {
  taskId?: string;
  downloadTaskStartedResponse?: { contentLength?: string; pieces?: JsonPiece[] };
  downloadPieceFinishedResponse?: { piece?: JsonPiece };
}

describe('dfdaemon with nginx and buf curl', () => {
  let nginx: Nginx;
  let daemon: DaemonHandle;
  let out: string;

  before(async () => {
    assert.ok(NGINX, 'nginx is not installed (.ci/run installs it)');
    nginx = new Nginx(NGINX);
    await nginx.start();
    daemon = await startDaemon();
    out = tempDir('dft-e2e-out-');
  });

  after(async () => {
    if (daemon) await stopDaemon(daemon);
    if (nginx) await nginx.stop();
    if (out) rmSync(out, { recursive: true, force: true });
  });

  test('dfget downloads 64 MiB + 1 and 3 bytes from nginx byte-exact, with Range requests', async () => {
    const big = nginx.addFile('big.bin', 64 * MiB + 1);
    const small = nginx.addFile('small.bin', 3);
    for (const [f, name] of [
      [big, 'big'],
      [small, 'small'],
    ] as const) {
      const file = join(out, name);
      const r = await dfget(daemon, f.url, file);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(await sha256File(file), f.sha256, `${name} is byte-exact`);
    }
    const ranged = nginx.accessEntries().filter((e) => e.request === 'GET /big.bin' && e.range);
    const pieces = ranged.filter((e) => e.range !== 'bytes=0-0');
    assert.ok(pieces.length >= Math.ceil((64 * MiB + 1) / PIECE) - 1, JSON.stringify(ranged));
    for (const e of pieces) {
      assert.match(e.range, /^bytes=\d+-\d+$/);
      assert.equal(e.status, 206);
    }
    // The last byte sits alone in the final piece of a 64 MiB + 1 file with 4 MiB pieces.
    assert.ok(
      pieces.some((e) => e.range === `bytes=${64 * MiB}-${64 * MiB}`),
      JSON.stringify(pieces),
    );
  });

  test('buf curl DownloadTask streams started + one response per piece; StatTask answers', async () => {
    const size = 9 * MiB + 7;
    const f = nginx.addFile('buf.bin', size);
    const output = join(out, 'buf-out');
    const r = await bufCurl(daemon.socket, 'dfdaemon.v2.DfdaemonDownload/DownloadTask', {
      download: { url: f.url, output_path: output },
    });
    assert.equal(r.code, 0, r.stderr);
    const msgs = parseJsonStream(r.stdout) as JsonResponse[];
    const startedMsg = msgs[0]?.downloadTaskStartedResponse;
    assert.ok(startedMsg, `first response is the started response: ${r.stdout.slice(0, 500)}`);
    assert.equal(startedMsg.contentLength, String(size));
    const pieceCount = Math.ceil(size / PIECE);
    assert.equal(startedMsg.pieces?.length, pieceCount);
    const finished = msgs.slice(1).map((m) => m.downloadPieceFinishedResponse?.piece);
    assert.equal(finished.length, pieceCount, r.stdout.slice(0, 2000));
    assert.deepEqual(
      finished.map((p) => p?.number ?? 0).sort((a, b) => a - b),
      Array.from({ length: pieceCount }, (_, i) => i),
    );
    for (const p of finished) assert.match(p?.digest ?? '', /^crc32:\d+$/);
    assert.equal(await sha256File(output), f.sha256);

    const taskId = msgs[0]!.taskId!;
    assert.match(taskId, /^[0-9a-f]{64}$/);
    const st = await bufCurl(daemon.socket, 'dfdaemon.v2.DfdaemonDownload/StatTask', { task_id: taskId });
    assert.equal(st.code, 0, st.stderr);
    const task = JSON.parse(st.stdout) as { id: string; contentLength: string };
    assert.equal(task.id, taskId);
    assert.equal(task.contentLength, String(size));
  });

  test('reflection lists the DfdaemonDownload methods; grpc.health.v1 Check answers SERVING', async () => {
    const list = await buf([
      'curl',
      '--protocol',
      'grpc',
      '--http2-prior-knowledge',
      '--unix-socket',
      daemon.socket,
      '--list-methods',
      'http://localhost',
    ]);
    assert.equal(list.code, 0, list.stderr);
    const methods = list.stdout.trim().split('\n');
    for (const m of ['DownloadTask', 'StatTask', 'DeleteTask', 'ListTaskEntries']) {
      assert.ok(methods.includes(`dfdaemon.v2.DfdaemonDownload/${m}`), list.stdout);
    }
    const health = await bufCurl(daemon.socket, 'grpc.health.v1.Health/Check', {}, { schema: false });
    assert.equal(health.code, 0, health.stderr);
    assert.deepEqual(JSON.parse(health.stdout), { status: 'SERVING' });
    const one = await bufCurl(
      daemon.socket,
      'grpc.health.v1.Health/Check',
      { service: 'dfdaemon.v2.DfdaemonDownload' },
      { schema: false },
    );
    assert.deepEqual(JSON.parse(one.stdout), { status: 'SERVING' });
  });

  test('a URL that 404s on nginx: buf curl fails and shows the status and errordetails', async () => {
    const output = join(out, 'missing');
    const r = await bufCurl(
      daemon.socket,
      'dfdaemon.v2.DfdaemonDownload/DownloadTask',
      { download: { url: `${nginx.url}/missing.bin`, output_path: output } },
      { verbose: true },
    );
    assert.notEqual(r.code, 0);
    const all = r.stdout + r.stderr;
    assert.match(all, /Grpc-Status: 13\b/i);
    assert.match(decodeURIComponent(/Grpc-Message: (.*)/i.exec(all)?.[1] ?? ''), /404/);
    // errordetails.v2.Backend as JSON in grpc-status-details-bin (upstream's form).
    const raw = /Grpc-Status-Details-Bin: (\S+)/i.exec(all)?.[1];
    assert.ok(raw, all);
    const details = JSON.parse(Buffer.from(raw, 'base64').toString('utf8')) as { status_code: number };
    assert.equal(details.status_code, 404);
    assert.match(all, /"code": "internal"/);
    assert.equal(existsSync(output), false);
  });
});
