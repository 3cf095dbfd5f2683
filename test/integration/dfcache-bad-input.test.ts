// dfcache's bad input (issue 14), each a clear one-line error: from dfcache's own checks (as upstream's
// validate_args) and from dfdaemon's, which a client skipping those checks meets (a raw gRPC call). Also: an
// unreadable file (a root dfdaemon, dfcache run as nobody), a disk too small for an import (nothing already stored
// is lost), and ids that do not exist.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Metadata, type ServiceError } from '@grpc/grpc-js';
import { downloadClient, unary } from '../../src/cli/daemon-client.js';
import type { PersistentCacheTask } from '../../src/gen/common.js';
import type { UploadPersistentCacheTaskRequest } from '../../src/gen/dfdaemon.js';
import { DIST, run, startDaemon, stopDaemon, tempDir, type DaemonHandle } from '../helpers/daemon.js';
import { sha256File } from '../helpers/files.js';
import { unprivilegedForOurBinaries } from '../helpers/exec.js';
import { mountTmpfs, unmountTmpfs } from '../helpers/tmpfs.js';

const DFCACHE = join(DIST, 'src/cli/dfcache.js');
const MiB = 1024 * 1024;
const HOUR = { seconds: 3600, nanos: 0 };

describe('dfcache bad input', () => {
  let daemon: DaemonHandle;
  let work: string;
  let file: string;
  const dfcache = (...args: string[]) => run([DFCACHE, ...args, '-e', daemon.socket]);

  /** UploadPersistentCacheTask straight to dfdaemon (no dfcache checks); resolves with the gRPC error. */
  async function rawImport(over: Partial<UploadPersistentCacheTaskRequest>): Promise<ServiceError> {
    const client = downloadClient(daemon.socket);
    try {
      await unary<PersistentCacheTask>((cb) =>
        client.uploadPersistentCacheTask(
          { path: file, persistentReplicaCount: 1, ttl: HOUR, ...over },
          new Metadata(),
          cb,
        ),
      );
    } catch (e) {
      return e as ServiceError;
    } finally {
      client.close();
    }
    assert.fail('the import was accepted');
  }

  before(async () => {
    daemon = await startDaemon();
    work = tempDir('dfcache-bad-');
    file = join(work, 'data.bin');
    writeFileSync(file, 'some bytes');
  });
  after(async () => {
    await stopDaemon(daemon);
    rmSync(work, { recursive: true, force: true });
  });

  const cases: Array<[string, () => string[], RegExp]> = [
    ['a missing file', () => ['import', join(work, 'missing')], /^Error: path .*missing does not exist\n$/],
    ['a directory', () => ['import', work], /^Error: path .* is a directory\n$/],
    [
      'a TTL under 5 minutes',
      () => ['import', file, '--ttl', '4m'],
      /^Error: ttl must be between 5 minutes and 7 days, but got 4m\n$/,
    ],
    [
      'a TTL over 7 days',
      () => ['import', file, '--ttl', '8d'],
      /^Error: ttl must be between 5 minutes and 7 days, but got 8d\n$/,
    ],
    [
      'a replica count of 0',
      () => ['import', file, '--persistent-replica-count', '0'],
      /^Error: persistent replica count must be at least 1, but got 0\n$/,
    ],
    [
      'an absurd replica count',
      () => ['import', file, '--persistent-replica-count', '100000'],
      /^Error: persistent replica count must be at most 1000, but got 100000\n$/,
    ],
    [
      'a replica count that is no number',
      () => ['import', file, '--persistent-replica-count', 'two'],
      /^Error: persistent replica count must be a whole number, but got "two"\n$/,
    ],
    [
      'a piece length under 4 MiB',
      () => ['import', file, '--piece-length', '1MiB'],
      /^Error: piece length 1048576 bytes is less than the minimum piece length 4194304 bytes\n$/,
    ],
    [
      'export of an id that does not exist',
      () => ['export', 'e'.repeat(64), '-O', join(work, 'out')],
      /^Error: persistent cache task e{64} not found\n$/,
    ],
    [
      'stat of an id that does not exist',
      () => ['stat', 'e'.repeat(64)],
      /^Error: persistent cache task e{64} not found\n$/,
    ],
    [
      'rm of an id that does not exist',
      () => ['rm', 'e'.repeat(64)],
      /^Error: persistent cache task e{64} not found\n$/,
    ],
    [
      'export of an id that is no task id',
      () => ['export', 'not-an-id', '-O', join(work, 'out')],
      /^Error: persistent cache task id "not-an-id" is not 64 hex characters\n$/,
    ],
  ];
  for (const [name, args, message] of cases) {
    test(`dfcache: ${name}`, async () => {
      const a = args();
      const r = await dfcache(...a, ...(a[0] === 'import' || a[0] === 'export' ? ['--no-progress'] : []));
      assert.equal(r.code, 1, r.stdout);
      assert.match(r.stderr.replace(/^Warning: .*\n/, ''), message);
    });
  }

  test('dfcache: a FIFO', async () => {
    const fifo = join(work, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const r = await dfcache('import', fifo, '--no-progress');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^Error: path .*fifo is not a regular file\n$/);
  });

  test('dfdaemon checks the same without dfcache: TTL, replicas, piece length, path', async () => {
    const fifo = join(work, 'fifo2');
    execFileSync('mkfifo', [fifo]);
    const expect = async (over: Partial<UploadPersistentCacheTaskRequest>, message: RegExp) => {
      const e = await rawImport(over);
      assert.equal(e.code, 3, `${e.code} ${e.details}`);
      assert.match(e.details, message);
    };
    await expect(
      { ttl: { seconds: 60, nanos: 0 } },
      /^ttl must be between 5 minutes and 7 days, but got 1m$/,
    );
    await expect({ persistentReplicaCount: 0 }, /^persistent replica count must be at least 1, but got 0$/);
    await expect({ pieceLength: 1024 }, /^piece length 1024 bytes is less than the minimum piece length/);
    await expect({ path: 'relative/file' }, /^path relative\/file must be absolute$/);
    await expect({ path: join(work, 'missing') }, /does not exist$/);
    await expect({ path: work }, /is a directory$/);
    await expect({ path: fifo }, /is a FIFO; only regular files can be imported$/);
  });

  test('a file edited after a hard-linked import: the export fails naming it, never with other bytes', async () => {
    const src = join(work, 'edited.bin');
    writeFileSync(src, 'the imported bytes');
    const r = await dfcache('import', src, '--no-progress', '--persistent-replica-count', '1');
    assert.equal(r.code, 0, r.stderr);
    const id = r.stdout.trim();
    writeFileSync(src, 'other bytes, same file');
    const out = join(work, 'edited.out');
    const e = await dfcache('export', id, '-O', out, '--no-progress');
    assert.equal(e.code, 1);
    assert.equal(
      e.stderr,
      `Error: persistent cache task ${id} is not served: its imported file was modified after the import\n`,
    );
    assert.equal(existsSync(out), false, 'no output is left');
  });

  test('an unreadable file: dfdaemon (root) refuses to import it for a user who cannot read it', async (t) => {
    const nobody = process.getuid?.() === 0 ? unprivilegedForOurBinaries() : undefined;
    if (!nobody) return t.skip('needs root: a root dfdaemon and an unprivileged dfcache');
    // The daemon's dir (and socket) must be reachable by nobody; the secret is root's alone.
    chmodSync(daemon.dir, 0o755);
    const secretDir = join(work, 'secret-dir');
    mkdirSync(secretDir, { mode: 0o755 });
    chmodSync(work, 0o755);
    const secret = join(secretDir, 'secret');
    writeFileSync(secret, 'root only', { mode: 0o600 });
    const r = spawnSync(
      'setpriv',
      [
        `--reuid=${nobody.uid}`,
        `--regid=${nobody.gid}`,
        '--clear-groups',
        '--',
        process.execPath,
        DFCACHE,
        'import',
        secret,
        '--no-progress',
        '-e',
        daemon.socket,
      ],
      { encoding: 'utf8' },
    );
    assert.equal(r.status, 1, r.stderr);
    assert.match(
      r.stderr.replace(/^Warning: .*\n/, ''),
      /^Error: path .*secret cannot be read: permission denied: uid 65534 .* may not read it \(owner 0, group 0, mode 0600\)\n$/,
    );
  });
});

const mounted = mountTmpfs(24, 'dft-dfcache-disk-');
describe(
  'dfcache: a disk too small for an import',
  { skip: typeof mounted === 'string' ? false : mounted.skip },
  () => {
    const mnt = mounted as string;
    let daemon: DaemonHandle;
    let work: string;
    before(async () => {
      const dir = join(mnt, 'daemon');
      mkdirSync(dir);
      daemon = await startDaemon({ dir });
      work = tempDir('dfcache-disk-');
    });
    after(async () => {
      await stopDaemon(daemon);
      unmountTmpfs(mnt);
      rmSync(work, { recursive: true, force: true });
    });

    test('fails with one line naming the cause; the task already stored still exports', async () => {
      const dfcache = (...args: string[]) => run([DFCACHE, ...args, '-e', daemon.socket, '--no-progress']);
      const small = join(work, 'small');
      writeFileSync(small, Buffer.alloc(2 * MiB, 3));
      const first = await dfcache('import', small, '--persistent-replica-count', '1');
      assert.equal(first.code, 0, first.stderr);
      const id = first.stdout.trim();
      // The source is on another filesystem: no hard link, so the import copies it, and 30 MiB do not fit.
      const big = join(work, 'big');
      writeFileSync(big, Buffer.alloc(30 * MiB, 4));
      const r = await dfcache('import', big);
      assert.equal(r.code, 1);
      assert.match(
        r.stderr.replace(/^Warning: .*\n/, ''),
        /^Error: .*(no space|not enough (disk )?space).*\n$/i,
      );
      const out = join(work, 'out');
      const e = await dfcache('export', id, '-O', out);
      assert.equal(e.code, 0, e.stderr);
      assert.equal(await sha256File(out), await sha256File(small));
    });
  },
);
