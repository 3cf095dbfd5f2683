// The embedded scheduler over real gRPC on loopback: AnnouncePeer flows (back-to-source, parents, reschedule,
// blocked parents, vanished peers, metadata-only, empty tasks, seed triggers), the unary RPCs, host GC, and the
// dfscheduler binary. Every server is closed and every process killed by PID in the test that made it.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import { createServer, type Server as NetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  credentials,
  makeGenericClientConstructor,
  Server,
  ServerCredentials,
  status as GrpcStatus,
  type ServerWritableStream,
  type ServiceError,
} from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import pino from 'pino';
import { Download, Priority, TaskType } from '../../src/gen/common.js';
import {
  DfdaemonUploadService,
  type DownloadTaskRequest,
  type DownloadTaskResponse,
} from '../../src/gen/dfdaemon.js';
import { AnnouncePeerRequest, SchedulerClient } from '../../src/gen/scheduler.js';
import type { PartialSchedulerOptions } from '../../src/scheduler/embedded/options.js';
import { EmbeddedScheduler } from '../../src/scheduler/embedded/scheduler-server.js';
import {
  announceHost,
  download,
  rpc,
  piece,
  PeerStream,
  schedulerClient,
} from '../helpers/scheduler-client.js';

const silent = pino({ level: 'silent' });
const FAST: PartialSchedulerOptions = { retryIntervalMs: 10, registerBackoffBaseMs: 0 };

async function withScheduler(
  f: (client: SchedulerClient, scheduler: EmbeddedScheduler) => Promise<void>,
  options: PartialSchedulerOptions = FAST,
): Promise<void> {
  const scheduler = new EmbeddedScheduler({ ip: '127.0.0.1', port: 0, log: silent, options });
  const port = await scheduler.start();
  const client = schedulerClient(port);
  try {
    await f(client, scheduler);
  } finally {
    client.close();
    await scheduler.stop();
  }
}

/** Drives a peer through register → NeedBackToSource → back-to-source of `pieces` pieces → finished. */
async function backToSource(
  client: SchedulerClient,
  hostId: string,
  taskId: string,
  peerId: string,
  pieces = 3,
) {
  const s = new PeerStream(client, hostId, taskId, peerId);
  s.register(download());
  const r = await s.next();
  assert.ok(r?.needBackToSourceResponse, `expected NeedBackToSource, got ${JSON.stringify(r)}`);
  s.send({ downloadPeerBackToSourceStartedRequest: {} });
  for (let i = 0; i < pieces; i++) s.send({ downloadPieceBackToSourceFinishedRequest: { piece: piece(i) } });
  s.send({ downloadPeerBackToSourceFinishedRequest: {} });
  const st = await s.finalStatus();
  assert.equal(st.code, GrpcStatus.OK);
  return s;
}

const TASK = 'a'.repeat(64);

describe('embedded scheduler: AnnouncePeer', () => {
  test('register before AnnounceHost is NOT_FOUND', () =>
    withScheduler(async (client) => {
      const s = new PeerStream(client, 'host-x', TASK, 'peer-x');
      s.register(download());
      const st = await s.finalStatus();
      assert.equal(st.code, GrpcStatus.NOT_FOUND);
      assert.match(st.details, /host host-x not found/);
    }));

  test('register without url or ids is INVALID_ARGUMENT', () =>
    withScheduler(async (client) => {
      await announceHost(client, { id: 'host-a' });
      const s = new PeerStream(client, 'host-a', TASK, 'peer-a');
      s.register(download({ url: '' }));
      assert.equal((await s.finalStatus()).code, GrpcStatus.INVALID_ARGUMENT);
      const t = new PeerStream(client, 'host-a', '', 'peer-b');
      t.register(download());
      assert.equal((await t.finalStatus()).code, GrpcStatus.INVALID_ARGUMENT);
    }));

  test('first peer without seeds goes back to source; the server ends the stream; the task succeeds', () =>
    withScheduler(async (client) => {
      await announceHost(client, { id: 'host-a' });
      await backToSource(client, 'host-a', TASK, 'peer-a', 3);
      const task = await rpc(client).statTask({ hostId: '', taskId: TASK });
      assert.equal(task.state, 'Succeeded');
      assert.deepEqual(
        task.pieces.map((p) => p.number),
        [0, 1, 2],
      );
      assert.equal(task.contentLength, 3 * 4 * 1024 * 1024);
      assert.equal(task.peerCount, 1);
      const peer = await rpc(client).statPeer({ hostId: 'host-a', taskId: TASK, peerId: 'peer-a' });
      assert.equal(peer.state, 'Succeeded');
      assert.equal(peer.host?.name, '');
    }));

  test('a second peer gets the first as parent, never itself or its own host', () =>
    withScheduler(async (client) => {
      await announceHost(client, {
        id: 'host-a',
        ip: '127.0.0.1',
        port: 4001,
        network: { idc: 'x' } as never,
      });
      await announceHost(client, { id: 'host-b', ip: '127.0.0.2', port: 4002 });
      await backToSource(client, 'host-a', TASK, 'peer-a1');

      const b = new PeerStream(client, 'host-b', TASK, 'peer-b1');
      b.register(download());
      const r = await b.next();
      const parents = r?.normalTaskResponse?.candidateParents ?? [];
      assert.deepEqual(
        parents.map((p) => p.id),
        ['peer-a1'],
      );
      const p = parents[0]!;
      assert.equal(p.state, 'Succeeded');
      assert.equal(p.host?.ip, '127.0.0.1');
      assert.equal(p.host?.port, 4001);
      assert.equal(p.task?.id, TASK);
      assert.equal(p.task?.contentLength, 3 * 4 * 1024 * 1024);
      assert.equal(p.task?.pieceCount, 3);
      // The second peer's registration moved the task from Succeeded back to Running (Go's Download event).
      assert.equal(p.task?.state, 'Running');
      b.send({ downloadPeerStartedRequest: {} });

      // A second peer on host-a: peer-a1 shares its host, so only peer-b1 (running, with a parent) qualifies.
      const a2 = new PeerStream(client, 'host-a', TASK, 'peer-a2');
      a2.register(download());
      const r2 = await a2.next();
      assert.deepEqual(
        r2?.normalTaskResponse?.candidateParents.map((x) => x.id),
        ['peer-b1'],
      );
      a2.send({ downloadPeerFinishedRequest: {} });
      b.send({ downloadPeerFinishedRequest: {} });
      assert.equal((await a2.finalStatus()).code, GrpcStatus.OK);
      assert.equal((await b.finalStatus()).code, GrpcStatus.OK);
    }));

  test('rescheduled parents are blocked: NeedBackToSource after the retries', () =>
    withScheduler(async (client) => {
      await announceHost(client, { id: 'host-a' });
      await announceHost(client, { id: 'host-b' });
      await backToSource(client, 'host-a', TASK, 'peer-a1');
      const b = new PeerStream(client, 'host-b', TASK, 'peer-b1');
      b.register(download());
      const r = await b.next();
      const parents = r!.normalTaskResponse!.candidateParents;
      b.send({ downloadPeerStartedRequest: {} });
      const started = Date.now();
      b.send({ reschedulePeerRequest: { candidateParents: parents, description: 'pieces missing' } });
      const r2 = await b.next();
      assert.equal(r2?.needBackToSourceResponse?.description, 'scheduling exceeded RetryBackToSourceLimit');
      // Four jittered rounds of 10ms happened in between.
      assert.ok(Date.now() - started >= 4 * 7, 'retries waited');
      b.send({ downloadPeerBackToSourceStartedRequest: {} });
      b.send({ downloadPeerBackToSourceFinishedRequest: {} });
      assert.equal((await b.finalStatus()).code, GrpcStatus.OK);
    }));

  test('DownloadPieceFailed{temporary} blocks that parent', () =>
    withScheduler(async (client) => {
      await announceHost(client, { id: 'host-a' });
      await announceHost(client, { id: 'host-b' });
      await backToSource(client, 'host-a', TASK, 'peer-a1');
      const b = new PeerStream(client, 'host-b', TASK, 'peer-b1');
      b.register(download());
      assert.ok((await b.next())?.normalTaskResponse);
      b.send({ downloadPeerStartedRequest: {} });
      b.send({ downloadPieceFailedRequest: { pieceNumber: 0, parentId: 'peer-a1', temporary: true } });
      b.send({ reschedulePeerRequest: { candidateParents: [], description: 'retry' } });
      assert.ok((await b.next())?.needBackToSourceResponse);
      b.send({ downloadPeerFailedRequest: { description: 'give up' } });
      assert.equal((await b.finalStatus()).code, GrpcStatus.OK);
      const peer = await rpc(client).statPeer({ hostId: 'host-b', taskId: TASK, peerId: 'peer-b1' });
      assert.equal(peer.state, 'Failed');
    }));

  test('a peer whose stream dropped without a terminal request is never offered', () =>
    withScheduler(async (client) => {
      await announceHost(client, { id: 'host-a' });
      await announceHost(client, { id: 'host-b' });
      const a = new PeerStream(client, 'host-a', TASK, 'peer-a1');
      a.register(download());
      assert.ok((await a.next())?.needBackToSourceResponse);
      a.send({ downloadPeerBackToSourceStartedRequest: {} });
      a.send({ downloadPieceBackToSourceFinishedRequest: { piece: piece(0) } });
      // Make sure the requests were handled before the stream goes away.
      await waitFor(async () => {
        const p = await rpc(client).statPeer({ hostId: 'host-a', taskId: TASK, peerId: 'peer-a1' });
        return p.state === 'BackToSource';
      });
      a.cancel();
      await waitFor(async () => {
        const p = await rpc(client).statPeer({ hostId: 'host-a', taskId: TASK, peerId: 'peer-a1' });
        return p.state === 'Leave';
      });
      const b = new PeerStream(client, 'host-b', TASK, 'peer-b1');
      b.register(download());
      const r = await b.next();
      assert.ok(r?.needBackToSourceResponse, `expected NeedBackToSource, got ${JSON.stringify(r)}`);
      b.cancel();
    }));

  test('a failed peer is never offered', () =>
    withScheduler(async (client) => {
      await announceHost(client, { id: 'host-a' });
      await announceHost(client, { id: 'host-b' });
      const a = new PeerStream(client, 'host-a', TASK, 'peer-a1');
      a.register(download());
      assert.ok((await a.next())?.needBackToSourceResponse);
      a.send({ downloadPeerBackToSourceStartedRequest: {} });
      a.send({ downloadPeerFailedRequest: { description: 'origin down' } });
      assert.equal((await a.finalStatus()).code, GrpcStatus.OK);
      const b = new PeerStream(client, 'host-b', TASK, 'peer-b1');
      b.register(download());
      assert.ok((await b.next())?.needBackToSourceResponse);
      b.cancel();
    }));

  test('metadata_only → MetadataOnlyResponse, then Started/Finished', () =>
    withScheduler(async (client) => {
      await announceHost(client, { id: 'host-a' });
      const s = new PeerStream(client, 'host-a', TASK, 'peer-a1');
      s.register(download({ metadataOnly: true }));
      const r = await s.next();
      assert.ok(r?.metadataOnlyResponse, JSON.stringify(r));
      s.send({ downloadPeerStartedRequest: {} });
      s.send({ downloadPeerFinishedRequest: {} });
      assert.equal((await s.finalStatus()).code, GrpcStatus.OK);
      const task = await rpc(client).statTask({ hostId: 'host-a', taskId: TASK });
      assert.equal(task.state, 'Running');
    }));

  test('an empty task → EmptyTaskResponse', () =>
    withScheduler(async (client) => {
      await announceHost(client, { id: 'host-a' });
      const s = new PeerStream(client, 'host-a', TASK, 'peer-a1');
      s.register(download({ actualContentLength: 0, actualPieceCount: 0 }));
      assert.ok((await s.next())?.emptyTaskResponse);
      s.send({ downloadPeerStartedRequest: {} });
      s.send({ downloadPeerFinishedRequest: {} });
      assert.equal((await s.finalStatus()).code, GrpcStatus.OK);
      const task = await rpc(client).statTask({ hostId: 'host-a', taskId: TASK });
      assert.equal(task.sizeScope, 3);
    }));

  test('back-to-source failure fails the task and sends 2^64-1 as its length', () =>
    withScheduler(async (client) => {
      await announceHost(client, { id: 'host-a' });
      const s = new PeerStream(client, 'host-a', TASK, 'peer-a1');
      s.register(download());
      assert.ok((await s.next())?.needBackToSourceResponse);
      s.send({ downloadPeerBackToSourceStartedRequest: {} });
      s.send({ downloadPeerBackToSourceFailedRequest: { description: '404' } });
      assert.equal((await s.finalStatus()).code, GrpcStatus.OK);
      const task = await rpc(client).statTask({ hostId: 'host-a', taskId: TASK });
      assert.equal(task.state, 'Failed');
      // 2^64-1 on the wire; decoded rounded toward zero (the nearest double, 2^64, is out of uint64's range).
      assert.equal(task.contentLength, 2 ** 64 - 2048);
      assert.equal(task.sizeScope, 4);
    }));
});

describe('embedded scheduler: stream lifecycle', () => {
  // A Rust client never half-closes: after its terminal request it waits until its request stream is dropped.
  // grpc-js alone sent the trailers but left the HTTP/2 stream half-open, so such a client hung at the end.
  for (const [name, hostId, code] of [
    ['after a terminal request', 'host-a', '0'],
    ['after an error', 'unknown-host', '5'],
  ] as const) {
    test(`the server sends trailers, then RST_STREAM(NO_ERROR), ${name}`, () =>
      withScheduler(async (_client, scheduler) => {
        await announceHost(_client, { id: 'host-a' });
        const frame = (m: Partial<AnnouncePeerRequest>) => {
          const body = AnnouncePeerRequest.encode(
            AnnouncePeerRequest.fromPartial({ hostId, taskId: TASK, peerId: 'peer-raw', ...m }),
          ).finish();
          const head = Buffer.alloc(5);
          head.writeUInt32BE(body.length, 1);
          return Buffer.concat([head, body]);
        };
        const session = http2.connect(`http://127.0.0.1:${scheduler.listenPort}`);
        try {
          const stream = session.request({
            ':method': 'POST',
            ':path': '/scheduler.v2.Scheduler/AnnouncePeer',
            'content-type': 'application/grpc',
            te: 'trailers',
          });
          const events: string[] = [];
          stream.on('response', () => events.push('headers'));
          stream.on('data', () => undefined);
          stream.on('trailers', (t) => events.push(`trailers ${String(t['grpc-status'])}`));
          const closed = new Promise<number>((resolve) => stream.on('close', () => resolve(stream.rstCode)));
          stream.write(
            frame({
              registerPeerRequest: {
                download: Download.fromPartial({ url: 'http://x/y', metadataOnly: true }),
              },
            }),
          );
          stream.write(frame({ downloadPeerStartedRequest: {} }));
          stream.write(frame({ downloadPeerFinishedRequest: {} }));
          // The request side is never ended here.
          const rst = await Promise.race([
            closed,
            new Promise<never>((_, reject) => setTimeout(() => reject(new Error('stream left open')), 3000)),
          ]);
          assert.equal(rst, http2.constants.NGHTTP2_NO_ERROR);
          assert.deepEqual(events, ['headers', `trailers ${code}`]);
        } finally {
          session.destroy();
        }
      }));
  }
});

describe('embedded scheduler: seed peers', () => {
  test('a normal peer of a new task triggers DownloadTask on the type-1 host', async () => {
    const calls: DownloadTaskRequest[] = [];
    const seedServer = new Server();
    seedServer.addService(DfdaemonUploadService, {
      downloadTask: (c: ServerWritableStream<DownloadTaskRequest, DownloadTaskResponse>) => {
        calls.push(c.request);
        c.end();
      },
    } as never);
    const seedPort = await new Promise<number>((resolve, reject) =>
      seedServer.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (e, p) =>
        e ? reject(e) : resolve(p),
      ),
    );
    try {
      await withScheduler(async (client) => {
        await announceHost(client, { id: 'seed-1', type: 1, ip: '127.0.0.1', port: seedPort });
        await announceHost(client, { id: 'host-a' });
        const s = new PeerStream(client, 'host-a', TASK, 'peer-a1');
        s.register(
          download({
            outputPath: '/tmp/out.bin',
            priority: Priority.LEVEL0,
            tag: 't',
            needPieceContent: true,
          }),
        );
        // Nobody registers for the seed here, so the peer is sent to the source after its retries.
        const r = await s.next();
        assert.ok(r?.needBackToSourceResponse, JSON.stringify(r));
        await waitFor(async () => calls.length === 1);
        const d = calls[0]!.download!;
        assert.equal(d.needBackToSource, true);
        assert.equal(d.outputPath, undefined);
        assert.equal(d.needPieceContent, false);
        assert.equal(d.url, 'http://origin.test/file.bin');
        assert.equal(d.tag, 't');
        assert.equal(d.actualContentLength, 3 * 4 * 1024 * 1024);
        s.cancel();
      });
    } finally {
      seedServer.forceShutdown();
    }
  });

  test('the seed, once back-to-source, is offered to the waiting peer', () =>
    withScheduler(
      async (client) => {
        // The seed's DownloadTask endpoint is unreachable: the trigger fails, which is only logged.
        await announceHost(client, { id: 'seed-1', type: 1, ip: '127.0.0.1', port: 1 });
        await announceHost(client, { id: 'host-a' });
        const a = new PeerStream(client, 'host-a', TASK, 'peer-a1');
        a.register(download());
        // The seed registers as the trigger would make it, and starts from the source.
        const seed = new PeerStream(client, 'seed-1', TASK, 'peer-seed');
        seed.register(download({ needBackToSource: true }));
        assert.ok((await seed.next())?.needBackToSourceResponse);
        seed.send({ downloadPeerBackToSourceStartedRequest: {} });
        const r = await a.next();
        assert.deepEqual(
          r?.normalTaskResponse?.candidateParents.map((p) => p.id),
          ['peer-seed'],
        );
        a.cancel();
        seed.cancel();
      },
      { retryIntervalMs: 50, registerBackoffBaseMs: 0 },
    ));
});

describe('embedded scheduler: unary RPCs', () => {
  test('ListHosts filters by type', () =>
    withScheduler(async (client) => {
      await announceHost(client, { id: 'n1', type: 0 });
      await announceHost(client, { id: 'n2', type: 0 });
      await announceHost(client, { id: 's1', type: 1 });
      await announceHost(client, { id: 'w1', type: 3 });
      const ids = async (type?: number) =>
        (await rpc(client).listHosts({ type })).hosts.map((h) => h.id).sort();
      assert.deepEqual(await ids(), ['n1', 'n2', 's1', 'w1']);
      assert.deepEqual(await ids(0), ['n1', 'n2']);
      assert.deepEqual(await ids(1), ['s1']);
      assert.deepEqual(await ids(2), []);
    }));

  test('DeleteHost drops its peers; unknown hosts are NOT_FOUND', () =>
    withScheduler(async (client) => {
      // A second host keeps this address a member of the cluster (Stat* answer members only).
      await announceHost(client, { id: 'host-keep' });
      await announceHost(client, { id: 'host-a' });
      await backToSource(client, 'host-a', TASK, 'peer-a1');
      await rpc(client).deleteHost({ hostId: 'host-a' });
      await assert.rejects(rpc(client).statPeer({ hostId: 'host-a', taskId: TASK, peerId: 'peer-a1' }), {
        code: GrpcStatus.NOT_FOUND,
      });
      await assert.rejects(rpc(client).deleteHost({ hostId: 'host-a' }), { code: GrpcStatus.NOT_FOUND });
      const task = await rpc(client).statTask({ hostId: '', taskId: TASK });
      assert.equal(task.peerCount, 0);
    }));

  test('DeleteTask deletes only that host’s peers; DeletePeer always answers', () =>
    withScheduler(async (client) => {
      await announceHost(client, { id: 'host-a' });
      await announceHost(client, { id: 'host-b' });
      await backToSource(client, 'host-a', TASK, 'peer-a1');
      const b = new PeerStream(client, 'host-b', TASK, 'peer-b1');
      b.register(download());
      assert.ok((await b.next())?.normalTaskResponse);
      b.send({ downloadPeerFinishedRequest: {} });
      await b.finalStatus();
      await assert.rejects(rpc(client).deleteTask({ hostId: 'nope', taskId: TASK }), {
        code: GrpcStatus.NOT_FOUND,
      });
      await rpc(client).deleteTask({ hostId: 'host-b', taskId: TASK });
      await assert.rejects(rpc(client).statPeer({ hostId: 'host-b', taskId: TASK, peerId: 'peer-b1' }), {
        code: GrpcStatus.NOT_FOUND,
      });
      await rpc(client).statPeer({ hostId: 'host-a', taskId: TASK, peerId: 'peer-a1' });
      await rpc(client).deletePeer({ hostId: 'host-a', taskId: TASK, peerId: 'peer-a1' });
      await rpc(client).deletePeer({ hostId: 'host-a', taskId: TASK, peerId: 'peer-a1' });
      await assert.rejects(rpc(client).statTask({ hostId: '', taskId: 'f'.repeat(64) }), {
        code: GrpcStatus.NOT_FOUND,
      });
    }));

  test('other RPCs answer UNIMPLEMENTED', () =>
    withScheduler(async (client) => {
      await assert.rejects(rpc(client).statCacheTask({ hostId: 'h', taskId: TASK }), (e: ServiceError) => {
        assert.equal(e.code, GrpcStatus.UNIMPLEMENTED);
        assert.match(e.details, /not implemented by the embedded scheduler/);
        return true;
      });
    }));

  test('hosts not announced for 2×interval are collected with their peers', () =>
    withScheduler(
      async (client, scheduler) => {
        await announceHost(client, { id: 'short' }, 100);
        await announceHost(client, { id: 'forever' });
        await backToSource(client, 'short', TASK, 'peer-s');
        await waitFor(async () => !scheduler.resources.hosts.has('short'), 3000);
        assert.ok(scheduler.resources.hosts.has('forever'));
        await assert.rejects(rpc(client).statPeer({ hostId: 'short', taskId: TASK, peerId: 'peer-s' }), {
          code: GrpcStatus.NOT_FOUND,
        });
      },
      { ...FAST, gc: { hostGCIntervalMs: 50 } },
    ));

  test('the task type and digest are kept', () =>
    withScheduler(async (client) => {
      await announceHost(client, { id: 'host-a' });
      const s = new PeerStream(client, 'host-a', TASK, 'peer-a1');
      s.register(
        download({ type: TaskType.STANDARD, digest: 'sha256:' + 'ab'.repeat(32), application: 'app' }),
      );
      assert.ok((await s.next())?.needBackToSourceResponse);
      const task = await rpc(client).statTask({ hostId: '', taskId: TASK });
      assert.equal(task.digest, 'sha256:' + 'ab'.repeat(32));
      assert.equal(task.application, 'app');
      s.cancel();
    }));
});

// --- the dfscheduler binary ---------------------------------------------------------------------------------

const DFSCHEDULER = fileURLToPath(new URL('../../src/cli/dfscheduler.js', import.meta.url));

interface RunResult {
  code: number | null;
  stderr: string;
}

/** Starts dfscheduler; resolves with the port from "scheduler started", or with the exit when it fails. */
function startBinary(
  config: string,
): Promise<{ port?: number; stderr: () => string; stop: () => Promise<RunResult> }> {
  const dir = mkdtempSync(join(tmpdir(), 'dfscheduler-'));
  const path = join(dir, 'scheduler.yaml');
  // Its state goes to its own dir (the default, /var/lib/dragonfly, is shared), unless the test sets server.dataDir.
  const dataDir = `  dataDir: ${dir}\n`;
  writeFileSync(
    path,
    /dataDir:/.test(config)
      ? config
      : config.includes('server:\n')
        ? config.replace('server:\n', `server:\n${dataDir}`)
        : `server:\n${dataDir}${config}`,
  );
  const proc = spawn(process.execPath, [DFSCHEDULER, '-c', path, '--console', '-l', 'info'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  const exited = new Promise<RunResult>((resolve) =>
    proc.on('exit', (code) => {
      rmSync(dir, { recursive: true, force: true });
      resolve({ code, stderr });
    }),
  );
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) process.kill(proc.pid!, 'SIGTERM');
    return exited;
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void stop();
      reject(new Error(`dfscheduler did not start: ${stderr}`));
    }, 10_000);
    proc.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      for (const line of stderr.split('\n')) {
        if (!line.startsWith('{')) continue;
        try {
          const j = JSON.parse(line) as { msg?: string; port?: number };
          if (j.msg === 'scheduler started' && typeof j.port === 'number') {
            clearTimeout(timer);
            resolve({ port: j.port, stderr: () => stderr, stop });
            return;
          }
        } catch {
          // A partial line.
        }
      }
    });
    void exited.then(() => {
      clearTimeout(timer);
      resolve({ stderr: () => stderr, stop });
    });
  });
}

describe('embedded scheduler: one host id, one daemon', () => {
  /** A client on a connection of its own, as another daemon process has (grpc-js shares connections otherwise). */
  const otherDaemon = (scheduler: EmbeddedScheduler) =>
    new SchedulerClient(`127.0.0.1:${scheduler.listenPort}`, credentials.createInsecure(), {
      'grpc.use_local_subchannel_pool': 1,
    });
  /** A listening port standing in for the first daemon's upload server. */
  async function livePort(): Promise<{ port: number; server: NetServer }> {
    const server = createServer((c) => c.destroy());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return { port: (server.address() as { port: number }).port, server };
  }
  const closed = (server: NetServer) => new Promise((r) => server.close(r));
  const hostPorts = async (client: SchedulerClient) =>
    (await rpc(client).listHosts({})).hosts.map((h) => `${h.id} ${h.port}`);
  const ID = '127.0.0.1-box';

  test('a second daemon announcing the same host id with other ports is refused (ALREADY_EXISTS naming host.hostname); the first keeps its place', () =>
    withScheduler(async (client, scheduler) => {
      const first = await livePort();
      const second = otherDaemon(scheduler);
      try {
        await announceHost(
          client,
          { id: ID, hostname: 'box', port: first.port, downloadPort: first.port },
          30_000,
        );
        await assert.rejects(
          announceHost(second, { id: ID, hostname: 'box', port: 14100, downloadPort: 14100 }, 30_000),
          (e: ServiceError) => {
            assert.equal(e.code, GrpcStatus.ALREADY_EXISTS);
            assert.match(e.details, /host id 127\.0\.0\.1-box is already announced by another daemon/);
            assert.match(e.details, /set host\.hostname in dfdaemon\.yaml to a name unique to each daemon/);
            return true;
          },
        );
        assert.deepEqual(await hostPorts(client), [`${ID} ${first.port}`]);
        // the first daemon's periodic re-announce is still accepted
        await announceHost(
          client,
          { id: ID, hostname: 'box', port: first.port, downloadPort: first.port },
          30_000,
        );
      } finally {
        second.close();
        await closed(first.server);
      }
    }));

  test('the same host re-announcing from a new connection with the same ports (a restart) is accepted', () =>
    withScheduler(async (client, scheduler) => {
      const first = await livePort();
      const restarted = otherDaemon(scheduler);
      try {
        await announceHost(
          client,
          { id: ID, hostname: 'box', port: first.port, downloadPort: first.port },
          30_000,
        );
        await announceHost(
          restarted,
          { id: ID, hostname: 'box', port: first.port, downloadPort: first.port },
          30_000,
        );
        assert.deepEqual(await hostPorts(client), [`${ID} ${first.port}`]);
      } finally {
        restarted.close();
        await closed(first.server);
      }
    }));

  test('other ports are accepted once nothing answers on the known ports (a crash, then a restart on new ports)', () =>
    withScheduler(async (client, scheduler) => {
      const first = await livePort();
      const restarted = otherDaemon(scheduler);
      try {
        await announceHost(
          client,
          { id: ID, hostname: 'box', port: first.port, downloadPort: first.port },
          30_000,
        );
        await closed(first.server);
        await announceHost(restarted, { id: ID, hostname: 'box', port: 14100, downloadPort: 14100 }, 30_000);
        assert.deepEqual(await hostPorts(client), [`${ID} 14100`]);
      } finally {
        restarted.close();
      }
    }));

  test('a deleted host (DeleteHost at a graceful stop) may come back on other ports at once', () =>
    withScheduler(async (client, scheduler) => {
      const first = await livePort();
      const next = otherDaemon(scheduler);
      try {
        await announceHost(
          client,
          { id: ID, hostname: 'box', port: first.port, downloadPort: first.port },
          30_000,
        );
        await rpc(client).deleteHost({ hostId: ID });
        await announceHost(next, { id: ID, hostname: 'box', port: 14100, downloadPort: 14100 }, 30_000);
        assert.deepEqual(await hostPorts(client), [`${ID} 14100`]);
      } finally {
        next.close();
        await closed(first.server);
      }
    }));
});

describe('dfscheduler binary', () => {
  test('starts from yaml with port 0, answers health SERVING, warns about unknown keys, stops on SIGTERM', async () => {
    const run = await startBinary(
      'server:\n  listenIP: 127.0.0.1\n  port: 0\nscheduler:\n  retryInterval: 100ms\n  gc:\n    hostGCInterval: 1m\nmanager:\n  addr: x\n',
    );
    try {
      assert.ok(run.port && run.port > 0, run.stderr());
      assert.match(run.stderr(), /unknown key manager/);
      const Health = makeGenericClientConstructor(healthService, 'grpc.health.v1.Health');
      const health = new Health(`127.0.0.1:${run.port}`, credentials.createInsecure()) as unknown as {
        check: (
          req: { service: string },
          cb: (e: Error | null, r: { status: string | number }) => void,
        ) => void;
        close: () => void;
      };
      try {
        const res = await new Promise<{ status: string | number }>((resolve, reject) =>
          health.check({ service: '' }, (e, r) => (e ? reject(e) : resolve(r))),
        );
        assert.ok(res.status === 'SERVING' || res.status === 1, JSON.stringify(res));
      } finally {
        health.close();
      }
    } finally {
      const r = await run.stop();
      assert.equal(r.code, 0, r.stderr);
    }
  });

  test('a server.dataDir that cannot be made is an error naming it', async () => {
    const run = await startBinary('server:\n  listenIP: 127.0.0.1\n  port: 0\n  dataDir: /dev/null/state\n');
    const r = await run.stop();
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /^dfscheduler: server\.dataDir: cannot create \/dev\/null\/state\/scheduler: ENOTDIR/m,
    );
  });

  test('an invalid port is an error naming server.port', async () => {
    const run = await startBinary('server:\n  port: 70000\n');
    const r = await run.stop();
    assert.equal(r.code, 1);
    assert.match(r.stderr, /server\.port/);
  });

  test('the swarm keys are read; an out-of-range candidateParentLimit is an error naming it', async () => {
    const ok = await startBinary(
      'server:\n  listenIP: 127.0.0.1\n  port: 0\nscheduler:\n  swarm: false\n  seedPeerChildLimit: 2\n  filterParentLimit: 40\n',
    );
    const r1 = await ok.stop();
    assert.ok(ok.port && ok.port > 0, r1.stderr);
    assert.doesNotMatch(r1.stderr, /unknown key/);
    const bad = await startBinary('scheduler:\n  candidateParentLimit: 50\n');
    const r2 = await bad.stop();
    assert.equal(r2.code, 1);
    assert.match(r2.stderr, /scheduler\.candidateParentLimit/);
  });

  test('TLS keys that cannot work are errors naming the key: server.tls, seedPeer.tls', async () => {
    const server = await startBinary('server:\n  tls:\n    caCert: /nope/ca.crt\n');
    const r1 = await server.stop();
    assert.equal(r1.code, 1);
    assert.match(r1.stderr, /server\.tls\.caCert: needs server\.tls\.cert and server\.tls\.key/);
    const seed = await startBinary('seedPeer:\n  tls:\n    cert: /c.crt\n    key: /c.key\n');
    const r2 = await seed.stop();
    assert.equal(r2.code, 1);
    assert.match(
      r2.stderr,
      /seedPeer\.tls\.caCert: expected the CA certificate that signed the servers' certificates/,
    );
    const missing = await startBinary('server:\n  tls:\n    cert: /nope/s.crt\n    key: /nope/s.key\n');
    const r3 = await missing.stop();
    assert.equal(r3.code, 1);
    assert.match(r3.stderr, /server\.tls\.cert: cannot read \/nope\/s\.crt/);
  });
});

async function waitFor(cond: () => Promise<boolean>, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
