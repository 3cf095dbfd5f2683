// hf://, modelscope:// and opencsg:// end to end (dfget → dfdaemon → the hub), against a hub that serves the
// documented paths (helpers/hub-server.ts; no real hub runs here): a multi-piece file byte-exact, with the token as
// a bearer token to the hub and never to its CDN; a whole repository with nested files; a missing file; a wrong
// token; and the revision in the task id.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
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
import { startSeededCluster, type SeededCluster } from '../helpers/small-cluster.js';
import { HubServer, type HubKind } from '../helpers/hub-server.js';
import { DEFAULT_FILTERED_QUERY_PARAMS, taskIdFromUrl } from '../../src/core/task-id.js';

const MiB = 1024 * 1024;

interface HubCase {
  kind: HubKind;
  /** The dfget flag prefix: --hf-*, --ms-*, --csg-*. */
  flag: string;
  defaultRevision: string;
  /** The repository's type segment in a URL (`` for models), and the hub's path for a file at a revision. */
  type: string;
  urlPrefix: string;
  resolvePath(revision: string, file: string): string;
  listingPath(revision: string): string;
}

const CASES: HubCase[] = [
  {
    kind: 'hf',
    flag: 'hf',
    defaultRevision: 'main',
    type: 'datasets',
    urlPrefix: 'hf://datasets/acme/corpus',
    resolvePath: (rev, file) => `/datasets/acme/corpus/resolve/${rev}/${file}`,
    listingPath: (rev) => `/api/datasets/acme/corpus?revision=${rev}`,
  },
  {
    kind: 'hf',
    flag: 'hf',
    defaultRevision: 'main',
    type: 'models',
    urlPrefix: 'hf://acme/llm',
    resolvePath: (rev, file) => `/acme/llm/resolve/${rev}/${file}`,
    listingPath: (rev) => `/api/models/acme/llm?revision=${rev}`,
  },
  {
    kind: 'modelscope',
    flag: 'ms',
    defaultRevision: 'master',
    type: 'models',
    urlPrefix: 'modelscope://acme/llm',
    resolvePath: (rev, file) => `/models/acme/llm/resolve/${rev}/${file}`,
    listingPath: (rev) => `/api/v1/models/acme/llm/repo/files?Revision=${rev}&Recursive=true`,
  },
  {
    kind: 'opencsg',
    flag: 'csg',
    defaultRevision: 'main',
    type: 'models',
    urlPrefix: 'opencsg://acme/llm',
    resolvePath: (rev, file) => `/csg/acme/llm/resolve/${rev}/${file}`,
    listingPath: (rev) => `/csg/api/models/acme/llm/revision/${rev}?blobs=true`,
  },
];

for (const c of CASES) {
  describe(`${c.urlPrefix} against a ${c.kind} test server of the documented protocol`, () => {
    const token = `hub-token-${randomBytes(8).toString('hex')}`;
    const files: Record<string, Buffer> = {
      'config.json': Buffer.from('{"layers": 2}'),
      'weights/model.safetensors': randomBytes(10 * MiB + 123),
      'weights/deep/tokenizer.json': randomBytes(2000),
    };
    const v2 = { ...files, 'config.json': Buffer.from('{"layers": 3}') };
    const hub = new HubServer(
      c.kind,
      [
        {
          type: c.type,
          id: c.urlPrefix.split('/').slice(-2).join('/'),
          revisions: { [c.defaultRevision]: files, v2 },
        },
      ],
      token,
    );
    let daemon: DaemonHandle;
    const out = tempDir(`dft-${c.kind}-out-`);
    const flags = (t = token) => [`--${c.flag}-base-url`, hub.baseUrl, `--${c.flag}-token`, t];

    before(async () => {
      await hub.start();
      daemon = await startDaemon();
    });

    after(async () => {
      await stopDaemon(daemon);
      await hub.stop();
      rmSync(out, { recursive: true, force: true });
    });

    test('a multi-piece file arrives byte-exact; the token goes to the hub as a bearer token, never to its CDN', async () => {
      hub.requests.length = 0;
      const output = join(out, 'model.safetensors');
      const r = await dfget(daemon, `${c.urlPrefix}/weights/model.safetensors`, output, flags());
      assert.equal(r.code, 0, r.stderr);
      assert.equal(sha256(readFileSync(output)), sha256(files['weights/model.safetensors']!));

      const toHub = hub.requests.filter((q) => q.origin === 'hub');
      assert.ok(toHub.length >= 2, 'a stat and at least one piece');
      for (const q of toHub) {
        assert.equal(q.url, c.resolvePath(c.defaultRevision, 'weights/model.safetensors'));
        assert.equal(q.authorization, `Bearer ${token}`);
      }
      const pieces = hub.requests.filter((q) => q.origin === 'cdn' && q.range !== 'bytes=0-0');
      assert.ok(pieces.length >= 3, `several ranged piece reads, got ${pieces.length}`);
      assert.ok(pieces.every((q) => q.range?.startsWith('bytes=')));
      for (const q of hub.requests.filter((x) => x.origin === 'cdn'))
        assert.equal(q.authorization, undefined);
      for (const line of daemon.logs)
        assert.ok(!line.includes(token), `a log line carries the token: ${line}`);
    });

    test('dfget -r downloads the whole repository, nested files included, listed through the hub API', async () => {
      hub.requests.length = 0;
      const dir = join(out, 'repo');
      mkdirSync(dir);
      const r = await dfget(daemon, c.urlPrefix, dir, ['-r', ...flags()]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(filesUnder(dir), Object.keys(files).sort());
      for (const f of filesUnder(dir)) assert.equal(sha256(readFileSync(join(dir, f))), sha256(files[f]!), f);
      const listings = hub.requests.filter((q) => q.url === c.listingPath(c.defaultRevision));
      assert.equal(listings.length, 1);
      assert.equal(listings[0]!.authorization, `Bearer ${token}`);
    });

    test('a missing file is NOT_FOUND in one line', async () => {
      const url = `${c.urlPrefix}/no/such.bin`;
      const r = await dfget(daemon, url, join(out, 'missing'), flags());
      assert.equal(r.code, 1);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, r.stderr);
      assert.ok(lines[0]!.includes(`${url}: NOT_FOUND: no such file in the`), lines[0]);
      assert.match(lines[0]!, new RegExp(`at revision ${c.defaultRevision} \\(HTTP 404\\)`));
      assert.equal(existsSync(join(out, 'missing')), false);
    });

    test(`a wrong token is a permission error naming ${c.kind}, and no token reaches a log line`, async () => {
      const wrong = `wrong-${randomBytes(8).toString('hex')}`;
      // A file of a revision not fetched yet: a stored task is served without asking the hub (as upstream).
      for (const [url, args] of [
        [`${c.urlPrefix}/weights/deep/tokenizer.json`, [`--${c.flag}-revision`, 'v2']],
        [c.urlPrefix, ['-r']],
      ] as const) {
        const dir = join(out, `denied-${args.length}`);
        mkdirSync(dir, { recursive: true });
        const output = args[0] === '-r' ? dir : join(dir, 'f');
        const r = await dfget(daemon, url, output, [...args, ...flags(wrong)]);
        assert.equal(r.code, 1);
        assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
        assert.match(
          r.stderr,
          new RegExp(`permission denied by the ${c.kind} hub \\(HTTP 401\\): check --${c.flag}-token`),
        );
        for (const text of [r.stderr, r.stdout, ...daemon.logs]) {
          assert.ok(!text.includes(wrong) && !text.includes(token), `token in: ${text}`);
        }
      }
    });

    test('the revision is part of the task id: another revision is another task with its own bytes', async () => {
      const url = `${c.urlPrefix}/config.json`;
      const first = await dfget(daemon, url, join(out, 'config-default.json'), flags());
      assert.equal(first.code, 0, first.stderr);
      const second = await dfget(daemon, url, join(out, 'config-v2.json'), [
        `--${c.flag}-revision`,
        'v2',
        ...flags(),
      ]);
      assert.equal(second.code, 0, second.stderr);
      assert.deepEqual(readFileSync(join(out, 'config-default.json')), files['config.json']);
      assert.deepEqual(readFileSync(join(out, 'config-v2.json')), v2['config.json']);
      const id = (revision: string) =>
        taskIdFromUrl({ url, revision, filteredQueryParams: DEFAULT_FILTERED_QUERY_PARAMS });
      const tasks = readdirSync(join(daemon.storageDir, 'content', 'tasks'), { recursive: true }).map(String);
      for (const rev of [c.defaultRevision, 'v2']) {
        assert.ok(
          tasks.some((t) => t.endsWith(id(rev))),
          `task ${id(rev)} (revision ${rev}) stored`,
        );
      }
    });

    test('a bad revision or repository URL is one INVALID_ARGUMENT line', async () => {
      const bad = await dfget(daemon, `${c.urlPrefix}/config.json`, join(out, 'bad-rev'), [
        `--${c.flag}-revision`,
        'main?x=1',
        ...flags(),
      ]);
      assert.equal(bad.code, 1);
      assert.equal(bad.stderr.trim().split('\n').length, 1, bad.stderr);
      assert.match(bad.stderr, new RegExp(`invalid --${c.flag}-revision "main\\?x=1"`));
      const repo = await dfget(daemon, c.urlPrefix, join(out, 'not-a-file'), flags());
      assert.equal(repo.code, 1);
      assert.equal(repo.stderr.trim().split('\n').length, 1, repo.stderr);
      assert.match(repo.stderr, /repository, not a file: download it with -r/);
    });
  });
}

describe('hf:// P2P: a second peer takes a hub file from peers, not from the hub', () => {
  const token = `hub-token-${randomBytes(8).toString('hex')}`;
  const data = randomBytes(18 * MiB);
  const hub = new HubServer(
    'hf',
    [{ type: 'models', id: 'acme/llm', revisions: { main: { 'model.bin': data } } }],
    token,
  );
  let cluster: SeededCluster;
  const out = tempDir('dft-hf-p2p-');

  before(async () => {
    await hub.start();
    cluster = await startSeededCluster(2);
  });

  after(async () => {
    await cluster.stop();
    await hub.stop();
    rmSync(out, { recursive: true, force: true });
  });

  test('the seed fetches with the token the peer sent; the second peer reads nothing from the hub', async () => {
    const url = 'hf://acme/llm/model.bin';
    const flags = ['--hf-base-url', hub.baseUrl, '--hf-token', token];
    const pieceReads = () => hub.requests.filter((q) => q.origin === 'cdn' && q.range !== 'bytes=0-0').length;
    const { seed, peers } = cluster;
    const first = await dfget(peers[0]!, url, join(out, 'm0'), flags);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(sha256(readFileSync(join(out, 'm0'))), sha256(data));
    const reads = pieceReads();
    assert.equal(reads, 5, 'each of the 5 pieces read from the hub once');
    const second = await dfget(peers[1]!, url, join(out, 'm1'), flags);
    assert.equal(second.code, 0, second.stderr);
    assert.equal(sha256(readFileSync(join(out, 'm1'))), sha256(data));
    assert.equal(pieceReads(), reads, 'the second peer read nothing from the hub');
    for (const p of peers) {
      assert.equal(
        metricValue(await metricsText(p), 'dragonfly_client_download_traffic', 'type="BACK_TO_SOURCE"'),
        0,
      );
    }
    for (const d of [seed, ...peers]) {
      for (const line of d.logs) assert.ok(!line.includes(token), `a log line carries the token: ${line}`);
    }
  });
});
