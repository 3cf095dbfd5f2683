// dfcache across the two clients (issue 13: "their dfcache against our dfdaemon, and the reverse"), beside the
// upstream Rust client (dragonfly-client 1.5.10), every case reading the bytes back:
//   - the Rust `dfcache import` into our dfdaemon, then `export` with the Rust dfcache and ours (hard link/copy and
//     --transfer-from-dfdaemon) and `stat` with both;
//   - our `dfcache import` into the Rust dfdaemon, then the same exports and stats there;
//   - a mixed persistent-cache swarm: imported on one client's dfdaemon, exported on the other's (P2P);
//   - the same file, tag, application and piece length (or --content-for-calculating-task-id) give the same task
//     id on both clients, and the id our core computes;
//   - bad input (missing file, a directory, TTL out of range, an unknown id) fails alike on both dfcaches.
// Both dfdaemons share one scheduler: the one embedded in ours.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { persistentCacheTaskId } from '../../../src/core/task-id.js';
import { DIST, run, startDaemon, stopDaemon, tempDir, type DaemonHandle } from '../../helpers/daemon.js';
import { sha256File } from '../../helpers/files.js';
import { missingUpstream, type UpstreamProgram } from '../../helpers/upstream/programs.js';
import {
  RustDaemon,
  rustDfcache,
  rustDfcacheImport,
  withoutAnsi,
} from '../../helpers/upstream/rust-client.js';

const DFCACHE = join(DIST, 'src/cli/dfcache.js');
const MiB = 1024 * 1024;
const NEEDS: UpstreamProgram[] = ['dfdaemon', 'dfcache'];

function requirePrograms(): void {
  const missing = missingUpstream(NEEDS);
  if (missing.length > 0) assert.fail(`upstream programs missing: ${missing.join('; ')}`);
}

const ourDfcache = (args: string[]) => run([DFCACHE, ...args]);

type Dfcache = { who: string; run: (args: string[]) => ReturnType<typeof run> };
const DFCACHES: Dfcache[] = [
  { who: 'the Rust dfcache', run: rustDfcache },
  { who: 'our dfcache', run: ourDfcache },
];

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('dfcache across the two clients', { timeout: 300_000 }, () => {
  const skipStart = missingUpstream(NEEDS).length > 0;
  const work = tempDir('dft-interop-dfcache-');
  let ours: DaemonHandle | undefined;
  let rust: RustDaemon | undefined;
  /** Both daemons, by whose they are. */
  const daemons = () => [
    { whose: 'our dfdaemon', socket: ours!.socket },
    { whose: 'the Rust dfdaemon', socket: rust!.socket },
  ];

  before(async () => {
    if (skipStart) return;
    ours = await startDaemon();
    rust = new RustDaemon({ schedulerAddr: `127.0.0.1:${ours.schedulerPort}` });
    await rust.start();
  });

  after(async () => {
    if (ours) await stopDaemon(ours);
    await rust?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  /** A file of `size` random bytes under the work dir. */
  function file(name: string, size: number): { path: string; bytes: Buffer } {
    const bytes = randomBytes(size);
    const path = join(work, name);
    writeFileSync(path, bytes);
    return { path, bytes };
  }

  /** Every export of `id` from `socket`, by both dfcaches, both ways: each output holds `want`. */
  async function exportAll(id: string, socket: string, want: string, label: string): Promise<void> {
    for (const d of DFCACHES) {
      for (const extra of [[], ['--transfer-from-dfdaemon']]) {
        const out = join(work, `${label}-${d.who.replace(/ /g, '-')}${extra.length ? '-transfer' : ''}.out`);
        const r = await d.run(['export', id, '-O', out, '-e', socket, '--no-progress', ...extra]);
        assert.equal(r.code, 0, `${d.who} export ${extra.join(' ')}: ${withoutAnsi(r.stderr + r.stdout)}`);
        assert.equal(await sha256File(out), want, `${d.who} export ${extra.join(' ')}`);
      }
    }
  }

  /** `stat` of `id` by both dfcaches: each names the id, Succeeded and the size. */
  async function statBoth(id: string, socket: string, size: number): Promise<void> {
    const mine = await ourDfcache(['stat', id, '-e', socket]);
    assert.equal(mine.code, 0, mine.stderr);
    assert.match(mine.stdout, new RegExp(`^ID: +${id}$`, 'm'));
    assert.match(mine.stdout, /^State: +Succeeded$/m);
    assert.match(mine.stdout, new RegExp(`\\(${size} bytes\\)`));
    const theirs = await rustDfcache(['stat', id, '-e', socket]);
    assert.equal(theirs.code, 0, withoutAnsi(theirs.stderr + theirs.stdout));
    // The Rust dfcache prints a table: ID, state, content length (human), piece length, replicas, TTL, times.
    assert.match(withoutAnsi(theirs.stdout), new RegExp(`${id}\\s+Succeeded\\s`));
  }

  test('the Rust dfcache imports into our dfdaemon; both dfcaches stat and export it byte-exact', async () => {
    requirePrograms();
    const { path, bytes } = file('rust-into-ours.bin', 9 * MiB + 7);
    // Without a terminal the Rust dfcache prints no id: it is the one both clients compute from the content.
    const id = persistentCacheTaskId({ fileContent: bytes });
    const r = await rustDfcache([
      'import',
      path,
      '-e',
      ours!.socket,
      '--no-progress',
      '--persistent-replica-count',
      '1',
    ]);
    assert.equal(r.code, 0, withoutAnsi(r.stderr + r.stdout));
    await statBoth(id, ours!.socket, bytes.length);
    await exportAll(id, ours!.socket, sha256(bytes), 'rust-into-ours');
  });

  test('our dfcache imports into the Rust dfdaemon; both dfcaches stat and export it byte-exact', async () => {
    requirePrograms();
    const { path, bytes } = file('ours-into-rust.bin', 7 * MiB + 3);
    const r = await ourDfcache([
      'import',
      path,
      '-e',
      rust!.socket,
      '--no-progress',
      '--persistent-replica-count',
      '1',
    ]);
    assert.equal(r.code, 0, r.stderr);
    // Our dfcache prints the id the Rust dfdaemon answered: the one our core computes.
    const id = r.stdout.trim();
    assert.equal(id, persistentCacheTaskId({ fileContent: bytes }));
    await statBoth(id, rust!.socket, bytes.length);
    await exportAll(id, rust!.socket, sha256(bytes), 'ours-into-rust');
  });

  // P2P over DfdaemonUpload.SyncPersistentCachePieces and the Vortex persistent-cache frames (tags 4/5): the
  // exporting daemon holds nothing, the importer is the only holder (one replica), so every byte crosses clients.
  // Found here: the Rust importer serves hard-linked pieces without a digest, which ours refused
  // (src/storage/persistent-cache-store.ts); and the Rust exporter waited forever for our scheduler to reset the
  // AnnouncePersistentCachePeer stream (src/scheduler/embedded/reset-after-trailers.ts).
  const swarm = [
    {
      what: 'imported on the Rust dfdaemon, exported on ours: every piece from the Rust peer',
      importInto: () => rust!.socket,
      importWith: rustDfcache,
      exportFrom: () => ours!.socket,
    },
    {
      what: 'imported on our dfdaemon, exported on the Rust one: every piece from ours',
      importInto: () => ours!.socket,
      importWith: ourDfcache,
      exportFrom: () => rust!.socket,
    },
  ];
  for (const [i, c] of swarm.entries()) {
    for (const d of DFCACHES) {
      test(`a persistent cache task ${c.what} (${d.who} exports)`, async () => {
        requirePrograms();
        const { path, bytes } = file(`swarm-${i}-${d.who.replace(/ /g, '-')}.bin`, 10 * MiB + 11 + i);
        const id = persistentCacheTaskId({ fileContent: bytes });
        const r = await c.importWith([
          'import',
          path,
          '-e',
          c.importInto(),
          '--no-progress',
          '--persistent-replica-count',
          '1',
        ]);
        assert.equal(r.code, 0, withoutAnsi(r.stderr + r.stdout));
        const out = `${path}.out`;
        const x = await d.run(['export', id, '-O', out, '-e', c.exportFrom(), '--no-progress']);
        assert.equal(x.code, 0, `exit ${x.code}: ${withoutAnsi(x.stderr + x.stdout)}\n${rust!.logTail()}`);
        assert.equal(await sha256File(out), sha256(bytes));
      });
    }
  }

  for (const d of DFCACHES) {
    test(`bad input: ${d.who} against either dfdaemon fails with exit code 1 naming the cause`, async () => {
      requirePrograms();
      const dir = join(work, 'bad-input');
      mkdirSync(dir, { recursive: true });
      const ok = join(dir, 'ok.bin');
      writeFileSync(ok, 'x');
      const unknown = '0'.repeat(64);
      // The Rust dfcache reports a TTL in seconds, ours as given; both say the range.
      const cases: Array<[string, string[], RegExp]> = [
        ['a missing file', ['import', join(dir, 'missing')], /path \S*missing does not exist/],
        ['a directory', ['import', dir], /path \S*bad-input is a directory/],
        ['a TTL under 5 minutes', ['import', ok, '--ttl', '4m'], /ttl must be between 5 minutes and 7 days/],
        ['a TTL over 7 days', ['import', ok, '--ttl', '8d'], /ttl must be between 5 minutes and 7 days/],
        [
          'stat of an unknown id',
          ['stat', unknown],
          new RegExp(`persistent cache task ${unknown} not found`),
        ],
        [
          'export of an unknown id',
          ['export', unknown, '-O', join(dir, 'never'), '--no-progress'],
          new RegExp(`persistent cache task ${unknown} not found`),
        ],
      ];
      for (const { whose, socket } of daemons()) {
        for (const [what, args, said] of cases) {
          const r = await d.run([...args, '-e', socket]);
          const text = withoutAnsi(r.stderr + r.stdout);
          assert.equal(r.code, 1, `${what} on ${whose}: exit ${r.code}: ${text}`);
          assert.match(text, said, `${what} on ${whose}`);
        }
      }
    });
  }
});

describe('the same persistent cache task id on both clients', { timeout: 300_000 }, () => {
  const skipStart = missingUpstream(NEEDS).length > 0;
  const work = tempDir('dft-interop-dfcache-id-');
  let ours: DaemonHandle | undefined;
  let rust: RustDaemon | undefined;
  let stopOther: (() => Promise<void>) | undefined;

  before(async () => {
    if (skipStart) return;
    // Each daemon under its own scheduler: in one, the second import of an id would be "already exists".
    ours = await startDaemon();
    const other = await startDaemon({ dir: tempDir('dft-interop-dfcache-sched-') });
    rust = new RustDaemon({ schedulerAddr: `127.0.0.1:${other.schedulerPort}` });
    stopOther = () => stopDaemon(other);
    await rust.start();
  });

  after(async () => {
    if (ours) await stopDaemon(ours);
    await rust?.stop();
    await stopOther?.();
    rmSync(work, { recursive: true, force: true });
  });

  const variants: Array<[string, string[], (bytes: Buffer) => string]> = [
    [
      'tag, application and piece length',
      ['--tag', 'tag1', '--application', 'app1', '--piece-length', '4mib'],
      (b) =>
        persistentCacheTaskId({ fileContent: b, tag: 'tag1', application: 'app1', pieceLength: 4 * MiB }),
    ],
    ['no tag, application or piece length', [], (b) => persistentCacheTaskId({ fileContent: b })],
    [
      '--content-for-calculating-task-id',
      ['--content-for-calculating-task-id', 'model-v1/weights.bin', '--tag', 'tag1'],
      () => persistentCacheTaskId({ content: 'model-v1/weights.bin' }),
    ],
  ];

  for (const [i, [what, flags, expected]] of variants.entries()) {
    test(`the same file with ${what}: the same id from both dfcache/dfdaemon pairs`, async () => {
      requirePrograms();
      const path = join(work, `same-${i}.bin`);
      const bytes = randomBytes(5 * MiB + i);
      writeFileSync(path, bytes);
      const base = ['--persistent-replica-count', '1'];
      const theirs = await rustDfcacheImport([path, '-e', rust!.socket, ...base, ...flags]);
      assert.equal(theirs.code, 0, theirs.stdout);
      const mine = await ourDfcache(['import', path, '-e', ours!.socket, '--no-progress', ...base, ...flags]);
      assert.equal(mine.code, 0, mine.stderr);
      assert.equal(mine.stdout.trim(), theirs.taskId, `Rust printed: ${theirs.stdout}`);
      assert.equal(theirs.taskId, expected(bytes));
      // And each daemon hands the bytes back under that id.
      const out = join(work, `same-${i}.out`);
      const r = await rustDfcache(['export', theirs.taskId!, '-O', out, '-e', rust!.socket, '--no-progress']);
      assert.equal(r.code, 0, withoutAnsi(r.stderr));
      assert.deepEqual(readFileSync(out), bytes);
    });
  }
});
