// The package as users get it: `npm pack` of this checkout (as built: the pack runs no scripts), the tarball
// installed the way the README tells users to (`npm install -g --allow-scripts=better-sqlite3 TARBALL`, global:
// no dev dependencies) into an empty prefix, then every binary's --version and one real download: dfget from that
// install, through a dfdaemon from that install, of a file from a Node origin on a free port. Catches a run-time
// import that is only a devDependency, a file left out of "files", a bin without its shebang, a native addon
// whose install script npm 11 skipped. Everything lives under one temp dir, removed at the end; the daemon is
// ended by PID.
//
// Time and network: dependencies come through the user's npm cache with --prefer-offline, so once the cache holds
// them (any earlier `npm ci` or run of this test) the install needs no network at all; otherwise they come from
// the registry. better-sqlite3's install script runs (prebuild-install, else node-gyp): it is offered the
// checkout's own compiled addon as a local prebuild when the version npm resolves and the Node ABI match, so the
// install takes seconds instead of a 1.5–3 min C++ build; when they do not match it compiles, as a user without
// network would. The compile itself is proven by `npm ci` of the checkout.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { mustRun, runCommand } from '../helpers/exec.js';
import { startDaemon, stopDaemon, type DaemonHandle, type RunResult } from '../helpers/daemon.js';
import { sha256File } from '../helpers/files.js';
import { REPO_ROOT } from '../helpers/module-imports.js';
import { contentSha256, Origin } from '../helpers/origin.js';

interface PackageJson {
  name: string;
  version: string;
  bin: Record<string, string>;
}
const readPackageJson = (dir: string) =>
  JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as PackageJson;
const pkg = readPackageJson(REPO_ROOT);

const root = mkdtempSync(join(tmpdir(), 'dft-package-'));
const prefix = join(root, 'prefix');
/** Where `npm install -g --prefix` puts the package and its bins. */
const installed = join(prefix, 'lib', 'node_modules', pkg.name);
const bin = (name: string) => join(prefix, 'bin', name);
const localPrebuilds = join(root, 'prebuilds');

/**
 * Our environment without npm's `npm_*` variables (set when the tests run under `npm run`; they would carry the
 * outer project's config into the inner npm), with this node first on PATH for the bins' `env node`. The user's
 * npm config stays: it says where the registry and the cache are, and where Node's headers are (`nodedir`) for a
 * native build.
 */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k)) env[k] = v;
  env.PATH = `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ''}`;
  return env;
}

async function npm(
  args: string[],
  cwd: string,
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
): Promise<RunResult> {
  const r = await runCommand('npm', args, { cwd, env, timeoutMs });
  assert.equal(r.code, 0, `npm ${args.join(' ')} exited with ${r.code}:\n${r.stderr.slice(-4000)}`);
  return r;
}

/**
 * Puts the checkout's compiled better-sqlite3 where prebuild-install looks for a local prebuild (a tarball named
 * as its release asset, holding build/Release/better_sqlite3.node); returns the environment that points it there.
 * The name carries the version and the ABI, so a different resolved version or Node is not fooled.
 */
async function offerCheckoutAddon(): Promise<NodeJS.ProcessEnv> {
  const addonDir = join(REPO_ROOT, 'node_modules', 'better-sqlite3');
  const addon = join(addonDir, 'build', 'Release', 'better_sqlite3.node');
  if (!existsSync(addon)) return {};
  const { version } = readPackageJson(addonDir);
  const { modules, platform, arch } = { modules: process.versions.modules, ...process };
  const asset = `better-sqlite3-v${version}-node-v${modules}-${platform}-${arch}.tar.gz`;
  const stage = join(root, 'prebuild-stage');
  mkdirSync(join(stage, 'build', 'Release'), { recursive: true });
  await mustRun('cp', [addon, join(stage, 'build', 'Release')]);
  mkdirSync(localPrebuilds);
  await mustRun('tar', ['-czf', join(localPrebuilds, asset), '-C', stage, 'build']);
  return { npm_config_better_sqlite3_local_prebuilds: localPrebuilds };
}

const seconds = (from: number, to = performance.now()) => `${((to - from) / 1000).toFixed(1)} s`;

describe('the packed package, installed without dev dependencies', { timeout: 12 * 60_000 }, () => {
  let tarball = '';
  let packedFiles: string[] = [];

  before(async () => {
    const t0 = performance.now();
    const packed = await npm(
      ['pack', '--ignore-scripts', '--json', '--pack-destination', root],
      REPO_ROOT,
      cleanEnv(),
      60_000,
    );
    const [info] = JSON.parse(packed.stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
    tarball = join(root, info!.filename);
    packedFiles = info!.files.map((f) => f.path);
    const t1 = performance.now();
    const env = { ...cleanEnv(), ...(await offerCheckoutAddon()) };
    await npm(
      [
        'install',
        '--global',
        '--prefix',
        prefix,
        '--allow-scripts=better-sqlite3',
        '--prefer-offline',
        '--foreground-scripts',
        '--no-audit',
        '--no-fund',
        '--no-update-notifier',
        tarball,
      ],
      root,
      env,
      8 * 60_000,
    );
    // node-gyp leaves its Makefile beside the addon; an unpacked prebuild has none.
    const compiled = existsSync(join(installed, 'node_modules/better-sqlite3/build/Makefile'));
    const how = compiled ? 'compiled by node-gyp' : 'from the local prebuild';
    console.log(`npm pack ${seconds(t0, t1)}, npm install -g ${seconds(t1)} (better-sqlite3 ${how})`);
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

  test('no dev dependency was installed, and better-sqlite3 has its addon', () => {
    for (const dev of ['typescript', 'ts-proto', 'eslint', 'prettier', '@bufbuild/buf']) {
      assert.ok(!existsSync(join(installed, 'node_modules', dev)), `${dev} installed`);
    }
    assert.ok(existsSync(join(installed, 'node_modules/better-sqlite3/build/Release/better_sqlite3.node')));
  });

  test('the installed daemon checksums pieces with the native CRC-32 (core/crc32.ts), not the zlib fallback', async () => {
    if (process.platform !== 'linux' || process.arch !== 'x64') return;
    const script =
      "import('./dist/src/core/crc32.js').then((m) => { m.crc32('x'); console.log(m.crc32Implementation()); })";
    const r = await runCommand(process.execPath, ['-e', script], {
      cwd: installed,
      env: cleanEnv(),
      timeoutMs: 30_000,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'crc32fast');
  });

  for (const name of Object.keys(pkg.bin)) {
    test(`${name} --version from the install's bin/`, async () => {
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
