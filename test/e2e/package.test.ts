// The package as users get it: `npm pack` of this checkout (as built: the pack runs no scripts), the tarball
// installed into an empty prefix without dev dependencies (`npm install --omit=dev`, dependencies fetched from the
// npm registry into a private cache, better-sqlite3 compiled by its install script), then every binary's
// --version and one real download: dfget from that install, through a dfdaemon from that install, of a file from
// a Node origin on a free port. Catches a run-time import that is only a devDependency, a file left out of
// "files", a bin without its shebang. Slow (the native build), so it is an e2e test. Everything lives under one
// temp dir, removed at the end; the daemon is ended by PID.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { runCommand } from '../helpers/exec.js';
import { startDaemon, stopDaemon, type DaemonHandle, type RunResult } from '../helpers/daemon.js';
import { sha256File } from '../helpers/files.js';
import { REPO_ROOT } from '../helpers/module-imports.js';
import { contentSha256, Origin } from '../helpers/origin.js';

interface PackageJson {
  name: string;
  version: string;
  bin: Record<string, string>;
}
const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as PackageJson;

/** Packages of ours whose install script must run: better-sqlite3 compiles its addon (see docs/testing.md). */
const ALLOW_SCRIPTS = { 'better-sqlite3': true };

const root = mkdtempSync(join(tmpdir(), 'dft-package-'));
const prefix = join(root, 'prefix');
const bin = (name: string) => join(prefix, 'node_modules', '.bin', name);

/**
 * Our environment without npm's `npm_*` variables (set when the tests run under `npm run`; they would carry the
 * outer project's config into the inner npm), with this node first on PATH for the bins' `env node`. The user's
 * npm config stays: it says where the registry is and where Node's headers are (`nodedir`) for the native build.
 */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k)) env[k] = v;
  env.PATH = `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ''}`;
  // A cache of our own (and npm's logs in it): nothing read from or written to the user's ~/.npm.
  env.npm_config_cache = join(root, 'npm-cache');
  return env;
}

async function npm(args: string[], cwd: string, timeoutMs: number): Promise<RunResult> {
  const r = await runCommand('npm', args, { cwd, env: cleanEnv(), timeoutMs });
  assert.equal(r.code, 0, `npm ${args.join(' ')} exited with ${r.code}:\n${r.stderr.slice(-4000)}`);
  return r;
}

const seconds = (from: number, to = performance.now()) => `${((to - from) / 1000).toFixed(1)} s`;

describe('the packed package, installed without dev dependencies', { timeout: 20 * 60_000 }, () => {
  let tarball = '';
  let packedFiles: string[] = [];

  before(async () => {
    const t0 = performance.now();
    const packed = await npm(
      ['pack', '--ignore-scripts', '--json', '--pack-destination', root],
      REPO_ROOT,
      60_000,
    );
    const [info] = JSON.parse(packed.stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
    tarball = join(root, info!.filename);
    packedFiles = info!.files.map((f) => f.path);
    const t1 = performance.now();
    mkdirSync(prefix);
    writeFileSync(
      join(prefix, 'package.json'),
      JSON.stringify({ name: 'package-test', private: true, allowScripts: ALLOW_SCRIPTS }),
    );
    await npm(
      [
        'install',
        '--omit=dev',
        '--prefix',
        prefix,
        '--no-audit',
        '--no-fund',
        '--no-update-notifier',
        tarball,
      ],
      root,
      15 * 60_000,
    );
    console.log(`# npm pack ${seconds(t0, t1)}, npm install --omit=dev ${seconds(t1)}`);
  });

  after(() => rmSync(root, { recursive: true, force: true }));

  test('the tarball holds the compiled program and the protos, no tests', () => {
    for (const file of Object.values(pkg.bin)) assert.ok(packedFiles.includes(file), `${file} is not packed`);
    assert.ok(packedFiles.includes('dist/src/gen/common.js'));
    assert.ok(packedFiles.some((f) => f.startsWith('proto/') && f.endsWith('.proto')));
    // Messages name docs/security.md and docs/cluster.md: they ship with the package.
    for (const page of ['README.md', 'docs/security.md', 'docs/cluster.md'])
      assert.ok(packedFiles.includes(page), `${page} is not packed`);
    const stray = packedFiles.filter(
      (f) => /^(src|test|bench|dist\/test|dist\/bench)\//.test(f) || f.endsWith('.ts'),
    );
    assert.deepEqual(stray, [], 'packed files that users do not need');
  });

  test('no dev dependency was installed, and better-sqlite3 was built', () => {
    for (const dev of ['typescript', 'ts-proto', 'eslint', 'prettier', '@bufbuild/buf']) {
      assert.throws(
        () => readFileSync(join(prefix, 'node_modules', dev, 'package.json')),
        `${dev} installed`,
      );
    }
    readFileSync(join(prefix, 'node_modules/better-sqlite3/build/Release/better_sqlite3.node'));
  });

  for (const name of Object.keys(pkg.bin)) {
    test(`${name} --version from node_modules/.bin`, async () => {
      const r = await runCommand(bin(name), ['--version'], { env: cleanEnv(), timeoutMs: 30_000 });
      assert.equal(r.code, 0, `${name} --version exited with ${r.code}:\n${r.stderr.slice(-4000)}`);
      assert.equal(r.stdout.trim(), `${name} ${pkg.version}`);
    });
  }

  describe('a download with dfget through dfdaemon, both from the install', () => {
    const origin = new Origin();
    let daemon: DaemonHandle | undefined;

    before(async () => {
      await origin.start();
      mkdirSync(join(root, 'daemon'));
      daemon = await startDaemon({ dir: join(root, 'daemon'), bin: bin('dfdaemon'), env: cleanEnv() });
    });

    after(async () => {
      if (daemon) await stopDaemon(daemon);
      await origin.stop();
    });

    test('the file arrives byte-exact, its pieces fetched by the daemon', async () => {
      const size = 9 * 1024 * 1024 + 7; // three pieces of 4 MiB, the last one short
      const url = origin.add('/package-test.bin', { size, seed: 12 });
      const output = join(root, 'downloaded.bin');
      const r = await runCommand(bin('dfget'), [url, '-O', output, '-e', daemon!.socket, '--no-progress'], {
        env: cleanEnv(),
        timeoutMs: 60_000,
      });
      assert.equal(
        r.code,
        0,
        `dfget exited with ${r.code}:\n${r.stderr}\n${daemon!.logs.slice(-20).join('\n')}`,
      );
      assert.equal(await sha256File(output), contentSha256(12, size));
      const ranges = new Set(origin.pieceRequests('/package-test.bin').map((q) => q.range));
      const MiB4 = 4 * 1024 * 1024;
      assert.deepEqual([...ranges].sort(), [
        `bytes=0-${MiB4 - 1}`,
        `bytes=${MiB4}-${2 * MiB4 - 1}`,
        `bytes=${2 * MiB4}-${size - 1}`,
      ]);
    });
  });
});
