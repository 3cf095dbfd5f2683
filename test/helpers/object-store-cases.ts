// The cases every object storage scheme must pass (issue 15), against whichever store is under test: a
// multi-piece object byte-exact, P2P (a second peer takes it from the first: the store's piece reads are
// counted), a missing object, wrong credentials (never logged), an object that changes between pieces, a
// recursive download of a prefix with nested "directories", and ListTaskEntries on the download socket.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { filesUnder, sha256 } from './files.js';
import {
  dfget,
  metricsText,
  metricValue,
  startDaemon,
  stopDaemon,
  tempDir,
  type DaemonHandle,
} from './daemon.js';
import { startScheduler, stopScheduler, type SchedulerHandle } from './scheduler-process.js';
import { LOOPBACK_SEED_CONFIG } from './small-cluster.js';
import type { ObjectStoreUnderTest } from './object-store.js';
import { downloadClient } from '../../src/cli/daemon-client.js';
import type { ListTaskEntriesRequest, ListTaskEntriesResponse } from '../../src/gen/dfdaemon.js';

const MiB = 1024 * 1024;

export function objectStoreCases(store: ObjectStoreUnderTest): void {
  const { scheme, bucket } = store;
  describe(`${scheme}:// through opendal against ${store.server}`, () => {
    let scheduler: SchedulerHandle;
    let seed: DaemonHandle;
    const peers: DaemonHandle[] = [];
    const out = tempDir(`dft-${scheme}-out-`);
    const pieceReads = (key: string) => store.requests.filter((r) => store.isPieceRead(r, key));

    before(async () => {
      await store.start();
      scheduler = await startScheduler();
      seed = await startDaemon({ schedulerAddr: scheduler.addr, extraConfig: LOOPBACK_SEED_CONFIG });
      for (let i = 0; i < 2; i++) peers.push(await startDaemon({ schedulerAddr: scheduler.addr }));
    });

    after(async () => {
      for (const p of peers) await stopDaemon(p);
      await stopDaemon(seed);
      await stopScheduler(scheduler);
      await store.stop();
      rmSync(out, { recursive: true, force: true });
    });

    test('a 5-piece object arrives byte-exact; a second peer takes it from peers, not from the store', async () => {
      const data = randomBytes(18 * MiB);
      await store.put('llm/weights.bin', data);
      const url = `${scheme}://${bucket}/llm/weights.bin`;

      const first = await dfget(peers[0]!, url, join(out, 'w0'), store.flags());
      assert.equal(first.code, 0, first.stderr);
      assert.equal(sha256(readFileSync(join(out, 'w0'))), sha256(data));
      const reads = pieceReads('llm/weights.bin');
      assert.equal(reads.length, 5, 'each of the 5 pieces read from the store once');
      assert.equal(new Set(reads.map((r) => r.range)).size, 5);

      const second = await dfget(peers[1]!, url, join(out, 'w1'), store.flags());
      assert.equal(second.code, 0, second.stderr);
      assert.equal(sha256(readFileSync(join(out, 'w1'))), sha256(data));
      assert.equal(pieceReads('llm/weights.bin').length, 5, 'the second peer read nothing from the store');
      // The seed read the store for the first peer, with the credentials the peer's request carried.
      const seedText = await metricsText(seed);
      assert.equal(
        metricValue(seedText, 'dragonfly_client_download_traffic', 'type="BACK_TO_SOURCE"'),
        data.length,
      );
      for (const p of peers) {
        const text = await metricsText(p);
        assert.equal(metricValue(text, 'dragonfly_client_download_traffic', 'type="BACK_TO_SOURCE"'), 0);
      }

      for (const d of [seed, ...peers]) {
        for (const line of d.logs)
          assert.ok(!line.includes(store.secret), `a log line carries the secret: ${line}`);
      }
    });

    test('a missing object is NOT_FOUND in one line', async () => {
      const r = await dfget(
        peers[0]!,
        `${scheme}://${bucket}/no/such.bin`,
        join(out, 'missing'),
        store.flags(),
      );
      assert.equal(r.code, 1);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, r.stderr);
      assert.match(
        lines[0]!,
        new RegExp(`${scheme}://${bucket}/no/such\\.bin: NOT_FOUND: no such object in the ${scheme} store`),
      );
      assert.equal(existsSync(join(out, 'missing')), false);
    });

    test(`wrong credentials are a permission error naming ${scheme}, and no credential reaches a log line`, async () => {
      await store.put('private.bin', randomBytes(1024));
      const wrong = store.wrongCredentials();
      const r = await dfget(peers[0]!, `${scheme}://${bucket}/private.bin`, join(out, 'denied'), wrong.flags);
      assert.equal(r.code, 1);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, wrong.message);
      for (const text of [r.stderr, r.stdout, ...peers[0]!.logs, ...seed.logs]) {
        for (const s of wrong.secrets) assert.ok(!text.includes(s), `credential in: ${text}`);
      }
    });

    test('an object that changes between pieces fails the download; no output, never a mix', async () => {
      const key = 'changing.bin';
      await store.put(key, randomBytes(10 * MiB));
      // Every time the second piece is asked for, the object is replaced first: each attempt (dfget retries once)
      // sees a new ETag. The store's other requests for it wait for the replacement: an emulator may write in
      // place, and a half-written object would answer 416, not a new version.
      let replacing: Promise<void> | undefined;
      store.beforeRequest = async (r) => {
        if (!store.isPieceRead(r, key)) return;
        if (r.range?.startsWith(`bytes=${4 * MiB}-`)) replacing = store.put(key, randomBytes(10 * MiB));
        await replacing;
      };
      try {
        // A daemon on its own (no scheduler): pieces come from the store in order.
        const alone = await startDaemon();
        try {
          const r = await dfget(alone, `${scheme}://${bucket}/${key}`, join(out, 'changing'), store.flags());
          assert.equal(r.code, 1, r.stderr);
          assert.match(r.stderr, /source changed during the download/);
          assert.equal(existsSync(join(out, 'changing')), false);
        } finally {
          await stopDaemon(alone);
        }
      } finally {
        store.beforeRequest = undefined;
      }
    });

    test('dfget -r downloads a prefix with nested directories; --include-files narrows it', async () => {
      const tree: Record<string, Buffer> = {
        'ds/a.txt': randomBytes(100),
        'ds/train/part-0.bin': randomBytes(5 * MiB),
        'ds/train/deep/part-1.bin': randomBytes(2000),
        'ds/eval/x.json': randomBytes(10),
        'other/not-me.txt': randomBytes(10),
      };
      for (const [k, v] of Object.entries(tree)) await store.put(k, v);

      const all = join(out, 'tree-all');
      mkdirSync(all);
      const r = await dfget(peers[0]!, `${scheme}://${bucket}/ds`, all, ['-r', ...store.flags()]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(filesUnder(all), [
        'a.txt',
        'eval/x.json',
        'train/deep/part-1.bin',
        'train/part-0.bin',
      ]);
      for (const f of filesUnder(all))
        assert.equal(sha256(readFileSync(join(all, f))), sha256(tree[`ds/${f}`]!), f);

      const some = join(out, 'tree-some');
      mkdirSync(some);
      const r2 = await dfget(peers[1]!, `${scheme}://${bucket}/ds/`, some, [
        '--include-files',
        'train/**',
        '--include-files',
        'a.txt',
        ...store.flags(),
      ]);
      assert.equal(r2.code, 0, r2.stderr);
      assert.deepEqual(filesUnder(some), ['a.txt', 'train/deep/part-1.bin', 'train/part-0.bin']);
    });

    test('ListTaskEntries on the download socket lists a prefix; a bad timeout is INVALID_ARGUMENT', async () => {
      await store.put('list/one.bin', randomBytes(7));
      await store.put('list/nested/two.bin', randomBytes(9));
      const client = downloadClient(peers[0]!.socket);
      const flags = store.flags();
      const flag = (name: string) => {
        const i = flags.indexOf(name);
        return i < 0 ? undefined : flags[i + 1];
      };
      const call = (r: Partial<ListTaskEntriesRequest>) =>
        new Promise<ListTaskEntriesResponse>((ok, fail) =>
          client.listTaskEntries(
            {
              taskId: '',
              url: `${scheme}://${bucket}/list/`,
              requestHeader: {},
              certificateChain: [],
              objectStorage: {
                endpoint: flag('--storage-endpoint'),
                accessKeyId: flag('--storage-access-key-id'),
                accessKeySecret: flag('--storage-access-key-secret'),
              },
              ...r,
            },
            (e, res) => (e ? fail(e) : ok(res)),
          ),
        );
      try {
        const res = await call({});
        const got = res.entries.filter((e) => !e.isDir).map((e) => [e.url, e.contentLength]);
        assert.deepEqual(got.sort(), [
          [`${scheme}://${bucket}/list/nested/two.bin`, 9],
          [`${scheme}://${bucket}/list/one.bin`, 7],
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
}
