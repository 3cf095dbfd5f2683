// The real third-party gRPC client `buf curl`, with the upstream protos of the d7y.io/api/v2 Go module, against
// (1) a dfscheduler process (scheduler.v2.Scheduler: AnnounceHost, ListHosts, StatTask, DeleteHost; health and
// reflection) and (2) a dfdaemon's upload server on TCP (dfdaemon.v2.DfdaemonUpload: StatTask, SyncPieces,
// SyncHost) after a dfget of a 9 MiB file from the Node origin. Every process is ended by its PID.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { dfget, startDaemon, stopDaemon, tempDir, type DaemonHandle } from '../helpers/daemon.js';
import { Origin, contentSha256 } from '../helpers/origin.js';
import { sha256File } from '../helpers/files.js';
import { BUF, buf, parseJsonStream, upstreamProtoDir, type BufResult } from '../helpers/buf.js';
import { startScheduler, stopScheduler, type SchedulerHandle } from '../helpers/scheduler-process.js';
import { DEFAULT_FILTERED_QUERY_PARAMS, taskIdFromUrl } from '../../src/core/task-id.js';

const MiB = 1024 * 1024;
const PIECE = 4 * MiB;

const SCHEMA = upstreamProtoDir();

function curlArgs(addr: string, method: string, body: object | undefined, schema = true): string[] {
  const args = ['curl', '--protocol', 'grpc', '--http2-prior-knowledge'];
  if (schema) args.push('--schema', SCHEMA);
  if (body) args.push('-d', JSON.stringify(body));
  args.push(`http://${addr}/${method}`);
  return args;
}

function bufCurl(addr: string, method: string, body?: object, schema = true): Promise<BufResult> {
  return buf(curlArgs(addr, method, body, schema));
}

/**
 * Runs buf curl on a server stream that never ends by itself: reads stdout until the first complete JSON
 * document, then ends buf by its PID (SIGKILL after 5 s if SIGTERM is not enough). Fails after `timeoutMs`.
 */
function bufFirstMessage(args: string[], timeoutMs = 30_000): Promise<{ first: unknown; stderr: string }> {
  return new Promise((done, fail) => {
    const p = spawn(BUF, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let first: unknown;
    let killTimer: NodeJS.Timeout | undefined;
    const stop = () => {
      if (p.exitCode === null && p.signalCode === null) {
        p.kill('SIGTERM');
        killTimer ??= setTimeout(() => p.kill('SIGKILL'), 5000);
      }
    };
    const timer = setTimeout(stop, timeoutMs);
    p.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      if (first === undefined) {
        const msgs = parseJsonStream(stdout);
        if (msgs.length > 0) {
          first = msgs[0];
          stop();
        }
      }
    });
    p.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    p.once('error', (e) => {
      clearTimeout(timer);
      fail(e);
    });
    p.once('close', (code) => {
      clearTimeout(timer);
      if (killTimer) clearTimeout(killTimer);
      if (first === undefined) fail(new Error(`buf exited ${code} with no message:\n${stdout}\n${stderr}`));
      else done({ first, stderr });
    });
  });
}

interface JsonHost {
  id?: string;
  type?: number;
  hostname?: string;
  ip?: string;
  port?: number;
  downloadPort?: number;
}

describe('buf curl against dfscheduler (scheduler.v2.Scheduler)', () => {
  let sched: SchedulerHandle;
  const hostId = `buf-host-${process.pid}-${Date.now()}`;
  const host = {
    id: hostId,
    type: 0,
    hostname: `buf-${process.pid}`,
    ip: '127.0.0.1',
    port: 4000,
    download_port: 4001,
    os: 'linux',
    platform: 'debian',
    platform_family: 'debian',
    platform_version: '12',
    kernel_version: '6.1.0',
    cpu: { logical_count: 4, physical_count: 2, percent: 1.5, process_percent: 0.5 },
    memory: { total: '8589934592', available: '4294967296', used: '4294967296', used_percent: 50 },
    network: {
      tcp_connection_count: '10',
      upload_tcp_connection_count: '1',
      idc: 'idc-a',
      location: 'loc-a',
    },
    disk: { total: '107374182400', free: '53687091200', used: '53687091200', used_percent: 50 },
    build: { git_version: 'v2.0.0', platform: 'linux/amd64' },
  };

  before(async () => {
    sched = await startScheduler();
  });

  after(async () => {
    if (sched) await stopScheduler(sched);
  });

  const listIds = async (): Promise<string[]> => {
    const r = await bufCurl(sched.addr, 'scheduler.v2.Scheduler/ListHosts', {});
    assert.equal(r.code, 0, r.stderr);
    const res = JSON.parse(r.stdout) as { hosts?: JsonHost[] };
    return (res.hosts ?? []).map((h) => h.id ?? '');
  };

  test('AnnounceHost → ok; ListHosts contains it; DeleteHost → ok and it is gone', async () => {
    const ann = await bufCurl(sched.addr, 'scheduler.v2.Scheduler/AnnounceHost', {
      host,
      interval: '300s',
    });
    assert.equal(ann.code, 0, ann.stderr);
    assert.deepEqual(JSON.parse(ann.stdout || '{}'), {});

    const r = await bufCurl(sched.addr, 'scheduler.v2.Scheduler/ListHosts', {});
    assert.equal(r.code, 0, r.stderr);
    const hosts = (JSON.parse(r.stdout) as { hosts?: JsonHost[] }).hosts ?? [];
    const mine = hosts.find((h) => h.id === hostId);
    assert.ok(mine, r.stdout);
    assert.equal(mine.hostname, host.hostname);
    assert.equal(mine.ip, '127.0.0.1');
    assert.equal(mine.port, 4000);
    assert.equal(mine.downloadPort, 4001);
    assert.equal(mine.type ?? 0, 0);

    // Type filter: a normal host is not a seed (type 1).
    const seeds = await bufCurl(sched.addr, 'scheduler.v2.Scheduler/ListHosts', { type: 1 });
    assert.equal(seeds.code, 0, seeds.stderr);
    const seedIds = ((JSON.parse(seeds.stdout) as { hosts?: JsonHost[] }).hosts ?? []).map((h) => h.id);
    assert.ok(!seedIds.includes(hostId), seeds.stdout);

    // ListHosts answers only addresses that announced a host (docs/security.md): a second host from this
    // address keeps it a member once the first is deleted.
    const witness = await bufCurl(sched.addr, 'scheduler.v2.Scheduler/AnnounceHost', {
      host: { ...host, id: `${hostId}-witness` },
    });
    assert.equal(witness.code, 0, witness.stderr);
    const del = await bufCurl(sched.addr, 'scheduler.v2.Scheduler/DeleteHost', { host_id: hostId });
    assert.equal(del.code, 0, del.stderr);
    assert.ok(!(await listIds()).includes(hostId));

    // Deleting it again: the host is unknown now.
    const again = await bufCurl(sched.addr, 'scheduler.v2.Scheduler/DeleteHost', { host_id: hostId });
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, /"code": "not_found"/);
  });

  test('AnnounceHost without a host id → invalid_argument', async () => {
    const r = await bufCurl(sched.addr, 'scheduler.v2.Scheduler/AnnounceHost', {
      host: { ...host, id: '' },
    });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /"code": "invalid_argument"/);
  });

  test('StatTask of an unknown task id → not_found', async () => {
    const r = await bufCurl(sched.addr, 'scheduler.v2.Scheduler/StatTask', {
      host_id: hostId,
      task_id: 'f'.repeat(64),
    });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /"code": "not_found"/);
  });

  test('grpc.health.v1 Check is SERVING; reflection lists scheduler.v2.Scheduler', async () => {
    const health = await bufCurl(sched.addr, 'grpc.health.v1.Health/Check', {}, false);
    assert.equal(health.code, 0, health.stderr);
    assert.deepEqual(JSON.parse(health.stdout), { status: 'SERVING' });

    const list = await buf([
      'curl',
      '--protocol',
      'grpc',
      '--http2-prior-knowledge',
      '--list-methods',
      `http://${sched.addr}`,
    ]);
    assert.equal(list.code, 0, list.stderr);
    const methods = list.stdout.trim().split('\n');
    for (const m of ['AnnounceHost', 'ListHosts', 'DeleteHost', 'StatTask', 'AnnouncePeer']) {
      assert.ok(methods.includes(`scheduler.v2.Scheduler/${m}`), list.stdout);
    }
  });
});

describe('buf curl against a dfdaemon upload server (dfdaemon.v2.DfdaemonUpload)', () => {
  let origin: Origin;
  let daemon: DaemonHandle;
  let out: string;
  let upload: string;
  const size = 9 * MiB;
  let url: string;
  let taskId: string;

  before(async () => {
    origin = new Origin();
    await origin.start();
    daemon = await startDaemon();
    out = tempDir('dft-buf-upload-');
    upload = `127.0.0.1:${daemon.uploadPort}`;
    url = origin.add('/nine.bin', { size, seed: 9 });
    const file = join(out, 'nine.bin');
    const r = await dfget(daemon, url, file);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await sha256File(file), contentSha256(9, size));
    taskId = taskIdFromUrl({ url, filteredQueryParams: DEFAULT_FILTERED_QUERY_PARAMS });
  });

  after(async () => {
    if (daemon) await stopDaemon(daemon);
    if (origin) await origin.stop();
    if (out) rmSync(out, { recursive: true, force: true });
  });

  test('StatTask with the task id → contentLength and pieces', async () => {
    const r = await bufCurl(upload, 'dfdaemon.v2.DfdaemonUpload/StatTask', { task_id: taskId });
    assert.equal(r.code, 0, r.stderr);
    const task = JSON.parse(r.stdout) as { id: string; contentLength: string; pieceLength?: string };
    assert.equal(task.id, taskId);
    assert.equal(task.contentLength, String(size));
  });

  test('SyncPieces [0,1,2] → three responses with number/offset/length/ip/tcpPort; the stream ends', async () => {
    const r = await bufCurl(upload, 'dfdaemon.v2.DfdaemonUpload/SyncPieces', {
      host_id: 'buf-child',
      task_id: taskId,
      interested_piece_numbers: [0, 1, 2],
    });
    assert.equal(r.code, 0, r.stderr);
    const msgs = parseJsonStream(r.stdout) as Array<{
      number?: number;
      offset?: string;
      length?: string;
      ip?: string;
      tcpPort?: number;
    }>;
    assert.equal(msgs.length, 3, r.stdout);
    const byNumber = [...msgs].sort((a, b) => (a.number ?? 0) - (b.number ?? 0));
    const lengths = [PIECE, PIECE, size - 2 * PIECE];
    byNumber.forEach((m, i) => {
      assert.equal(m.number ?? 0, i);
      assert.equal(m.offset ?? '0', String(i * PIECE));
      assert.equal(m.length, String(lengths[i]));
      assert.equal(m.ip, '127.0.0.1');
      assert.equal(m.tcpPort, daemon.vortexPort);
    });
  });

  test('SyncPieces [1, 7] of a 3-piece task → only piece 1; the stream still ends', async () => {
    const r = await bufCurl(upload, 'dfdaemon.v2.DfdaemonUpload/SyncPieces', {
      host_id: 'buf-child',
      task_id: taskId,
      interested_piece_numbers: [1, 7],
    });
    assert.equal(r.code, 0, r.stderr);
    const msgs = parseJsonStream(r.stdout) as Array<{ number?: number }>;
    assert.deepEqual(
      msgs.map((m) => m.number ?? 0),
      [1],
    );
  });

  test('SyncPieces for an unknown task → not_found', async () => {
    const r = await bufCurl(upload, 'dfdaemon.v2.DfdaemonUpload/SyncPieces', {
      host_id: 'buf-child',
      task_id: 'e'.repeat(64),
      interested_piece_numbers: [0],
    });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /"code": "not_found"/);
  });

  test('SyncHost streams our Host (ended by PID after the first message)', async () => {
    const { first } = await bufFirstMessage(
      curlArgs(upload, 'dfdaemon.v2.DfdaemonUpload/SyncHost', { host_id: 'buf-child', peer_id: 'buf-peer' }),
    );
    const h = first as JsonHost;
    assert.equal(h.id, daemon.hostId);
    assert.equal(h.ip, '127.0.0.1');
    assert.equal(h.port, daemon.uploadPort);
  });
});
