// dfinit as a user runs it: the binary as a child process on temp directories (dry run, apply, second run,
// errors), then the files it writes read by a real containerd: `containerd config dump` on config.toml, a
// containerd started on it (its CRI plugin must load with config_path), and `ctr content fetch --hosts-dir`
// pulling through a stand-in proxy, which must see the X-Dragonfly-Registry header for a listed registry and
// the `ns=` parameter for any other (the `_default` host). All on loopback; containerd is killed by PID.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { planContainerdConfig } from '../../src/init/containerd.js';

const DFINIT = fileURLToPath(new URL('../../src/cli/dfinit.js', import.meta.url));

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], timeoutMs = 30_000): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const dfinit = (...args: string[]) => run(process.execPath, [DFINIT, ...args]);

/** Every file under `dir` with its content and mtime, to show that a run wrote nothing. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const name of fs.readdirSync(d).sort()) {
      const p = path.join(d, name);
      const st = fs.statSync(p);
      if (st.isDirectory()) walk(p);
      else out[path.relative(dir, p)] = `${st.mtimeMs} ${fs.readFileSync(p, 'utf8')}`;
    }
  };
  walk(dir);
  return out;
}

const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'dfinit-it-'));
after(() => fs.rmSync(tmpRoot, { recursive: true, force: true }));
let n = 0;
function tempDir(): string {
  const d = path.join(tmpRoot, String(n++));
  fs.mkdirSync(d);
  return d;
}

describe('dfinit CLI', () => {
  test('-V prints the version', async () => {
    const r = await dfinit('-V');
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^dfinit \d+\.\d+\.\d+/);
  });

  test('docker: --dry-run prints a diff and writes nothing; a run writes with a backup; a second run changes nothing', async () => {
    const dir = tempDir();
    const daemonJson = path.join(dir, 'daemon.json');
    fs.writeFileSync(daemonJson, '{\n  "log-driver": "json-file"\n}\n');
    const cfg = path.join(dir, 'dfinit.yaml');
    fs.writeFileSync(
      cfg,
      `proxy:\n  addr: http://127.0.0.1:65001\ncontainerRuntime:\n  docker:\n    configPath: ${daemonJson}\n`,
    );
    const before = snapshot(dir);

    const dry = await dfinit('-c', cfg, '--dry-run');
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, new RegExp(`^--- ${daemonJson}\n\\+\\+\\+ ${daemonJson}\n@@ `, 'm'));
    assert.match(dry.stdout, /^- {2}"log-driver": "json-file"$/m);
    assert.match(dry.stdout, /^\+ {4}"https-proxy": "http:\/\/127\.0\.0\.1:65001"$/m);
    assert.match(dry.stdout, /dry run: 1 file would change; nothing written/);
    assert.deepEqual(snapshot(dir), before);

    const real = await dfinit('-c', cfg);
    assert.equal(real.code, 0, real.stderr);
    assert.match(
      real.stdout,
      new RegExp(`updated ${daemonJson} \\(original kept as ${daemonJson}\\.dfinit\\.bak\\)`),
    );
    assert.match(real.stdout, /restart docker/);
    assert.equal(fs.readFileSync(daemonJson + '.dfinit.bak', 'utf8'), '{\n  "log-driver": "json-file"\n}\n');
    assert.equal(
      JSON.parse(fs.readFileSync(daemonJson, 'utf8')).proxies['http-proxy'],
      'http://127.0.0.1:65001',
    );

    const written = snapshot(dir);
    const again = await dfinit('-c', cfg);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(
      again.stdout,
      'nothing to change: docker already pulls through http://127.0.0.1:65001 (1 file checked)\n',
    );
    assert.deepEqual(snapshot(dir), written);
    const dryAgain = await dfinit('-c', cfg, '--dry-run');
    assert.match(dryAgain.stdout, /^nothing to change/);
  });

  test('podman: no registries.conf yet → created as upstream writes it', async () => {
    const dir = tempDir();
    const conf = path.join(dir, 'containers/registries.conf');
    const cfg = path.join(dir, 'dfinit.yaml');
    fs.writeFileSync(
      cfg,
      `containerRuntime:\n  podman:\n    configPath: ${conf}\n    unqualifiedSearchRegistries: [docker.io]\n` +
        '    registries:\n      - prefix: docker.io\n        location: docker.io\n',
    );
    const r = await dfinit('-c', cfg);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `created ${conf}\n`);
    assert.equal(
      fs.readFileSync(conf, 'utf8'),
      'unqualified-search-registries = ["docker.io"]\n\n[[registry]]\nprefix = "docker.io"\nlocation = "docker.io"\n\n' +
        '[[registry.mirror]]\ninsecure = true\nlocation = "127.0.0.1:4001"\n',
    );
  });

  test('containerd: hosts.toml files in config_path; versionless config.toml gets version = 2', async () => {
    const dir = tempDir();
    const certs = path.join(dir, 'certs.d');
    const configToml = path.join(dir, 'config.toml');
    const original = `# managed by hand\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "${certs}"\n`;
    fs.writeFileSync(configToml, original);
    const cfg = path.join(dir, 'dfinit.yaml');
    fs.writeFileSync(
      cfg,
      `containerRuntime:\n  containerd:\n    configPath: ${configToml}\n    registries:\n` +
        '      - hostNamespace: docker.io\n        serverAddr: https://index.docker.io\n',
    );
    const dry = await dfinit('-c', cfg, '--dry-run');
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /^ # managed by hand\n\+version = 2$/m);
    assert.match(dry.stdout, new RegExp(`^--- /dev/null\n\\+\\+\\+ ${certs}/docker\\.io/hosts\\.toml$`, 'm'));
    assert.match(dry.stdout, /^\+X-Dragonfly-Registry = "https:\/\/index\.docker\.io"$/m);
    assert.match(dry.stdout, /note: added version = 2/);
    assert.equal(fs.existsSync(certs), false);

    const r = await dfinit('-c', cfg);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.split('\n').slice(0, 3), [
      `updated ${configToml} (original kept as ${configToml}.dfinit.bak)`,
      `created ${certs}/docker.io/hosts.toml`,
      `created ${certs}/_default/hosts.toml`,
    ]);
    assert.match(r.stdout, /restart containerd/);
    assert.equal(
      fs.readFileSync(configToml, 'utf8'),
      `# managed by hand\nversion = 2\n${original.slice(17)}`,
    );
    const again = await dfinit('-c', cfg);
    assert.equal(
      again.stdout,
      'nothing to change: containerd already pulls through http://127.0.0.1:4001 (3 files checked)\n',
    );
  });

  test('errors are one line naming the file or the key, exit code 1', async () => {
    const dir = tempDir();
    const cfg = path.join(dir, 'dfinit.yaml');
    const expectError = async (yaml: string | undefined, re: RegExp, args: string[] = []) => {
      if (yaml !== undefined) fs.writeFileSync(cfg, yaml);
      const r = await dfinit('-c', cfg, ...args);
      assert.equal(r.code, 1, r.stdout);
      assert.match(r.stderr, re);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    };
    const missing = path.join(dir, 'nope/config.toml');
    await expectError(
      `containerRuntime:\n  containerd:\n    configPath: ${missing}\n`,
      new RegExp(`^Error: ${missing}: cannot read the containerd config .*: no such file or directory\n$`),
    );
    const broken = path.join(dir, 'config.toml');
    fs.writeFileSync(broken, 'version = 2\n[plugins\n');
    await expectError(
      `containerRuntime:\n  containerd:\n    configPath: ${broken}\n`,
      new RegExp(`^Error: ${broken}:\\d+:\\d+: invalid TOML: `),
    );
    const badJson = path.join(dir, 'daemon.json');
    fs.writeFileSync(badJson, '{"a": 1,}');
    await expectError(
      `containerRuntime:\n  docker:\n    configPath: ${badJson}\n`,
      new RegExp(`^Error: ${badJson}: invalid JSON`),
    );
    await expectError(
      'proxy:\n  addr: 4001\n',
      /^Error: proxy\.addr: expected an http URL like "http:\/\/127\.0\.0\.1:4001", got 4001/,
    );
    await expectError(
      'containerRuntime:\n  containerd:\n    registries:\n      - hostNamespace: docker.io\n',
      /^Error: containerRuntime\.containerd\.registries\[0\]\.serverAddr: is required/,
    );
    fs.rmSync(cfg);
    await expectError(undefined, new RegExp(`^Error: cannot read config file ${cfg}: no such file`));
    fs.writeFileSync(cfg, '');
    await expectError(undefined, /^Error: invalid log level "loud"/, ['-l', 'loud']);
  });

  test('unknown keys warn naming them; no runtime configured does nothing', async () => {
    const dir = tempDir();
    const cfg = path.join(dir, 'dfinit.yaml');
    fs.writeFileSync(cfg, 'proxy:\n  addr: http://127.0.0.1:4001\n  adress: x\n');
    const r = await dfinit('-c', cfg);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, 'dfinit: warning: unknown key proxy.adress (line 3) is ignored\n');
    assert.equal(r.stdout, `containerRuntime is not set in ${cfg}: nothing to do\n`);
  });

  test('--console logs to stderr', async () => {
    const dir = tempDir();
    const cfg = path.join(dir, 'dfinit.yaml');
    fs.writeFileSync(cfg, `containerRuntime:\n  docker:\n    configPath: ${path.join(dir, 'daemon.json')}\n`);
    const r = await dfinit('-c', cfg, '--console', '-l', 'debug');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /"msg":"planned"/);
  });
});

// --- a real containerd ------------------------------------------------------------------------------------

function which(cmd: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

/** Why the containerd tests cannot run here, or undefined (then the first test fails, naming it). */
function containerdUnavailable(): string | undefined {
  const missing = ['containerd', 'ctr'].filter((c) => !which(c));
  if (missing.length > 0) return `${missing.join(' and ')} not installed (apt-get install containerd runc)`;
  if (process.getuid?.() !== 0) return 'containerd needs root';
  return undefined;
}

interface Recorded {
  url: string;
  registryHeader: string | undefined;
}

function recordingServer(): Promise<{ server: http.Server; port: number; requests: Recorded[] }> {
  const requests: Recorded[] = [];
  const server = http.createServer((req, res) => {
    const h = req.headers['x-dragonfly-registry'];
    requests.push({ url: req.url ?? '', registryHeader: Array.isArray(h) ? h[0] : h });
    res.statusCode = 404;
    res.end();
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({ server, port: (server.address() as AddressInfo).port, requests }),
    ),
  );
}

async function waitFor(what: string, check: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('dfinit with a real containerd', () => {
  const why = containerdUnavailable();
  const dir = tempDir();
  const certs = path.join(dir, 'certs.d');
  const configToml = path.join(dir, 'config.toml');
  const sock = path.join(dir, 'containerd.sock');
  let containerd: ChildProcess | undefined;
  let containerdLog = '';
  let proxy: Awaited<ReturnType<typeof recordingServer>>;
  let origin: Awaited<ReturnType<typeof recordingServer>>;

  before(async () => {
    if (why) return;
    proxy = await recordingServer();
    origin = await recordingServer();
  });

  after(async () => {
    if (containerd?.pid && containerd.exitCode === null) {
      const exited = new Promise((r) => containerd!.once('exit', r));
      process.kill(containerd.pid, 'SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      if (containerd.exitCode === null) process.kill(containerd.pid, 'SIGKILL');
    }
    proxy?.server.close();
    origin?.server.close();
  });

  test('containerd is available (.ci/run installs it; e2e tests need their third-party programs)', () => {
    if (why) assert.fail(`the containerd checks cannot run: ${why}`);
  });

  test('config.toml edited by dfinit: containerd parses it and its CRI plugin loads with config_path', async (t) => {
    if (why) return t.skip(why);
    // containerd's own default config (version 2), on temp dirs, with a mirror that must go (it conflicts).
    const dflt = spawnSync('containerd', ['config', 'default'], { encoding: 'utf8' });
    assert.equal(dflt.status, 0, dflt.stderr);
    let text = dflt.stdout
      .replace(/^root = .*$/m, `root = "${dir}/root"`)
      .replace(/^state = .*$/m, `state = "${dir}/state"`)
      .replace(/^(\[grpc\]\n(?:\s+\w+ = .*\n)*?\s+)address = .*$/m, `$1address = "${sock}"`)
      .replace(/^(\[ttrpc\]\n(?:\s+\w+ = .*\n)*?\s+)address = .*$/m, `$1address = "${sock}.ttrpc"`)
      .replace(/^(\[debug\]\n(?:\s+\w+ = .*\n)*?\s+)address = .*$/m, '$1address = ""')
      .replace(/^(\s+)path = "\/opt\/containerd"$/m, `$1path = "${dir}/opt"`);
    text +=
      '\n[plugins."io.containerd.grpc.v1.cri".registry.mirrors."docker.io"]\n  endpoint = ["https://mirror.invalid"]\n';
    assert.match(text, new RegExp(`address = "${sock}"`));
    const plan = planContainerdConfig(text, configToml, certs);
    assert.match(plan.notes.join('\n'), /removed registry\.mirrors \(docker\.io\)/);
    fs.writeFileSync(configToml, plan.text);

    const dump = spawnSync('containerd', ['-c', configToml, 'config', 'dump'], { encoding: 'utf8' });
    assert.equal(dump.status, 0, dump.stderr);
    assert.match(dump.stdout, new RegExp(`config_path = "${certs}"`));

    containerd = spawn('containerd', ['-c', configToml], { stdio: ['ignore', 'ignore', 'pipe'] });
    containerd.stderr!.on('data', (d: Buffer) => (containerdLog += d.toString()));
    await waitFor('containerd socket', () => fs.existsSync(sock));
    const plugins = await run('ctr', ['-a', sock, 'plugins', 'ls']);
    assert.equal(plugins.code, 0, plugins.stderr);
    assert.match(
      plugins.stdout,
      /io\.containerd\.grpc\.v1\s+cri\s+\S+\s+ok/,
      `${plugins.stdout}\n${containerdLog}`,
    );
    // containerd 1.x logs the CRI config it starts with; where it does, config_path must be ours, mirrors gone.
    if (containerdLog.includes('Start cri plugin with config'))
      assert.match(containerdLog, new RegExp(`Registry:\\{ConfigPath:${certs} Mirrors:map\\[\\]`));
  });

  test('hosts.toml written by dfinit: ctr pulls through the proxy with the registry header, and via _default', async (t) => {
    if (why) return t.skip(why);
    assert.ok(containerd, 'containerd runs (previous test)');
    const ns = `127.0.0.1:${origin.port}`;
    const cfg = path.join(dir, 'dfinit.yaml');
    fs.writeFileSync(
      cfg,
      `proxy:\n  addr: http://127.0.0.1:${proxy.port}\ncontainerRuntime:\n  containerd:\n    configPath: ${configToml}\n` +
        `    registries:\n      - hostNamespace: "${ns}"\n        serverAddr: http://${ns}\n`,
    );
    const r = await dfinit('-c', cfg);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`created ${certs}/${ns}/hosts\\.toml`));
    assert.match(r.stdout, new RegExp(`unchanged ${configToml}`));

    const fetch = (ref: string) =>
      run('ctr', ['-a', sock, 'content', 'fetch', '--hosts-dir', certs, ref], 20_000);
    await fetch(`${ns}/library/busybox:latest`);
    const listed = proxy.requests.find((q) => q.url.startsWith('/v2/library/busybox/manifests/latest'));
    assert.ok(listed, `the proxy saw the pull: ${JSON.stringify(proxy.requests)}`);
    assert.equal(listed.registryHeader, `http://${ns}`);
    assert.match(listed.url, new RegExp(`ns=${encodeURIComponent(ns)}`));

    // A registry with no hosts.toml of its own goes through _default: no header, `ns=` names it.
    const other = `127.0.0.1:${proxy.port === 1 ? 2 : 1}`;
    await fetch(`${other}/x/y:1`);
    const viaDefault = proxy.requests.find((q) => q.url.startsWith('/v2/x/y/manifests/1'));
    assert.ok(viaDefault, `the proxy saw the _default pull: ${JSON.stringify(proxy.requests)}`);
    assert.equal(viaDefault.registryHeader, undefined);
    assert.match(viaDefault.url, new RegExp(`ns=${encodeURIComponent(other)}`));
  });
});
