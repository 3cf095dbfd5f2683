// A task whose identity names its digest — an OCI blob URL (/v2/<name>/blobs/sha256:<hex>), by URL or with the
// blob digest as its task id — is checked against it before it counts as finished (issue 16 item 1): bytes that
// are not the blob fail dfget and never reach a proxy client whole, and nothing is cached, so the next request
// asks the origin again. Before the fix they were stored as the blob and served from the cache.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { curl } from '../helpers/curl.js';
import { dfget, startDaemon, stopDaemon, tempDir, type DaemonHandle } from '../helpers/daemon.js';
import { contentSha256, contentSlice, Origin } from '../helpers/origin.js';

const MiB = 1024 * 1024;
const SIZE = 5 * MiB + 3;

describe('known digests: registry blobs are checked before they are finished', () => {
  const origin = new Origin();
  const out = tempDir('dft-digest-out-');
  let d: DaemonHandle;
  /** A blob path naming the digest of seed `named`, serving the bytes of seed `served`. */
  const blob = (repo: string, named: number, served: number) =>
    origin.add(`/v2/${repo}/blobs/sha256:${contentSha256(named, SIZE)}`, { size: SIZE, seed: served });
  const hits = (url: string) => origin.pieceRequests(new URL(url).pathname).length;

  before(async () => {
    await origin.start();
    d = await startDaemon();
  });

  after(async () => {
    if (d) await stopDaemon(d);
    await origin.stop();
    rmSync(out, { recursive: true, force: true });
  });

  test('dfget of a blob URL whose bytes are not the blob fails, and nothing is cached', async () => {
    const url = blob('lib/bad', 1, 2);
    const r = await dfget(d, url, join(out, 'bad'));
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /is not sha256:[0-9a-f]{64}, the digest its URL names/);
    assert.equal(existsSync(join(out, 'bad')), false, 'dfget removed its output');
    const before = hits(url);
    const again = await dfget(d, url, join(out, 'bad'));
    assert.equal(again.code, 1);
    assert.ok(hits(url) > before, 'asked the origin again: the bad bytes were not kept');
  });

  test('through the proxy the answer is cut before its last piece; the next request asks the origin again', async () => {
    const url = blob('lib/bad-proxy', 3, 4);
    const proxy = `http://127.0.0.1:${d.proxyPort}`;
    const first = await curl(['-x', proxy, url]);
    assert.notEqual(first.code, 0, 'curl sees a short body');
    assert.ok(first.body.length < SIZE, `got ${first.body.length} of ${SIZE} bytes`);
    const before = hits(url);
    const second = await curl(['-x', proxy, url]);
    assert.notEqual(second.code, 0);
    assert.ok(hits(url) > before, 'not served from the cache');
  });

  test('the same with the blob digest as the task id (X-Dragonfly-Enable-Task-ID-Based-Blob-Digest)', async () => {
    const url = blob('lib/bad-digest-id', 5, 6);
    const proxy = `http://127.0.0.1:${d.proxyPort}`;
    const h = ['-H', 'X-Dragonfly-Enable-Task-ID-Based-Blob-Digest: true'];
    const first = await curl(['-x', proxy, ...h, url]);
    assert.notEqual(first.code, 0);
    assert.ok(first.body.length < SIZE);
  });

  test('a blob that is what it names is served whole and cached (dfget and the proxy)', async () => {
    const url = blob('lib/good', 7, 7);
    const r = await dfget(d, url, join(out, 'good'));
    assert.equal(r.code, 0, r.stderr);
    assert.ok(readFileSync(join(out, 'good')).equals(contentSlice(7, 0, SIZE)));
    const before = hits(url);
    const viaProxy = await curl(['-x', `http://127.0.0.1:${d.proxyPort}`, url]);
    assert.equal(viaProxy.status, 200);
    assert.equal(viaProxy.headers['x-dragonfly-task-download-finished'], 'true');
    assert.ok(viaProxy.body.equals(contentSlice(7, 0, SIZE)));
    assert.equal(hits(url), before, 'served from the cache');
  });
});
