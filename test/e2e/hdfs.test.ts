// hdfs:// against a real HDFS: Hadoop's MiniDFSCluster with WebHDFS (scripts/install-hdfs.sh builds the launcher in
// test/fixtures/hdfs). The object storage cases that apply to HDFS: a multi-piece file byte-exact, P2P (the
// second peer takes it from peers: the NameNode's OPENs are counted), a missing file, a file the caller may not
// read (a real 403), a file rewritten between pieces, dfget -r with --include-files, and ListTaskEntries. Every
// dfget carries a delegation token: this insecure cluster ignores it, and no log line may show it. (A NameNode
// that checks tokens is test/unit/backend/hdfs.test.ts's and test/integration/hdfs.test.ts's Node WebHDFS server.)

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { filesUnder, sha256 } from '../helpers/files.js';
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
import { LOOPBACK_SEED_CONFIG } from '../helpers/small-cluster.js';
import { HdfsMiniCluster } from '../helpers/hdfs-mini-cluster.js';
import { downloadClient } from '../../src/cli/daemon-client.js';
import type { ListTaskEntriesRequest, ListTaskEntriesResponse } from '../../src/gen/dfdaemon.js';

const MiB = 1024 * 1024;
const TOKEN = 'dftest-hdfs-delegation-token-7f3e';
const FLAGS = ['--hdfs-delegation-token', TOKEN];

describe('hdfs:// over WebHDFS against a Hadoop MiniDFSCluster', () => {
  const hdfs = new HdfsMiniCluster();
  let scheduler: SchedulerHandle;
  let seed: DaemonHandle;
  const peers: DaemonHandle[] = [];
  const out = tempDir('dft-hdfs-out-');
  const url = (path: string) => `hdfs://${hdfs.namenode}${path}`;
  const pieceReads = (path: string) => hdfs.requests.filter((r) => hdfs.isPieceRead(r, path));
  const assertNoToken = (texts: string[]) => {
    for (const text of texts) assert.ok(!text.includes(TOKEN), `the delegation token in: ${text}`);
  };

  before(async () => {
    await hdfs.start();
    scheduler = await startScheduler();
    seed = await startDaemon({ schedulerAddr: scheduler.addr, extraConfig: LOOPBACK_SEED_CONFIG });
    for (let i = 0; i < 2; i++) peers.push(await startDaemon({ schedulerAddr: scheduler.addr }));
  });

  after(async () => {
    for (const p of peers) await stopDaemon(p);
    await stopDaemon(seed);
    await stopScheduler(scheduler);
    await hdfs.stop();
    rmSync(out, { recursive: true, force: true });
  });

  test('a 5-piece file arrives byte-exact; a second peer takes it from peers, not from HDFS', async () => {
    const data = randomBytes(18 * MiB);
    await hdfs.put('/llm/weights.bin', data);

    const first = await dfget(peers[0]!, url('/llm/weights.bin'), join(out, 'w0'), FLAGS);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(sha256(readFileSync(join(out, 'w0'))), sha256(data));
    const reads = pieceReads('/llm/weights.bin');
    assert.equal(reads.length, 5, 'each of the 5 pieces opened once');
    assert.equal(new Set(reads.map((r) => new URLSearchParams(r.query).get('offset'))).size, 5);
    assert.ok(reads.every((r) => new URLSearchParams(r.query).get('delegation') === TOKEN));

    const second = await dfget(peers[1]!, url('/llm/weights.bin'), join(out, 'w1'), FLAGS);
    assert.equal(second.code, 0, second.stderr);
    assert.equal(sha256(readFileSync(join(out, 'w1'))), sha256(data));
    assert.equal(pieceReads('/llm/weights.bin').length, 5, 'the second peer read nothing from HDFS');
    // The seed read HDFS for the first peer, with the token the peer's request carried.
    const seedText = await metricsText(seed);
    assert.equal(
      metricValue(seedText, 'dragonfly_client_download_traffic', 'type="BACK_TO_SOURCE"'),
      data.length,
    );
    for (const p of peers) {
      const text = await metricsText(p);
      assert.equal(metricValue(text, 'dragonfly_client_download_traffic', 'type="BACK_TO_SOURCE"'), 0);
    }
    assertNoToken([first.stderr, second.stderr, ...seed.logs, ...peers.flatMap((p) => p.logs)]);
  });

  test('a missing file is NOT_FOUND in one line', async () => {
    const r = await dfget(peers[0]!, url('/no/such.bin'), join(out, 'missing'), FLAGS);
    assert.equal(r.code, 1);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(
      lines[0]!,
      new RegExp(`hdfs://${hdfs.namenode}/no/such\\.bin: NOT_FOUND: no such file or directory in hdfs`),
    );
    assert.equal(existsSync(join(out, 'missing')), false);
  });

  test('a file the caller may not read is a permission error naming hdfs; the token is never logged', async () => {
    await hdfs.put('/private/secret.bin', randomBytes(1024));
    await hdfs.chmod('/private/secret.bin', '600');
    const r = await dfget(peers[0]!, url('/private/secret.bin'), join(out, 'denied'), FLAGS);
    assert.equal(r.code, 1);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /permission denied by hdfs \(HTTP 403\): check --hdfs-delegation-token/);
    assertNoToken([r.stderr, r.stdout, ...peers[0]!.logs, ...seed.logs]);
  });

  test('a file rewritten between pieces fails the download; no output, never a mix', async () => {
    const path = '/changing.bin';
    await hdfs.put(path, randomBytes(10 * MiB));
    // Every time the second piece is opened, the file is rewritten first (same length, new bytes): each attempt
    // (dfget retries once) sees a new version. The cluster's other requests wait for the rewrite.
    let replacing: Promise<void> | undefined;
    hdfs.beforeRequest = async (r) => {
      if (hdfs.isPieceRead(r, path) && new URLSearchParams(r.query).get('offset') === String(4 * MiB)) {
        replacing = hdfs.put(path, randomBytes(10 * MiB));
      }
      await replacing;
    };
    try {
      // A daemon on its own (no scheduler): pieces come from HDFS.
      const alone = await startDaemon();
      try {
        const r = await dfget(alone, url(path), join(out, 'changing'), FLAGS);
        assert.equal(r.code, 1, r.stderr);
        assert.match(r.stderr, /source changed during the download/);
        assert.equal(existsSync(join(out, 'changing')), false);
      } finally {
        await stopDaemon(alone);
      }
    } finally {
      hdfs.beforeRequest = undefined;
    }
  });

  test('dfget -r downloads a directory with nested directories; --include-files narrows it', async () => {
    const tree: Record<string, Buffer> = {
      '/ds/a.txt': randomBytes(100),
      '/ds/train/part-0.bin': randomBytes(5 * MiB),
      '/ds/train/deep/part-1.bin': randomBytes(2000),
      '/ds/eval/x.json': randomBytes(10),
      '/other/not-me.txt': randomBytes(10),
    };
    for (const [k, v] of Object.entries(tree)) await hdfs.put(k, v);

    const all = join(out, 'tree-all');
    mkdirSync(all);
    const r = await dfget(peers[0]!, url('/ds'), all, ['-r', ...FLAGS]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(filesUnder(all), ['a.txt', 'eval/x.json', 'train/deep/part-1.bin', 'train/part-0.bin']);
    for (const f of filesUnder(all))
      assert.equal(sha256(readFileSync(join(all, f))), sha256(tree[`/ds/${f}`]!), f);

    const some = join(out, 'tree-some');
    mkdirSync(some);
    const r2 = await dfget(peers[1]!, url('/ds/'), some, [
      '--include-files',
      'train/**',
      '--include-files',
      'a.txt',
      ...FLAGS,
    ]);
    assert.equal(r2.code, 0, r2.stderr);
    assert.deepEqual(filesUnder(some), ['a.txt', 'train/deep/part-1.bin', 'train/part-0.bin']);
  });

  test('ListTaskEntries on the download socket lists a directory; a bad timeout is INVALID_ARGUMENT', async () => {
    await hdfs.put('/list/one.bin', randomBytes(7));
    await hdfs.put('/list/nested/two.bin', randomBytes(9));
    const client = downloadClient(peers[0]!.socket);
    const call = (r: Partial<ListTaskEntriesRequest>) =>
      new Promise<ListTaskEntriesResponse>((ok, fail) =>
        client.listTaskEntries(
          {
            taskId: '',
            url: url('/list/'),
            requestHeader: {},
            certificateChain: [],
            hdfs: { delegationToken: TOKEN },
            ...r,
          },
          (e, res) => (e ? fail(e) : ok(res)),
        ),
      );
    try {
      const res = await call({});
      assert.deepEqual(res.entries.map((e) => [e.url, e.contentLength, e.isDir]).sort(), [
        [url('/list/nested/'), 0, true],
        [url('/list/nested/two.bin'), 9, false],
        [url('/list/one.bin'), 7, false],
      ]);
      await assert.rejects(
        call({ timeout: { seconds: -1, nanos: 0 } }),
        /INVALID_ARGUMENT: timeout must be positive/,
      );
    } finally {
      client.close();
    }
  });
});
