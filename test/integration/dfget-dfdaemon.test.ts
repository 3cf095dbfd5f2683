// dfdaemon + dfget as processes against a Node origin with Range support.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Origin, contentSha256 } from '../helpers/origin.js';
import {
  dfget,
  DFGET,
  metricsText,
  metricValue,
  run,
  startDaemon,
  stopDaemon,
  tempDir,
  type DaemonHandle,
} from '../helpers/daemon.js';
import { runCommand, unprivilegedForOurBinaries } from '../helpers/exec.js';
import { sha256File } from '../helpers/files.js';

const MiB = 1024 * 1024;

describe('dfget through dfdaemon', () => {
  const origin = new Origin();
  let daemon: DaemonHandle;
  let out: string;

  before(async () => {
    await origin.start();
    daemon = await startDaemon();
    out = tempDir('dft-out-');
  });

  after(async () => {
    await stopDaemon(daemon);
    await origin.stop();
    rmSync(out, { recursive: true, force: true });
  });

  for (const size of [0, 1, 4 * MiB - 1, 4 * MiB, 4 * MiB + 1, 100 * MiB]) {
    test(`downloads ${size} bytes byte-exact`, async () => {
      const url = origin.add(`/size-${size}`, { size, seed: size + 7 });
      const file = join(out, `size-${size}`);
      const r = await dfget(daemon, url, file);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(await sha256File(file), contentSha256(size + 7, size));
    });
  }

  test('a second download is a cache hit: no request reaches the origin', async () => {
    const url = origin.add('/cached', { size: 9 * MiB, seed: 3 });
    assert.equal((await dfget(daemon, url, join(out, 'c1'))).code, 0);
    const before = origin.requests.length;
    const r = await dfget(daemon, url, join(out, 'c2'));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(origin.requests.length, before);
    assert.equal(await sha256File(join(out, 'c2')), contentSha256(3, 9 * MiB));
  });

  test('20 concurrent dfget of one URL fetch each piece from the origin once', async () => {
    const url = origin.add('/shared', { size: 40 * MiB + 123, seed: 11, delayMs: 50 });
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => dfget(daemon, url, join(out, `shared-${i}`))),
    );
    for (const r of results) assert.equal(r.code, 0, r.stderr);
    const ranges = origin.pieceRequests('/shared').map((r) => r.range);
    assert.equal(ranges.length, 11, `piece requests: ${ranges.join(', ')}`);
    assert.equal(new Set(ranges).size, 11);
    const want = contentSha256(11, 40 * MiB + 123);
    for (let i = 0; i < 20; i++) assert.equal(await sha256File(join(out, `shared-${i}`)), want);
  });

  test('transfer mode writes the pieces itself and verifies --digest', async () => {
    const size = 10 * MiB + 5;
    const url = origin.add('/transfer', { size, seed: 21 });
    const digest = `sha256:${contentSha256(21, size)}`;
    const file = join(out, 'transfer');
    const r = await dfget(daemon, url, file, ['--transfer-from-dfdaemon', '--digest', digest]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await sha256File(file), contentSha256(21, size));

    const bad = join(out, 'transfer-bad');
    const r2 = await dfget(daemon, url, bad, [
      '--transfer-from-dfdaemon',
      '--digest',
      `sha256:${'0'.repeat(64)}`,
    ]);
    assert.equal(r2.code, 1);
    assert.match(r2.stderr, /digest mismatch/);
    assert.equal(existsSync(bad), false, 'the output is removed on failure');
  });

  test('a wrong --digest fails in hard-link/copy mode too', async () => {
    const url = origin.add('/digest', { size: 5 * MiB, seed: 5 });
    const r = await dfget(daemon, url, join(out, 'digest'), ['--digest', `sha256:${'a'.repeat(64)}`]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^Error: .*digest mismatch/m);
    const ok = await dfget(daemon, url, join(out, 'digest-ok'), [
      '--digest',
      `sha256:${contentSha256(5, 5 * MiB)}`,
    ]);
    assert.equal(ok.code, 0, ok.stderr);
  });

  test('an origin 404 is one line with the origin status, saying "backend error" once (issue 17)', async () => {
    const r = await dfget(daemon, `${origin.url}/missing`, join(out, 'missing'));
    assert.equal(r.code, 1);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    // It used to read "backend error: origin answered 404: backend error: 404 Not Found for ...".
    assert.match(
      r.stderr,
      /^Error: backend error: origin answered 404 Not Found for http:\/\/127\.0\.0\.1:\d+\/missing\n$/,
    );
    assert.equal(existsSync(join(out, 'missing')), false);
  });

  test('an output directory that does not exist is named as missing, not as "not a directory" (issue 17)', async () => {
    const url = origin.add('/nodir', { size: 10, seed: 14 });
    const missing = join(out, 'no-such-dir');
    const r = await dfget(daemon, url, join(missing, 'file'));
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `Error: output directory ${missing} does not exist (create it first)\n`);
    // A file where the directory should be is still "not a directory".
    writeFileSync(join(out, 'a-file'), 'x');
    const r2 = await dfget(daemon, url, join(out, 'a-file', 'file'));
    assert.equal(r2.code, 1);
    assert.equal(r2.stderr, `Error: output path ${join(out, 'a-file')} is not a directory\n`);
    assert.equal(existsSync(missing), false, 'dfget does not create the directory');
  });

  test('a piece the origin keeps failing with 5xx costs 1 + backend.maxRetries requests, not their square', async () => {
    const url = origin.add('/piece-500', { size: MiB, seed: 13, pieceStatus: 503 });
    const r = await dfget(daemon, url, join(out, 'piece-500'));
    assert.equal(r.code, 1);
    assert.match(r.stderr, /503/);
    // backend.maxRetries defaults to 1.
    assert.equal(origin.pieceRequests('/piece-500').length, 2);
  });

  test('an existing output is refused without --overwrite and replaced with it', async () => {
    const url = origin.add('/exists', { size: 1000, seed: 8 });
    const file = join(out, 'exists');
    writeFileSync(file, 'old');
    const r = await dfget(daemon, url, file);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /already exists/);
    const r2 = await dfget(daemon, url, file, ['--overwrite']);
    assert.equal(r2.code, 0, r2.stderr);
    assert.equal(await sha256File(file), contentSha256(8, 1000));
  });

  test('metrics count traffic by type and /healthy answers', async () => {
    const text = await metricsText(daemon);
    assert.ok(metricValue(text, 'dragonfly_client_download_traffic', 'type="BACK_TO_SOURCE"') > 100 * MiB);
    assert.ok(metricValue(text, 'dragonfly_client_download_traffic', 'type="LOCAL_PEER"') > 0);
    assert.ok(metricValue(text, 'dragonfly_client_download_task_total') > 10);
    assert.ok(metricValue(text, 'dragonfly_client_backend_request_total', 'method="GET"') > 0);
    const h = await fetch(`http://127.0.0.1:${daemon.healthPort}/healthy`);
    assert.equal(h.status, 200);
  });
});

describe('dfget without dfdaemon', () => {
  test('says dfdaemon is not running, in one line, exit 1', async () => {
    const dir = tempDir();
    const r = await run([DFGET, 'http://127.0.0.1:1/x', '-O', join(dir, 'x'), '-e', join(dir, 'none.sock')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /Connect Dfdaemon Failed!/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
    rmSync(dir, { recursive: true, force: true });
  });

  // Issue 17: without -e and without a daemon, a user who is not root was told of /var/run/dragonfly/dfdaemon.sock,
  // where their own dfdaemon could never listen; it is ~/.dragonfly/dfdaemon.sock for them.
  test(
    'a user without root is pointed at ~/.dragonfly/dfdaemon.sock, the socket their dfdaemon would use',
    {
      skip: existsSync('/var/run/dragonfly/dfdaemon.sock')
        ? 'a system dfdaemon socket exists here'
        : undefined,
    },
    async () => {
      const home = tempDir('dft-home-');
      chmodSync(home, 0o777);
      const user = unprivilegedForOurBinaries();
      const r = await runCommand(process.execPath, [DFGET, 'http://127.0.0.1:1/x', '-O', join(home, 'x')], {
        env: { ...process.env, HOME: home },
        ...user,
      });
      rmSync(home, { recursive: true, force: true });
      assert.equal(r.code, 1, r.stderr);
      assert.match(
        r.stderr,
        new RegExp(
          `^Error: Connect Dfdaemon Failed! ${home}/\\.dragonfly/dfdaemon\\.sock: socket does not exist\\. Is dfdaemon running\\?`,
        ),
      );
    },
  );
});

describe('dfdaemon killed with -9 mid-download', () => {
  test('a restart keeps finished pieces and fetches only the missing ones', async () => {
    const origin = new Origin();
    await origin.start();
    const dir = tempDir();
    const out = tempDir('dft-out-');
    const size = 100 * MiB;
    const url = origin.add('/big', { size, seed: 99, delayMs: 150 });
    let daemon = await startDaemon({ dir });
    try {
      const first = dfget(daemon, url, join(out, 'big'));
      // Wait until some pieces were served, then kill the daemon without warning.
      while (origin.pieceRequests('/big').length < 10) await new Promise((r) => setTimeout(r, 20));
      await new Promise((r) => setTimeout(r, 300));
      await stopDaemon(daemon, { keepDir: true, signal: 'SIGKILL' });
      assert.notEqual((await first).code, 0);

      const db = new Database(join(dir, 'storage', 'metadata', 'dfdaemon.db'), { readonly: true });
      const kept = db.prepare('SELECT offset FROM pieces').all() as { offset: number }[];
      db.close();
      assert.ok(kept.length > 0 && kept.length < 25, `kept ${kept.length} pieces`);

      daemon = await startDaemon({ dir });
      const servedBefore = origin.pieceRequests('/big').length;
      const r = await dfget(daemon, url, join(out, 'big2'));
      assert.equal(r.code, 0, r.stderr);
      const again = origin.pieceRequests('/big').slice(servedBefore);
      assert.equal(again.length, 25 - kept.length);
      const keptStarts = new Set(kept.map((k) => `bytes=${k.offset}-`));
      for (const req of again) {
        assert.ok(
          ![...keptStarts].some((s) => req.range!.startsWith(s)),
          `refetched a kept piece: ${req.range}`,
        );
      }
      assert.equal(await sha256File(join(out, 'big2')), contentSha256(99, size));
    } finally {
      await stopDaemon(daemon);
      await origin.stop();
      rmSync(out, { recursive: true, force: true });
    }
  });
});
