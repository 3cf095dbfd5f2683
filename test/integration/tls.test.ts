// TLS and mTLS across a cluster of real processes (issue 16, "hostile network"): dfscheduler serving mTLS, peers
// whose upload ports and Vortex servers require client certificates, and every client of a peer — scheduler,
// parents' upload ports, Vortex — presenting one. Certificates come from a test CA made at test time
// (helpers/pki.ts). What must work: P2P transfer with everything on TLS. What must fail, with one clear line:
// a plaintext Vortex child of a TLS parent, a peer that trusts another CA, a daemon whose scheduler client lacks TLS.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Server, ServerCredentials, type sendUnaryData, type ServerUnaryCall } from '@grpc/grpc-js';
import { ManagerService, Scheduler, type ListSchedulersRequest } from '../../src/gen/manager.js';
import { Origin, contentSha256 } from '../helpers/origin.js';
import {
  dfget,
  metricsText,
  metricValue,
  startDaemon,
  stopDaemon,
  tempDir,
  type DaemonHandle,
  type SectionOptions,
} from '../helpers/daemon.js';
import { sha256File } from '../helpers/files.js';
import { TestCa, tlsYaml, type Pem } from '../helpers/pki.js';
import { startScheduler, stopScheduler, type SchedulerHandle } from '../helpers/scheduler-process.js';

const MiB = 1024 * 1024;

/** Starts a dfdaemon that must not start; resolves with why (its log), its directory removed. */
async function startFails(o: Parameters<typeof startDaemon>[0]): Promise<string> {
  const dir = tempDir('dft-tls-fails-');
  try {
    await startDaemon({ ...o, dir });
  } catch (e) {
    return (e as Error).message;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  throw new Error('dfdaemon started');
}

describe('TLS: a cluster on mTLS everywhere', () => {
  const origin = new Origin();
  const certs = tempDir('dft-tls-certs-');
  const out = tempDir('dft-tls-out-');
  let ca: TestCa;
  let otherCa: TestCa;
  let peerPem: Pem;
  let scheduler: SchedulerHandle;
  const daemons: DaemonHandle[] = [];

  /** Every TLS section of a peer, all with the cluster CA and one peer certificate (server and client use). */
  function allTls(): SectionOptions {
    const mtls = tlsYaml(ca, peerPem);
    return {
      uploadServer: mtls,
      uploadClient: mtls,
      storageServer: mtls,
      storageClient: mtls,
      scheduler: mtls,
    };
  }

  /**
   * A daemon using the test's dfscheduler (or `schedulerAddrOverride`) through its dynconfig file; with
   * `schedulerAddrless`, neither (its config names the manager).
   */
  async function daemon(
    o: SectionOptions & {
      extraConfig?: string;
      schedulerAddrless?: boolean;
      schedulerAddrOverride?: string;
    } = {},
  ): Promise<DaemonHandle> {
    const { schedulerAddrless, schedulerAddrOverride, ...rest } = o;
    const d = await startDaemon({
      schedulerAddr: schedulerAddrless ? undefined : (schedulerAddrOverride ?? scheduler.addr),
      ...rest,
    });
    daemons.push(d);
    return d;
  }

  before(async () => {
    await origin.start();
    ca = await TestCa.create(certs, 'cluster');
    otherCa = await TestCa.create(certs, 'other');
    // Peers and the scheduler are dialled at 127.0.0.1: their certificates name it.
    peerPem = await ca.issue('peer', { ips: ['127.0.0.1'] });
    const schedulerPem = await ca.issue('scheduler', { ips: ['127.0.0.1'], usage: 'server' });
    scheduler = await startScheduler({ server: `tls:\n${tlsYaml(ca, schedulerPem).replace(/^/gm, '  ')}` });
  });

  after(async () => {
    for (const d of daemons) await stopDaemon(d);
    if (scheduler) await stopScheduler(scheduler);
    await origin.stop();
    rmSync(certs, { recursive: true, force: true });
    rmSync(out, { recursive: true, force: true });
  });

  test('a TLS parent and a TLS child transfer a file byte-exact, the pieces over TLS Vortex', async () => {
    const parent = await daemon(allTls());
    const child = await daemon(allTls());
    assert.match(
      parent.logs.find((l) => l.includes('dfdaemon started')) ?? '',
      /"tls":\{"uploadServer":"mTLS","uploadClient":"mTLS","storageServer":"mTLS","storageClient":"mTLS","scheduler":"mTLS"\}/,
    );
    const size = 9 * MiB + 5;
    const url = origin.add('/tls/both.bin', { size, seed: 71 });
    const first = await dfget(parent, url, join(out, 'parent'));
    assert.equal(first.code, 0, first.stderr);
    const second = await dfget(child, url, join(out, 'child'));
    assert.equal(second.code, 0, second.stderr);
    assert.equal(await sha256File(join(out, 'child')), contentSha256(71, size));
    const text = await metricsText(child);
    assert.ok(
      metricValue(text, 'dragonfly_client_download_traffic', 'type="REMOTE_PEER"') > 0,
      'the child got pieces from its parent',
    );
    assert.equal(origin.pieceRequests('/tls/both.bin').length, 3, 'the origin served each piece once');
  });

  test('a plaintext Vortex child of a TLS parent is refused with the reason, and falls back to the origin', async () => {
    const parent = await daemon(allTls());
    const { storageClient: _, ...noVortexTls } = allTls();
    const child = await daemon(noVortexTls);
    const size = 9 * MiB;
    const url = origin.add('/tls/plain-child.bin', { size, seed: 72 });
    assert.equal((await dfget(parent, url, join(out, 'p2'))).code, 0);
    const r = await dfget(child, url, join(out, 'plain-child'));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await sha256File(join(out, 'plain-child')), contentSha256(72, size));
    assert.ok(
      child.logs.some((l) => /this Vortex server accepts TLS only .*setting storage\.client\.caCert/.test(l)),
      'the child logged why the parent refused it',
    );
  });

  test('a child that trusts another CA refuses the TLS parent, naming storage.client.caCert', async () => {
    const parent = await daemon(allTls());
    const tls = allTls();
    const child = await daemon({ ...tls, storageClient: tlsYaml(otherCa, peerPem) });
    const size = 9 * MiB;
    const url = origin.add('/tls/wrong-ca.bin', { size, seed: 73 });
    assert.equal((await dfget(parent, url, join(out, 'p3'))).code, 0);
    const r = await dfget(child, url, join(out, 'wrong-ca'));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await sha256File(join(out, 'wrong-ca')), contentSha256(73, size));
    assert.ok(
      child.logs.some((l) => /its TLS certificate is not trusted by storage\.client\.caCert/.test(l)),
      'the child logged that it does not trust the parent',
    );
  });

  test('a daemon without scheduler TLS, or trusting another CA, does not start, naming the scheduler', async () => {
    const { scheduler: _, ...noSchedulerTls } = allTls();
    assert.match(
      await startFails({ schedulerAddr: scheduler.addr, ...noSchedulerTls }),
      new RegExp(`no healthy scheduler among ${scheduler.addr} \\(unreachable`),
    );
    assert.match(
      await startFails({ schedulerAddr: scheduler.addr, ...allTls(), scheduler: tlsYaml(otherCa, peerPem) }),
      /no healthy scheduler among .*(certificate|self-signed|verify)/i,
    );
  });

  /** A manager.v2.Manager that lists the test's scheduler, on mTLS with `pem`; records who asked. */
  async function startManager(pem: Pem) {
    const server = new Server();
    const callers: string[] = [];
    server.addService(ManagerService, {
      listSchedulers(call: ServerUnaryCall<ListSchedulersRequest, unknown>, cb: sendUnaryData<object>) {
        callers.push(call.request.hostname);
        cb(null, {
          schedulers: [
            Scheduler.fromPartial({ ip: '127.0.0.1', port: scheduler.port, schedulerClusterId: 1 }),
          ],
        });
      },
    });
    const creds = ServerCredentials.createSsl(
      readFileSync(ca.certPath),
      [{ cert_chain: readFileSync(pem.cert), private_key: readFileSync(pem.key) }],
      true,
    );
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', creds, (err, p) => (err ? reject(err) : resolve(p))),
    );
    return { port, callers, close: () => new Promise<void>((r) => server.tryShutdown(() => r())) };
  }

  test('manager.caCert/cert/key: TLS to the manager, also for an upstream-style http:// address', async () => {
    const manager = await startManager(await ca.issue('manager', { ips: ['127.0.0.1'], usage: 'server' }));
    try {
      // An upstream-style address: upstream's client would ignore the keys for http://; ours uses them.
      const d = await daemon({
        ...allTls(),
        extraConfig: `manager:\n  addr: http://127.0.0.1:${manager.port}\n${tlsYaml(ca, peerPem).replace(/^/gm, '  ')}\n`,
        schedulerAddrless: true,
      });
      assert.ok(manager.callers.length > 0, 'the daemon listed schedulers over mTLS');
      const url = origin.add('/tls/manager.bin', { size: 5 * MiB, seed: 74 });
      const r = await dfget(d, url, join(out, 'manager'));
      assert.equal(r.code, 0, r.stderr);
      // Without the keys, the TLS manager cannot be reached: the start fails naming it.
      assert.match(
        await startFails({
          ...allTls(),
          extraConfig: `manager:\n  addr: http://127.0.0.1:${manager.port}\n`,
        }),
        new RegExp(`cannot list schedulers from manager http://127\\.0\\.0\\.1:${manager.port}`),
      );
    } finally {
      await manager.close();
    }
  });

  test('the embedded scheduler serves mTLS (embeddedScheduler.*); its own daemon and another reach it with scheduler.*', async () => {
    const embeddedPem = await ca.issue('embedded', { ips: ['127.0.0.1'], usage: 'server' });
    const host = await startDaemon({
      ...allTls(),
      embeddedScheduler: tlsYaml(ca, embeddedPem),
    });
    daemons.push(host);
    assert.match(host.logs.find((l) => l.includes('scheduler started')) ?? '', /"tls":"mTLS"/);
    const other = await daemon({ ...allTls(), schedulerAddrOverride: `127.0.0.1:${host.schedulerPort}` });
    const url = origin.add('/tls/embedded.bin', { size: 9 * MiB, seed: 75 });
    assert.equal((await dfget(host, url, join(out, 'e1'))).code, 0);
    const r = await dfget(other, url, join(out, 'e2'));
    assert.equal(r.code, 0, r.stderr);
    assert.ok(
      metricValue(await metricsText(other), 'dragonfly_client_download_traffic', 'type="REMOTE_PEER"') > 0,
      'P2P through the TLS embedded scheduler',
    );
    // Without scheduler.caCert the daemon cannot reach its own TLS scheduler: refused at start, saying so.
    const { scheduler: _, ...noClient } = allTls();
    assert.match(
      await startFails({ ...noClient, embeddedScheduler: tlsYaml(ca, embeddedPem) }),
      /embeddedScheduler\.cert\/key are set.*set scheduler\.caCert/,
    );
  });

  test('a TLS file that cannot be used stops dfdaemon at start, naming the key and the file', async () => {
    const wrongKey = await ca.issue('other-peer');
    assert.match(
      await startFails({
        schedulerAddr: scheduler.addr,
        uploadClient: tlsYaml(ca, { ...peerPem, key: wrongKey.key }),
      }),
      /upload\.client\.key: .*other-peer\.key is not the private key of upload\.client\.cert/,
    );
  });
});

/**
 * A seed fetches from the origin on the scheduler's behalf (a remote caller); the test origin is on loopback,
 * which a remote caller may reach only when security.allowedPrivateSources names it.
 */
const SEED = 'seedPeer:\n  enable: true\n  type: super\nsecurity:\n  allowedPrivateSources: [127.0.0.1]\n';

/** Whether a log line matching every pattern appears within `ms` (a trigger's end is logged when its stream ends). */
async function logged(logs: string[], patterns: string[], ms = 10_000): Promise<boolean> {
  const until = Date.now() + ms;
  for (;;) {
    if (logs.some((l) => patterns.every((p) => l.includes(p)))) return true;
    if (Date.now() > until) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
}

// Before the scheduler side could present a client certificate, an upload port with mTLS refused every seed
// trigger (DfdaemonUpload.DownloadTask): the embedded scheduler dialled it in plaintext, peers waited out their
// scheduling rounds and went to the origin themselves. The scheduler now presents one: dfdaemon's embedded
// scheduler upload.client's, dfscheduler seedPeer.tls's.
describe('TLS: seed triggering through upload ports that require client certificates', () => {
  const origin = new Origin();
  const certs = tempDir('dft-tls-seed-certs-');
  const out = tempDir('dft-tls-seed-out-');
  let ca: TestCa;
  let mtls: string;
  const daemons: DaemonHandle[] = [];
  const schedulers: SchedulerHandle[] = [];

  before(async () => {
    await origin.start();
    ca = await TestCa.create(certs, 'cluster');
    mtls = tlsYaml(ca, await ca.issue('peer', { ips: ['127.0.0.1'] }));
  });

  after(async () => {
    for (const d of daemons) await stopDaemon(d);
    for (const s of schedulers) await stopScheduler(s);
    await origin.stop();
    rmSync(certs, { recursive: true, force: true });
    rmSync(out, { recursive: true, force: true });
  });

  async function daemon(o: Parameters<typeof startDaemon>[0]): Promise<DaemonHandle> {
    const d = await startDaemon(o);
    daemons.push(d);
    return d;
  }

  /** A peer downloads a 9 MiB file (3 pieces): whether the seed served it, and how often the origin was asked. */
  async function peerDownload(peer: DaemonHandle, path: string, seed: number) {
    const size = 9 * MiB;
    const url = origin.add(path, { size, seed });
    const r = await dfget(peer, url, join(out, path.replaceAll('/', '_')));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await sha256File(join(out, path.replaceAll('/', '_'))), contentSha256(seed, size));
    const fromPeers = metricValue(
      await metricsText(peer),
      'dragonfly_client_download_traffic',
      'type="REMOTE_PEER"',
    );
    return { fromPeers, originRequests: origin.pieceRequests(path).length };
  }

  test('dfdaemon’s embedded scheduler triggers a seed whose upload port requires mTLS, with upload.client', async () => {
    // The seed runs the embedded scheduler; the peer uses it through its dynconfig file.
    const seed = await daemon({ uploadServer: mtls, uploadClient: mtls, extraConfig: SEED });
    const peer = await daemon({ schedulerAddr: `127.0.0.1:${seed.schedulerPort}`, uploadClient: mtls });
    const { fromPeers, originRequests } = await peerDownload(peer, '/seed/embedded.bin', 81);
    assert.ok(
      await logged(seed.logs, ['seed peer download task finished', '"tls":"upload.client"']),
      'the seed was triggered over mTLS',
    );
    assert.ok(!seed.logs.some((l) => l.includes('seed peer download task failed')));
    assert.ok(fromPeers > 0, 'the peer got pieces from the seed');
    assert.equal(originRequests, 3, 'only the seed went to the origin');
  });

  test('without a client certificate on the scheduler side the trigger is refused (the fix is what makes it work)', async () => {
    const seed = await daemon({ uploadServer: mtls, extraConfig: SEED });
    const peer = await daemon({ schedulerAddr: `127.0.0.1:${seed.schedulerPort}`, uploadClient: mtls });
    const { fromPeers } = await peerDownload(peer, '/seed/no-client-cert.bin', 82);
    assert.ok(
      await logged(seed.logs, ['seed peer download task failed', '"tls":"off"']),
      'the trigger failed, and the log says the scheduler side had no TLS',
    );
    assert.equal(fromPeers, 0, 'no seed served the peer: it went to the origin itself');
  });

  test('dfscheduler triggers a seed whose upload port requires mTLS, with seedPeer.tls', async () => {
    const scheduler = await startScheduler({ extra: `seedPeer:\n  tls:\n${mtls.replace(/^/gm, '    ')}\n` });
    schedulers.push(scheduler);
    await daemon({ schedulerAddr: scheduler.addr, uploadServer: mtls, extraConfig: SEED });
    const peer = await daemon({ schedulerAddr: scheduler.addr, uploadClient: mtls });
    const { fromPeers, originRequests } = await peerDownload(peer, '/seed/dfscheduler.bin', 83);
    assert.ok(
      await logged(scheduler.logs, ['seed peer download task finished', '"tls":"seedPeer.tls"']),
      'the seed was triggered over mTLS',
    );
    assert.ok(fromPeers > 0, 'the peer got pieces from the seed');
    assert.equal(originRequests, 3, 'only the seed went to the origin');
  });
});
