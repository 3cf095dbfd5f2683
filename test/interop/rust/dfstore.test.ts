// dfstore across the two clients (issue 15: their dfstore against our dfdaemon, ours against theirs), beside the
// upstream Rust client (dragonfly-client 1.5.10), with a real S3 server (s3rver) as the object store. Every case
// reads the bytes back:
//   - the Rust `dfstore import` into our dfdaemon writes the object; both dfstores export it from our dfdaemon
//     (hard link/copy and --transfer-from-dfdaemon);
//   - our `dfstore import` into the Rust dfdaemon writes the object, with the task id our core computes; both
//     dfstores export it from the Rust dfdaemon;
//   - a task imported on one client's dfdaemon is exported on the other's (P2P through the shared scheduler);
//   - an object no peer holds is exported by each dfdaemon from the store;
//   - bad input (a missing region, a missing object) fails on both.
// Both dfdaemons share one scheduler: the one embedded in ours.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { persistentTaskId } from '../../../src/core/task-id.js';
import { DIST, run, startDaemon, stopDaemon, tempDir, type DaemonHandle } from '../../helpers/daemon.js';
import { sha256File } from '../../helpers/files.js';
import { S3rverStore } from '../../helpers/s3rver.js';
import { missingUpstream, type UpstreamProgram } from '../../helpers/upstream/programs.js';
import { RustDaemon, rustDfstore, withoutAnsi } from '../../helpers/upstream/rust-client.js';

const DFSTORE = join(DIST, 'src/cli/dfstore.js');
const MiB = 1024 * 1024;
const NEEDS: UpstreamProgram[] = ['dfdaemon', 'dfstore'];
const BUCKET = 'interop';

function requirePrograms(): void {
  const missing = missingUpstream(NEEDS);
  if (missing.length > 0) assert.fail(`upstream programs missing: ${missing.join('; ')}`);
}

type Dfstore = { who: string; run: (args: string[]) => ReturnType<typeof run> };
const DFSTORES: Dfstore[] = [
  { who: 'the Rust dfstore', run: rustDfstore },
  { who: 'our dfstore', run: (args) => run([DFSTORE, ...args]) },
];

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('dfstore across the two clients', { timeout: 300_000 }, () => {
  const skipStart = missingUpstream(NEEDS).length > 0;
  const store = new S3rverStore(BUCKET);
  const work = tempDir('dft-interop-dfstore-');
  let ours: DaemonHandle | undefined;
  let rust: RustDaemon | undefined;
  const flags = () => store.flags();

  before(async () => {
    if (skipStart) return;
    await store.start();
    ours = await startDaemon();
    rust = new RustDaemon({ schedulerAddr: `127.0.0.1:${ours.schedulerPort}` });
    await rust.start();
  });

  after(async () => {
    if (ours) await stopDaemon(ours);
    await rust?.stop();
    await store.stop();
    rmSync(work, { recursive: true, force: true });
  });

  function file(name: string, size: number): { path: string; bytes: Buffer } {
    const bytes = randomBytes(size);
    const path = join(work, name);
    writeFileSync(path, bytes);
    return { path, bytes };
  }

  /** Every export of `url` from `socket`, by both dfstores, both ways: each output holds `want`. */
  async function exportAll(url: string, socket: string, want: string, label: string): Promise<void> {
    for (const d of DFSTORES) {
      for (const extra of [[], ['--transfer-from-dfdaemon']]) {
        const out = join(work, `${label}-${d.who.replace(/ /g, '-')}${extra.length ? '-transfer' : ''}.out`);
        const r = await d.run([
          'export',
          url,
          '-O',
          out,
          '-e',
          socket,
          '--no-progress',
          ...flags(),
          ...extra,
        ]);
        assert.equal(r.code, 0, `${d.who} export ${extra.join(' ')}: ${withoutAnsi(r.stderr + r.stdout)}`);
        assert.equal(await sha256File(out), want, `${d.who} export ${extra.join(' ')}`);
      }
    }
  }

  test('the Rust dfstore imports into our dfdaemon; both dfstores export it byte-exact', async () => {
    requirePrograms();
    const { path, bytes } = file('rust-into-ours.bin', 9 * MiB + 7);
    const url = `s3://${BUCKET}/rust-into-ours.bin`;
    const r = await rustDfstore([
      'import',
      path,
      '--url',
      url,
      '-e',
      ours!.socket,
      '--no-progress',
      ...flags(),
    ]);
    assert.equal(r.code, 0, withoutAnsi(r.stderr + r.stdout));
    assert.deepEqual(Buffer.from(await store.operator().read('rust-into-ours.bin')), bytes);
    await exportAll(url, ours!.socket, sha256(bytes), 'rust-into-ours');
  });

  test('our dfstore imports into the Rust dfdaemon; both dfstores export it byte-exact', async () => {
    requirePrograms();
    const { path, bytes } = file('ours-into-rust.bin', 7 * MiB + 3);
    const url = `s3://${BUCKET}/ours-into-rust.bin`;
    const r = await run([
      DFSTORE,
      'import',
      path,
      '--url',
      url,
      '-e',
      rust!.socket,
      '--no-progress',
      ...flags(),
    ]);
    assert.equal(r.code, 0, r.stderr);
    // The id the Rust dfdaemon answered is the one our core computes.
    assert.equal(r.stdout.trim(), persistentTaskId({ url, region: 'us-east-1', endpoint: store.endpoint }));
    assert.deepEqual(Buffer.from(await store.operator().read('ours-into-rust.bin')), bytes);
    await exportAll(url, rust!.socket, sha256(bytes), 'ours-into-rust');
  });

  test("imported on one client's dfdaemon, exported on the other's from the peer", async () => {
    requirePrograms();
    for (const [from, to, name] of [
      [ours!.socket, rust!.socket, 'p2p-ours-to-rust.bin'],
      [rust!.socket, ours!.socket, 'p2p-rust-to-ours.bin'],
    ] as const) {
      const { path, bytes } = file(name, 6 * MiB + 11);
      const url = `s3://${BUCKET}/${name}`;
      const i = await run([DFSTORE, 'import', path, '--url', url, '-e', from, '--no-progress', ...flags()]);
      assert.equal(i.code, 0, i.stderr);
      const before = store.requests.filter((q) => store.isPieceRead(q, name)).length;
      const out = join(work, `${name}.out`);
      const e = await run([DFSTORE, 'export', url, '-O', out, '-e', to, '--no-progress', ...flags()]);
      assert.equal(e.code, 0, e.stderr);
      assert.equal(await sha256File(out), sha256(bytes));
      assert.equal(store.requests.filter((q) => store.isPieceRead(q, name)).length, before, 'from the peer');
    }
  });

  test('an object no peer holds: each dfdaemon exports it from the store', async () => {
    requirePrograms();
    const bytes = randomBytes(3 * MiB + 5);
    await store.put('direct.bin', bytes);
    for (const [socket, label] of [
      [ours!.socket, 'ours'],
      [rust!.socket, 'rust'],
    ] as const) {
      const out = join(work, `direct-${label}.out`);
      const r = await rustDfstore([
        'export',
        `s3://${BUCKET}/direct.bin`,
        '-O',
        out,
        '-e',
        socket,
        '--no-progress',
        ...flags(),
      ]);
      assert.equal(r.code, 0, `${label}: ${withoutAnsi(r.stderr + r.stdout)}`);
      assert.equal(await sha256File(out), sha256(bytes));
    }
  });

  test('bad input fails on both dfstores: a missing region, a missing object', async () => {
    requirePrograms();
    const noRegion = flags().filter((f, i, a) => f !== '--storage-region' && a[i - 1] !== '--storage-region');
    for (const d of DFSTORES) {
      const r = await d.run([
        'export',
        `s3://${BUCKET}/direct.bin`,
        '-O',
        join(work, 'x.out'),
        '-e',
        ours!.socket,
        '--no-progress',
        ...noRegion,
      ]);
      assert.equal(r.code, 1, d.who);
      assert.match(withoutAnsi(r.stderr + r.stdout), /missing object storage region/, d.who);
      const m = await d.run([
        'export',
        `s3://${BUCKET}/no-such.bin`,
        '-O',
        join(work, 'y.out'),
        '-e',
        ours!.socket,
        '--no-progress',
        ...flags(),
      ]);
      assert.equal(m.code, 1, d.who);
      assert.match(withoutAnsi(m.stderr + m.stdout), /NOT_FOUND|NotFound|not found/i, d.who);
    }
  });
});
