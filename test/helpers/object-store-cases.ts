// The cases every object storage scheme must pass (issue 15), and HDFS with them, against whichever source is
// under test: a multi-piece object byte-exact, P2P (a second peer takes it from the first: the source's piece reads
// are counted), a missing object, a read the source denies (wrong credentials, or a file's permissions; never
// logged), an object that changes between pieces, a recursive download of a prefix with nested "directories", and
// ListTaskEntries on the download socket.

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
import type { ObjectStoreUnderTest, StoreRequest } from './object-store.js';
import { downloadClient } from '../../src/cli/daemon-client.js';
import type { ListTaskEntriesRequest, ListTaskEntriesResponse } from '../../src/gen/dfdaemon.js';

const MiB = 1024 * 1024;

/** A source of downloads under test, as the cases need it; `key` is a path below the bucket or root, no `/` first. */
export interface SourceUnderTest {
  /** The suite's title. */
  readonly title: string;
  readonly scheme: string;
  readonly requests: StoreRequest[];
  beforeRequest?: (r: StoreRequest) => Promise<void> | void;
  start(): Promise<void>;
  stop(): Promise<void>;
  url(key: string): string;
  put(key: string, data: Buffer): Promise<void>;
  /** Whether a recorded request read bytes of `key`, and from which offset (undefined: not a piece read). */
  pieceReadStart(r: StoreRequest, key: string): number | undefined;
  /** dfget flags that reach the source. */
  flags(): string[];
  /** Values no output or log line may carry. */
  readonly secrets: string[];
  /** The one line dfget prints for a missing `url`. */
  notFound(url: string): RegExp;
  /** Makes a read of `key` that the source denies: the dfget flags, the values never to log, dfget's one line. */
  denied(key: string): Promise<{ flags: string[]; secrets: string[]; message: RegExp }>;
  /** The ListTaskEntries fields that carry the source's credentials. */
  listFields(): Partial<ListTaskEntriesRequest>;
  /** Whether ListTaskEntries names directories too (WebHDFS does; object stores have none). */
  readonly listsDirectories: boolean;
}

/** An object store through opendal as a SourceUnderTest. */
export function objectStoreSource(store: ObjectStoreUnderTest): SourceUnderTest {
  const { scheme, bucket } = store;
  const flag = (name: string) => {
    const flags = store.flags();
    const i = flags.indexOf(name);
    return i < 0 ? undefined : flags[i + 1];
  };
  return {
    title: `${scheme}:// through opendal against ${store.server}`,
    scheme,
    get requests() {
      return store.requests;
    },
    get beforeRequest() {
      return store.beforeRequest;
    },
    set beforeRequest(hook) {
      store.beforeRequest = hook;
    },
    start: () => store.start(),
    stop: () => store.stop(),
    url: (key) => `${scheme}://${bucket}/${key}`,
    put: (key, data) => store.put(key, data),
    pieceReadStart: (r, key) => {
      if (!store.isPieceRead(r, key)) return undefined;
      const m = /^bytes=(\d+)-/.exec(r.range ?? '');
      return m ? Number(m[1]) : undefined;
    },
    flags: () => store.flags(),
    secrets: [store.secret],
    notFound: (url) => new RegExp(`${escapeRegExp(url)}: NOT_FOUND: no such object in the ${scheme} store`),
    denied: async (key) => {
      await store.put(key, randomBytes(1024));
      return store.wrongCredentials();
    },
    listFields: () => ({
      objectStorage: {
        endpoint: flag('--storage-endpoint'),
        accessKeyId: flag('--storage-access-key-id'),
        accessKeySecret: flag('--storage-access-key-secret'),
      },
    }),
    listsDirectories: false,
  };
}

export function objectStoreCases(store: ObjectStoreUnderTest): void {
  sourceCases(objectStoreSource(store));
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

export function sourceCases(source: SourceUnderTest): void {
  const { scheme } = source;
  describe(source.title, () => {
    let scheduler: SchedulerHandle;
    let seed: DaemonHandle;
    const peers: DaemonHandle[] = [];
    const out = tempDir(`dft-${scheme}-out-`);
    const pieceReads = (key: string) =>
      source.requests.filter((r) => source.pieceReadStart(r, key) !== undefined);
    const assertNothingSecret = (texts: string[], secrets = source.secrets) => {
      for (const text of texts) for (const s of secrets) assert.ok(!text.includes(s), `a secret in: ${text}`);
    };

    before(async () => {
      await source.start();
      scheduler = await startScheduler();
      seed = await startDaemon({ schedulerAddr: scheduler.addr, extraConfig: LOOPBACK_SEED_CONFIG });
      for (let i = 0; i < 2; i++) peers.push(await startDaemon({ schedulerAddr: scheduler.addr }));
    });

    after(async () => {
      for (const p of peers) await stopDaemon(p);
      await stopDaemon(seed);
      await stopScheduler(scheduler);
      await source.stop();
      rmSync(out, { recursive: true, force: true });
    });

    test('a 5-piece object arrives byte-exact; a second peer takes it from peers, not from the source', async () => {
      const data = randomBytes(18 * MiB);
      await source.put('llm/weights.bin', data);
      const url = source.url('llm/weights.bin');

      const first = await dfget(peers[0]!, url, join(out, 'w0'), source.flags());
      assert.equal(first.code, 0, first.stderr);
      assert.equal(sha256(readFileSync(join(out, 'w0'))), sha256(data));
      const reads = pieceReads('llm/weights.bin');
      assert.equal(reads.length, 5, 'each of the 5 pieces read from the source once');
      assert.equal(new Set(reads.map((r) => source.pieceReadStart(r, 'llm/weights.bin'))).size, 5);

      const second = await dfget(peers[1]!, url, join(out, 'w1'), source.flags());
      assert.equal(second.code, 0, second.stderr);
      assert.equal(sha256(readFileSync(join(out, 'w1'))), sha256(data));
      assert.equal(pieceReads('llm/weights.bin').length, 5, 'the second peer read nothing from the source');
      // The seed read the source for the first peer, with the credentials the peer's request carried.
      const seedText = await metricsText(seed);
      assert.equal(
        metricValue(seedText, 'dragonfly_client_download_traffic', 'type="BACK_TO_SOURCE"'),
        data.length,
      );
      for (const p of peers) {
        const text = await metricsText(p);
        assert.equal(metricValue(text, 'dragonfly_client_download_traffic', 'type="BACK_TO_SOURCE"'), 0);
      }
      assertNothingSecret([first.stderr, second.stderr, ...seed.logs, ...peers.flatMap((p) => p.logs)]);
    });

    test('a missing object is NOT_FOUND in one line', async () => {
      const url = source.url('no/such.bin');
      const r = await dfget(peers[0]!, url, join(out, 'missing'), source.flags());
      assert.equal(r.code, 1);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0]!, source.notFound(url));
      assert.equal(existsSync(join(out, 'missing')), false);
    });

    test(`a denied read is a permission error naming ${scheme}, and no credential reaches a log line`, async () => {
      const denied = await source.denied('private/secret.bin');
      const r = await dfget(peers[0]!, source.url('private/secret.bin'), join(out, 'denied'), denied.flags);
      assert.equal(r.code, 1);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, denied.message);
      assertNothingSecret([r.stderr, r.stdout, ...peers[0]!.logs, ...seed.logs], denied.secrets);
    });

    test('an object that changes between pieces fails the download; no output, never a mix', async () => {
      const key = 'changing.bin';
      await source.put(key, randomBytes(10 * MiB));
      // Every time the second piece is asked for, the object is replaced first: each attempt (dfget retries once)
      // sees a new version. The source's other requests for it wait for the replacement: an emulator may write in
      // place, and a half-written object would answer 416, not a new version.
      // Replacements run one after another: two overlapping overwrites of one HDFS file make the first writer's
      // DataNode half answer 404.
      let replacing: Promise<void> = Promise.resolve();
      source.beforeRequest = async (r) => {
        const start = source.pieceReadStart(r, key);
        if (start === undefined) return;
        if (start === 4 * MiB) replacing = replacing.then(() => source.put(key, randomBytes(10 * MiB)));
        await replacing;
      };
      try {
        // A daemon on its own (no scheduler): pieces come from the source in order.
        const alone = await startDaemon();
        try {
          const r = await dfget(alone, source.url(key), join(out, 'changing'), source.flags());
          assert.equal(r.code, 1, r.stderr);
          assert.match(r.stderr, /source changed during the download/);
          assert.equal(existsSync(join(out, 'changing')), false);
        } finally {
          await stopDaemon(alone);
        }
      } finally {
        source.beforeRequest = undefined;
        // A replacement still under way when dfget gave up must not outlive the test.
        await replacing.catch(() => undefined);
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
      for (const [k, v] of Object.entries(tree)) await source.put(k, v);

      const all = join(out, 'tree-all');
      mkdirSync(all);
      const r = await dfget(peers[0]!, source.url('ds'), all, ['-r', ...source.flags()]);
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
      const r2 = await dfget(peers[1]!, source.url('ds/'), some, [
        '--include-files',
        'train/**',
        '--include-files',
        'a.txt',
        ...source.flags(),
      ]);
      assert.equal(r2.code, 0, r2.stderr);
      assert.deepEqual(filesUnder(some), ['a.txt', 'train/deep/part-1.bin', 'train/part-0.bin']);
    });

    test('ListTaskEntries on the download socket lists a prefix; a bad timeout is INVALID_ARGUMENT', async () => {
      await source.put('list/one.bin', randomBytes(7));
      await source.put('list/nested/two.bin', randomBytes(9));
      const client = downloadClient(peers[0]!.socket);
      const call = (r: Partial<ListTaskEntriesRequest>) =>
        new Promise<ListTaskEntriesResponse>((ok, fail) =>
          client.listTaskEntries(
            {
              taskId: '',
              url: source.url('list/'),
              requestHeader: {},
              certificateChain: [],
              ...source.listFields(),
              ...r,
            },
            (e, res) => (e ? fail(e) : ok(res)),
          ),
        );
      try {
        const res = await call({});
        const files = res.entries.filter((e) => !e.isDir).map((e) => [e.url, e.contentLength]);
        assert.deepEqual(files.sort(), [
          [source.url('list/nested/two.bin'), 9],
          [source.url('list/one.bin'), 7],
        ]);
        if (source.listsDirectories) {
          const dirs = res.entries.filter((e) => e.isDir).map((e) => e.url);
          assert.deepEqual(dirs, [source.url('list/nested/')]);
        }
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
