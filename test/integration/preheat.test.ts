// Preheat through the embedded scheduler: `dfctl task preheat` against a seed peer's dfdaemon (which runs the
// scheduler) and a normal peer that uses it. After a file preheat, a dfget on the normal peer takes every byte from
// the seed: the origin (a Node server counting every request) sees only the peer's 1-byte size probe, as upstream's
// client stats every new task. With scope all_peers the peer holds it itself: not even the probe. StatFile reports
// the seed holding it.
// Bad input: an unknown scope, an unreachable registry, a manifest 404, a URL the address policy refuses, a
// scope with no host — each one line from dfctl, and the scheduler's own status for a direct gRPC call.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { credentials, Metadata, status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { Origin, contentSha256 } from '../helpers/origin.js';
import {
  DIST,
  dfget,
  metricsText,
  metricValue,
  run,
  startDaemon,
  stopDaemon,
  tempDir,
  type DaemonHandle,
} from '../helpers/daemon.js';
import { sha256File } from '../helpers/files.js';
import { SchedulerClient, type PreheatFileRequest, type StatFileResponse } from '../../src/gen/scheduler.js';
import { DEFAULT_FILTERED_QUERY_PARAMS } from '../../src/core/task-id.js';

const DFCTL = join(DIST, 'src/cli/dfctl.js');
const MiB = 1024 * 1024;
/** Preheated peers fetch the test origin on loopback for the scheduler (a remote caller): allowed by name. */
const ALLOW_LOOPBACK = 'security:\n  allowedPrivateSources: [127.0.0.1]\n';
const SEED = `seedPeer:\n  enable: true\n  type: super\n${ALLOW_LOOPBACK}`;

function fileRequest(url: string, partial: Partial<PreheatFileRequest> = {}): PreheatFileRequest {
  return {
    url,
    tag: '',
    application: '',
    filteredQueryParams: [...DEFAULT_FILTERED_QUERY_PARAMS],
    header: {},
    scope: 'all_seed_peers',
    ips: [],
    priority: 6,
    certificateChain: [],
    insecureSkipVerify: false,
    ...partial,
  };
}

function unary<Res>(f: (cb: (err: ServiceError | null, res?: Res) => void) => unknown): Promise<Res> {
  return new Promise((resolve, reject) => f((err, res) => (err ? reject(err) : resolve(res as Res))));
}

describe('preheat through the embedded scheduler (dfctl task preheat)', () => {
  const origin = new Origin();
  const out = tempDir('dft-preheat-out-');
  let seed: DaemonHandle;
  let peer: DaemonHandle;
  let endpoint: string;
  let client: SchedulerClient;

  const preheat = (...args: string[]) =>
    run([DFCTL, 'task', 'preheat', ...args, '--scheduler-endpoint', endpoint], { timeoutMs: 60_000 });

  before(async () => {
    await origin.start();
    seed = await startDaemon({ extraConfig: SEED });
    endpoint = `http://127.0.0.1:${seed.schedulerPort}`;
    peer = await startDaemon({
      schedulerAddr: `127.0.0.1:${seed.schedulerPort}`,
      extraConfig: ALLOW_LOOPBACK,
    });
    client = new SchedulerClient(`127.0.0.1:${seed.schedulerPort}`, credentials.createInsecure());
    // Both hosts announced: the peer's announcement reaches the scheduler a moment after its start line.
    const deadline = Date.now() + 10_000;
    for (;;) {
      const { hosts } = await unary<{ hosts: unknown[] }>((cb) => client.listHosts({}, cb));
      if (hosts.length >= 2) break;
      if (Date.now() > deadline) assert.fail(`hosts announced: ${hosts.length}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  });

  after(async () => {
    client?.close();
    if (peer) await stopDaemon(peer);
    if (seed) await stopDaemon(seed);
    await origin.stop();
    rmSync(out, { recursive: true, force: true });
  });

  test('a preheated file is on the seed; a dfget on another peer then takes no content from the origin', async () => {
    const size = 13 * MiB + 5;
    const url = origin.add('/model.bin', { size, seed: 141 });
    const r = await preheat(url, '--wait');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'Preheat Succeeded!\n');
    assert.match(r.stderr, /preheat: 1\/1 finished \(1 file on 1 hosts\)/);
    const afterPreheat = origin.requests.length;
    assert.ok(origin.pieceRequests('/model.bin').length > 0, 'the seed fetched the file from the origin');

    const stat = await unary<StatFileResponse>((cb) => client.statFile(fileRequest(url), cb));
    assert.deepEqual(
      stat.peers.map((p) => ({ ip: p.ip, files: p.cachedFiles })),
      [{ ip: '127.0.0.1', files: [{ url, isFinished: true }] }],
    );

    const dest = join(out, 'model.bin');
    const d = await dfget(peer, url, dest);
    assert.equal(d.code, 0, d.stderr);
    assert.equal(await sha256File(dest), contentSha256(141, size));
    // The peer asks the origin for the size first (a 1-byte range, as upstream's client stats every new task),
    // and takes every content byte from the seed.
    assert.deepEqual(
      origin.requests.slice(afterPreheat).map((q) => `${q.method} ${q.path} ${q.range}`),
      ['GET /model.bin bytes=0-0'],
      'after the preheat the origin saw only the size probe',
    );
    const text = await metricsText(peer);
    assert.equal(metricValue(text, 'dragonfly_client_download_traffic', 'type="BACK_TO_SOURCE"'), 0);
    assert.equal(metricValue(text, 'dragonfly_client_download_traffic', 'type="REMOTE_PEER"'), size);
  });

  test('scope all_peers puts the file on the normal peer itself', async () => {
    const size = 5 * MiB;
    const url = origin.add('/all-peers.bin', { size, seed: 142 });
    const r = await preheat(url, '--scope', 'all_peers', '--wait');
    assert.equal(r.code, 0, r.stderr);
    const stat = await unary<StatFileResponse>((cb) => client.statFile(fileRequest(url), cb));
    assert.equal(stat.peers.filter((p) => p.cachedFiles[0]?.isFinished).length >= 1, true);
    const before = origin.requests.length;
    const dest = join(out, 'all-peers.bin');
    const d = await dfget(peer, url, dest);
    assert.equal(d.code, 0, d.stderr);
    assert.equal(await sha256File(dest), contentSha256(142, size));
    assert.equal(origin.requests.length, before, "served from the peer's own cache: not even a size probe");
  });

  test('an unknown scope: dfctl names the choices; the scheduler answers INVALID_ARGUMENT', async () => {
    const r = await preheat(`${origin.url}/x.bin`, '--scope', 'some_peers');
    assert.equal(r.code, 1);
    assert.match(
      r.stderr.trim(),
      /^error: option '--scope <scope>' argument 'some_peers' is invalid\. Allowed choices are single_seed_peer, all_seed_peers, all_peers\.$/,
    );
    await assert.rejects(
      unary((cb) => client.preheatFile(fileRequest(`${origin.url}/x.bin`, { scope: 'some_peers' }), cb)),
      (e: ServiceError) =>
        e.code === GrpcStatus.INVALID_ARGUMENT && /unsupported preheat scope: some_peers/.test(e.details),
    );
  });

  test('an unreachable registry is one line naming it', async () => {
    const r = await preheat('oci://127.0.0.1:1/t/x:v1', '--plain-http');
    assert.equal(r.code, 1);
    assert.equal(
      r.stderr,
      'Error: failed to resolve manifests: cannot reach registry 127.0.0.1:1: connect ECONNREFUSED 127.0.0.1:1\n',
    );
  });

  test('--console logs the request as sent, without the registry password', async () => {
    const r = await preheat(
      'oci://127.0.0.1:1/t/x:v1',
      '--plain-http',
      '--console',
      '--username',
      'u',
      '--password',
      'hunter2',
    );
    assert.equal(r.code, 1);
    assert.match(r.stderr, /"msg":"PreheatImage"/);
    assert.match(r.stderr, /"url":"http:\/\/127\.0\.0\.1:1\/v2\/t\/x\/manifests\/v1"/);
    assert.doesNotMatch(r.stderr, /hunter2/);
  });

  test('a manifest the registry does not have (404) is one line with the status', async () => {
    // The test origin answers 404 for any path it does not serve: a registry without that image.
    const r = await preheat(`oci://127.0.0.1:${origin.port}/t/missing:v1`, '--plain-http');
    assert.equal(r.code, 1);
    assert.equal(
      r.stderr,
      `Error: failed to resolve manifests: GET http://127.0.0.1:${origin.port}/v2/t/missing/manifests/v1: status 404\n`,
    );
  });

  test("URLs the scheduler's address policy refuses: PERMISSION_DENIED naming the address and the key", async () => {
    const file = await preheat('http://169.254.169.254/latest/meta-data');
    assert.equal(file.code, 1);
    assert.match(
      file.stderr,
      /^Error: 169\.254\.169\.254 is a .* address: a remote caller may not make dfdaemon connect there; list it in security\.allowedPrivateSources to allow it\n$/,
    );
    const image = await preheat('oci://10.1.2.3:5000/t/x:v1');
    assert.equal(image.code, 1);
    assert.match(
      image.stderr,
      /^Error: failed to resolve manifests: 10\.1\.2\.3:5000 is a private address: .*security\.allowedPrivateSources/,
    );
    await assert.rejects(
      unary((cb) => client.preheatFile(fileRequest('http://169.254.169.254/x'), new Metadata(), cb)),
      (e: ServiceError) => e.code === GrpcStatus.PERMISSION_DENIED,
    );
  });

  test('a scope with no host to download on fails in the call, naming why', async () => {
    const r = await preheat(`${origin.url}/x.bin`, '--scope', 'all_seed_peers', '--ip', '10.9.9.9');
    assert.equal(r.code, 1);
    assert.equal(r.stderr, 'Error: no seed peer found for ips 10.9.9.9\n');
  });

  test('bad flag values are refused before anything is sent', async () => {
    const count = await preheat(`${origin.url}/x.bin`, '--count', '0');
    assert.equal(count.code, 1);
    assert.match(count.stderr, /^error: option '--count <n>' argument '0' is invalid\. expected 1 to 200\n$/);
    const endpointless = await run([DFCTL, 'task', 'preheat', `${origin.url}/x.bin`]);
    assert.equal(endpointless.code, 1);
    assert.match(endpointless.stderr, /required option '--scheduler-endpoint <endpoint>' not specified/);
    const badRef = await preheat('oci://Upper/Case:v1');
    assert.equal(badRef.code, 1);
    assert.match(badRef.stderr, /^Error: invalid image reference "oci:\/\/Upper\/Case:v1": /);
  });
});
