// What a remote caller can make a dfdaemon do (issue 16 items 1, 5, 6, 7), tried as an attacker would, with
// real clients: a gRPC client on the upload port (from the scheduler's own address, and through a relay from
// another address), dfget and a gRPC client on the socket, curl through the proxy (from loopback, and from this
// machine's network address as a client on another host would). Each attack below worked before the fix:
// - cache poisoning: a content label equal to a URL's id input stored other bytes under that URL's task id;
// - SSRF with read-back: a DownloadTask of a loopback-only URL, then the bytes read over Vortex;
// - DeleteTask and DownloadTask on the upload port from anyone;
// - the proxy forwarding anything to this machine's loopback services (CONNECT to port 22, DELETE /metrics).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { credentials, status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { downloadClient } from '../../src/cli/daemon-client.js';
import { detectHostIp } from '../../src/config/load.js';
import { DEFAULT_FILTERED_QUERY_PARAMS, normalizeUrl, taskIdFromUrl } from '../../src/core/task-id.js';
import type { Download } from '../../src/gen/common.js';
import {
  DfdaemonUploadClient,
  type StatLocalTaskResponse,
  type DfdaemonDownloadClient,
  type DownloadTaskResponse,
} from '../../src/gen/dfdaemon.js';
import { downloadPiece } from '../../src/vortex/piece-client.js';
import { curl } from '../helpers/curl.js';
import { dfget, startDaemon, stopDaemon, tempDir, type DaemonHandle } from '../helpers/daemon.js';
import { testDownload } from '../helpers/download.js';
import { contentSlice, Origin } from '../helpers/origin.js';
import { relayFrom, type Relay } from '../helpers/relay.js';
import { selfSignedLocalhost } from '../helpers/tls.js';
import { startScheduler, stopScheduler, type SchedulerHandle } from '../helpers/scheduler-process.js';

const MiB = 1024 * 1024;

interface Outcome {
  msgs: DownloadTaskResponse[];
  err?: ServiceError;
}

/** DownloadTask on either server (the upload and download services share the method). */
async function downloadTask(
  client: DfdaemonUploadClient | DfdaemonDownloadClient,
  d: Download,
): Promise<Outcome> {
  const msgs: DownloadTaskResponse[] = [];
  const stream = client.downloadTask({ download: d }, { deadline: Date.now() + 60_000 });
  try {
    for await (const m of stream as AsyncIterable<DownloadTaskResponse>) msgs.push(m);
    return { msgs };
  } catch (e) {
    return { msgs, err: e as ServiceError };
  }
}

function deleteTask(client: DfdaemonUploadClient, taskId: string): Promise<ServiceError | undefined> {
  return new Promise((resolve) => client.deleteTask({ taskId }, (err) => resolve(err ?? undefined)));
}

function statTask(client: DfdaemonUploadClient, taskId: string): Promise<ServiceError | undefined> {
  return new Promise((resolve) => client.statTask({ taskId }, (err) => resolve(err ?? undefined)));
}

function assertCode(err: ServiceError | undefined, code: number, what: string): asserts err {
  assert.ok(err, `${what}: expected ${GrpcStatus[code]}, got success`);
  assert.equal(err.code, code, `${what}: got ${GrpcStatus[err.code]} (${err.details})`);
}

const upload = (port: number) => new DfdaemonUploadClient(`127.0.0.1:${port}`, credentials.createInsecure());

/** What dfget computes for a URL (its default filtered query parameters). */
const dfgetTaskId = (url: string) =>
  taskIdFromUrl({ url, filteredQueryParams: DEFAULT_FILTERED_QUERY_PARAMS });

describe('remote callers: a peer of dfscheduler, attacked on its upload port, socket and proxy', () => {
  const origin = new Origin();
  const out = tempDir('dft-remote-out-');
  let scheduler: SchedulerHandle;
  /** Its origins count as reachable (allowedPrivateSources), so only the poisoning defences are tried. */
  let peer: DaemonHandle;
  /** The default config: a remote caller reaches no loopback or private address. */
  let strict: DaemonHandle;
  let relay: Relay;
  let strictRelay: Relay;
  const clients: DfdaemonUploadClient[] = [];

  before(async () => {
    await origin.start();
    scheduler = await startScheduler();
    peer = await startDaemon({
      schedulerAddr: scheduler.addr,
      extraConfig: 'security:\n  allowedPrivateSources: [127.0.0.1]\n',
    });
    strict = await startDaemon({ schedulerAddr: scheduler.addr });
    relay = await relayFrom('127.0.0.2', { port: peer.uploadPort });
    strictRelay = await relayFrom('127.0.0.2', { port: strict.uploadPort });
  });

  after(async () => {
    for (const c of clients) c.close();
    await relay?.close();
    await strictRelay?.close();
    for (const d of [peer, strict]) if (d) await stopDaemon(d);
    if (scheduler) await stopScheduler(scheduler);
    await origin.stop();
    rmSync(out, { recursive: true, force: true });
  });

  function client(port: number): DfdaemonUploadClient {
    const c = upload(port);
    clients.push(c);
    return c;
  }

  test('cache poisoning on the upload port (from the scheduler’s own address): refused; dfget gets the victim’s bytes', async () => {
    const victim = origin.add('/victim/app.bin', { size: 2 * MiB + 7, seed: 11 });
    const evil = origin.add('/evil/payload.bin', { size: 3 * MiB, seed: 66 });
    const victimId = dfgetTaskId(victim);
    // The attack: a content label equal to the victim URL's id input has the victim's task id.
    const label = normalizeUrl(victim) + 'STANDARD';
    const attack = testDownload(evil, { contentForCalculatingTaskId: label });
    const res = await downloadTask(client(peer.uploadPort), attack);
    assertCode(res.err, GrpcStatus.INVALID_ARGUMENT, 'poisoning DownloadTask');
    assert.match(res.err.details, /content_for_calculating_task_id must not end with "STANDARD"/);
    assert.equal(origin.requests.filter((r) => r.path === '/evil/payload.bin').length, 0, 'nothing fetched');
    assertCode(await statTask(client(peer.uploadPort), victimId), GrpcStatus.NOT_FOUND, 'nothing stored');

    const r = await dfget(peer, victim, join(out, 'victim'));
    assert.equal(r.code, 0, r.stderr);
    assert.ok(
      readFileSync(join(out, 'victim')).equals(contentSlice(11, 0, 2 * MiB + 7)),
      'the victim’s bytes',
    );
  });

  test('the same label on the socket (dfget, gRPC) and the proxy header is refused', async () => {
    const victim = origin.add('/victim/lib.so', { size: MiB, seed: 12 });
    const evil = origin.add('/evil/lib.so', { size: MiB, seed: 67 });
    const label = normalizeUrl(victim) + 'STANDARD';
    const viaDfget = await dfget(peer, evil, join(out, 'x'), ['--content-for-calculating-task-id', label]);
    assert.equal(viaDfget.code, 1);
    assert.match(viaDfget.stderr, /must not end with "STANDARD"/);
    const socket = downloadClient(peer.socket);
    try {
      const res = await downloadTask(socket, testDownload(evil, { contentForCalculatingTaskId: label }));
      assertCode(res.err, GrpcStatus.INVALID_ARGUMENT, 'socket DownloadTask');
    } finally {
      socket.close();
    }
    const proxy = `http://127.0.0.1:${peer.proxyPort}`;
    const viaProxy = await curl([
      '-x',
      proxy,
      '-H',
      'X-Dragonfly-Use-P2P: true',
      '-H',
      `X-Dragonfly-Content-For-Calculating-Task-ID: ${label}`,
      evil,
    ]);
    assert.equal(viaProxy.status, 400, viaProxy.body.toString());
    assert.match(viaProxy.body.toString(), /must not end with "STANDARD"/);
    assert.equal(origin.requests.filter((r) => r.path === '/evil/lib.so').length, 0, 'nothing fetched');
    const good = await curl(['-x', proxy, '-H', 'X-Dragonfly-Use-P2P: true', victim]);
    assert.equal(good.status, 200);
    assert.ok(good.body.equals(contentSlice(12, 0, MiB)), 'the proxy serves the victim’s bytes');
  });

  test('DownloadTask and DeleteTask from an address that is no scheduler of the peer: PERMISSION_DENIED', async () => {
    const url = origin.add('/kept.bin', { size: 5 * MiB, seed: 13 });
    const r = await dfget(peer, url, join(out, 'kept'));
    assert.equal(r.code, 0, r.stderr);
    const taskId = dfgetTaskId(url);
    const other = client(relay.port);
    const del = await deleteTask(other, taskId);
    assertCode(del, GrpcStatus.PERMISSION_DENIED, 'DeleteTask from 127.0.0.2');
    assert.match(
      del.details,
      /only from this dfdaemon's schedulers \(127\.0\.0\.1:\d+\).*127\.0\.0\.2 is none of them/,
    );
    assert.equal(await statTask(other, taskId), undefined, 'the task is still there (StatTask stays open)');
    const dl = await downloadTask(other, testDownload(url));
    assertCode(dl.err, GrpcStatus.PERMISSION_DENIED, 'DownloadTask from 127.0.0.2');
    // The scheduler's address may delete.
    assert.equal(await deleteTask(client(peer.uploadPort), taskId), undefined);
    assertCode(await statTask(other, taskId), GrpcStatus.NOT_FOUND, 'deleted by the scheduler’s address');
  });

  // Found against the upstream Go scheduler (test/interop/go): its get_task job (the manager's "which peers have
  // this task") calls StatLocalTask on each host's upload port, which answered UNIMPLEMENTED here, so the manager
  // listed none of our peers. It is answered now, to the peer's schedulers only, like DeleteTask.
  test('StatLocalTask on the upload port: answered to the scheduler’s address, PERMISSION_DENIED elsewhere', async () => {
    const url = origin.add('/stat-local.bin', { size: 5 * MiB + 3, seed: 15 });
    const r = await dfget(peer, url, join(out, 'stat-local'));
    assert.equal(r.code, 0, r.stderr);
    const taskId = dfgetTaskId(url);
    const stat = (c: DfdaemonUploadClient, id: string) =>
      new Promise<{ res?: StatLocalTaskResponse; err?: ServiceError }>((resolve) =>
        c.statLocalTask({ taskId: id, remoteIp: '127.0.0.1' }, (err, res) =>
          resolve(err ? { err } : { res }),
        ),
      );
    const got = await stat(client(peer.uploadPort), taskId);
    assert.equal(got.err, undefined, got.err?.details);
    assert.equal(got.res!.taskId, taskId);
    assert.equal(got.res!.contentLength, 5 * MiB + 3);
    assert.ok(got.res!.finishedAt, 'finished_at set (the Go scheduler reads it as "finished")');
    assertCode(
      (await stat(client(peer.uploadPort), 'f'.repeat(64))).err,
      GrpcStatus.NOT_FOUND,
      'unknown task',
    );
    const other = await stat(client(relay.port), taskId);
    assertCode(other.err, GrpcStatus.PERMISSION_DENIED, 'StatLocalTask from 127.0.0.2');
  });

  test('a DeleteTask from elsewhere does not abort a download in flight', async () => {
    const url = origin.add('/slow.bin', { size: 9 * MiB, seed: 14, delayMs: 300 });
    const running = dfget(peer, url, join(out, 'slow'));
    const taskId = dfgetTaskId(url);
    const trusted = client(peer.uploadPort);
    // Once the task exists (its stat answered), while its pieces are still coming.
    for (let i = 0; i < 200 && (await statTask(trusted, taskId)); i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    assertCode(await deleteTask(client(relay.port), taskId), GrpcStatus.PERMISSION_DENIED, 'delete');
    const r = await running;
    assert.equal(r.code, 0, r.stderr);
    assert.ok(readFileSync(join(out, 'slow')).equals(contentSlice(14, 0, 9 * MiB)));
  });

  test('SSRF with read-back: a loopback-only URL is neither fetched nor readable over Vortex', async () => {
    const secretUrl = origin.add('/internal/secret', { size: 4096, seed: 15 });
    const taskId = taskIdFromUrl({ url: secretUrl });
    // From another address: refused as a caller.
    const fromElsewhere = await downloadTask(client(strictRelay.port), testDownload(secretUrl));
    assertCode(fromElsewhere.err, GrpcStatus.PERMISSION_DENIED, 'DownloadTask from 127.0.0.2');
    // From the scheduler's address (the seed-trigger path): refused by where the source is.
    const fromScheduler = await downloadTask(client(strict.uploadPort), testDownload(secretUrl));
    assertCode(fromScheduler.err, GrpcStatus.PERMISSION_DENIED, 'DownloadTask of a loopback URL');
    assert.match(fromScheduler.err.details, /loopback address.*security\.allowedPrivateSources/);
    assert.equal(origin.requests.filter((r) => r.path === '/internal/secret').length, 0, 'never fetched');
    await assert.rejects(
      downloadPiece({ ip: '127.0.0.1', port: strict.vortexPort, taskId, number: 0, timeoutMs: 5000 }),
      /not found/i,
    );
    // A local user (dfget on the socket) is not a remote caller.
    const r = await dfget(strict, secretUrl, join(out, 'secret'));
    assert.equal(r.code, 0, r.stderr);
  });

  test('a seed the scheduler triggers for a loopback origin refuses; the peer goes back to source itself', async () => {
    const seed = await startDaemon({
      schedulerAddr: scheduler.addr,
      extraConfig: 'seedPeer:\n  enable: true\n  type: super\n',
    });
    try {
      const url = origin.add('/via-seed.bin', { size: 9 * MiB, seed: 16 });
      const r = await dfget(strict, url, join(out, 'via-seed'));
      assert.equal(r.code, 0, r.stderr);
      assert.ok(readFileSync(join(out, 'via-seed')).equals(contentSlice(16, 0, 9 * MiB)));
      assert.ok(
        seed.logs.some((l) => /download refused/.test(l) && /allowedPrivateSources/.test(l)),
        'the seed said why it refused',
      );
    } finally {
      await stopDaemon(seed);
    }
  });
});

describe('remote callers: mTLS on the upload port', () => {
  const origin = new Origin();
  const certs = tempDir('dft-mtls-');
  let d: DaemonHandle;
  let relay: Relay;

  before(async () => {
    await origin.start();
    const server = selfSignedLocalhost(certs, 'server');
    const client = selfSignedLocalhost(certs, 'client');
    d = await startDaemon({
      uploadServer: `caCert: ${client.certPath}\ncert: ${server.certPath}\nkey: ${server.keyPath}`,
      extraConfig: 'security:\n  allowedPrivateSources: [127.0.0.1]\n',
    });
    relay = await relayFrom('127.0.0.2', { port: d.uploadPort });
  });

  after(async () => {
    await relay?.close();
    if (d) await stopDaemon(d);
    await origin.stop();
    rmSync(certs, { recursive: true, force: true });
  });

  test('a caller with a client certificate the server verifies may trigger and delete, from any address', async () => {
    const server = readFileSync(join(certs, 'server.crt'));
    const c = new DfdaemonUploadClient(
      `127.0.0.1:${relay.port}`,
      credentials.createSsl(
        server,
        readFileSync(join(certs, 'client.key')),
        readFileSync(join(certs, 'client.crt')),
      ),
    );
    try {
      const url = origin.add('/mtls.bin', { size: MiB, seed: 31 });
      const res = await downloadTask(c, testDownload(url));
      assert.ifError(res.err);
      const taskId = res.msgs[0]!.taskId;
      assert.equal(await deleteTask(c, taskId), undefined);
      assertCode(await statTask(c, taskId), GrpcStatus.NOT_FOUND, 'deleted');
    } finally {
      c.close();
    }
  });
});

const hostIp = detectHostIp(false);

describe('remote callers: the proxy', { skip: hostIp ? false : 'no non-loopback IPv4 address' }, () => {
  const origin = new Origin();
  let open: DaemonHandle;
  let byDefault: DaemonHandle;

  before(async () => {
    await origin.start();
    // An upstream-style config that names 0.0.0.0: clients on other hosts may use the proxy, within the rules.
    open = await startDaemon({ extraConfig: 'proxy:\n  server:\n    ip: 0.0.0.0\n    port: 0\n' });
    byDefault = await startDaemon({ extraConfig: 'proxy:\n  server:\n    port: 0\n' });
  });

  after(async () => {
    for (const d of [open, byDefault]) if (d) await stopDaemon(d);
    await origin.stop();
  });

  test('by default the proxy listens on loopback only', async () => {
    const url = origin.add('/public.txt', { size: 100, seed: 21 });
    const remote = await curl(['--max-time', '5', '-x', `http://${hostIp}:${byDefault.proxyPort}`, url]);
    assert.notEqual(remote.code, 0, 'nothing listens on the network address');
    assert.match(remote.stderr, /connect|refused/i);
    const local = await curl(['-x', `http://127.0.0.1:${byDefault.proxyPort}`, url]);
    assert.equal(local.status, 200);
  });

  test('a client on another host cannot reach this machine’s loopback services through it', async () => {
    const secret = origin.add('/secret.txt', { size: 100, seed: 22 });
    const proxy = `http://${hostIp}:${open.proxyPort}`;
    const forwarded = await curl(['-x', proxy, secret]);
    assert.equal(forwarded.status, 403);
    assert.equal(forwarded.headers['x-dragonfly-error-type'], 'proxy');
    assert.match(
      forwarded.body.toString(),
      /loopback address: a remote caller may not .*allowedPrivateSources/,
    );
    const p2p = await curl(['-x', proxy, '-H', 'X-Dragonfly-Use-P2P: true', secret]);
    assert.equal(p2p.status, 403);
    const metrics = await curl(['-x', proxy, '-X', 'DELETE', `http://127.0.0.1:${open.metricsPort}/metrics`]);
    assert.equal(metrics.status, 403);
    const ssh = await curl(['-x', proxy, '--max-time', '10', 'https://127.0.0.1:22/']);
    assert.notEqual(ssh.code, 0);
    assert.match(ssh.stderr, /403/);
    assert.equal(
      origin.requests.filter((r) => r.path === '/secret.txt').length,
      0,
      'the origin was never asked',
    );
    // From this host it is the user's own reach, as before.
    const local = await curl(['-x', `http://127.0.0.1:${open.proxyPort}`, secret]);
    assert.equal(local.status, 200);
    assert.ok(local.body.equals(contentSlice(22, 0, 100)));
  });
});
