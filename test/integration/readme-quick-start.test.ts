// The README's quick start, run as written (issue 17): `npm start` in one "terminal"; in a second, the shell blocks
// of "Download a file", "See that it worked", "A cluster of three / On one machine" and "Write and seed" (dfcache
// on that cluster), then the stop commands the text gives (`kill $(cat ~/df/pids)`, `kill %1`); then
// `kill <PID of npm start>` as "Stop it" says. Nothing is replaced: the README's fixed ports (4000–4005,
// 4200–4305, 8000, 8002) are free because everything runs in a network namespace of its own (loopback plus a veth
// as the machine's NIC), and dfdaemon's system directories (/run, /var/lib, /var/log) are private tmpfs mounts, so
// a run as root writes nothing outside its temp HOME.
// The commands run as nobody (a user without root, as a newcomer) when nobody can read this checkout, else as
// root. Checked: the download is byte-exact, dfctl and the metrics show it, a second download and the two other
// nodes take no piece from the origin (node-3's bytes all come from peers), and after the stop no process is
// left, the socket is gone and nothing listens.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  cpSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { metricValue, tempDir } from '../helpers/daemon.js';
import { canRead, chownTree, NOBODY } from '../helpers/exec.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** The ```sh blocks of the README section under `heading` (up to the next heading of any level). */
function shBlocks(readme: string, heading: string): string[] {
  const start = readme.indexOf(`\n${heading}\n`);
  assert.ok(start >= 0, `README.md has no "${heading}"`);
  const rest = readme.slice(start + heading.length + 2);
  const end = rest.search(/^#{1,6} /m);
  const section = end < 0 ? rest : rest.slice(0, end);
  return [...section.matchAll(/^```sh\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
}

/** The inline command the README gives for `what` ("Stop the two with `…`"). */
function inlineCommand(readme: string, before: string): string {
  const m = new RegExp(`${before} \`([^\`]+)\``).exec(readme);
  assert.ok(m, `README.md has no "${before} \`…\`"`);
  return m[1]!;
}

/** Why this machine cannot run the test, if so. */
function cannotRun(): string | undefined {
  if (process.platform !== 'linux') return 'Linux only';
  if (process.getuid?.() !== 0) return 'needs root: a network namespace keeps the fixed ports from colliding';
  const probe = spawnSync(
    'unshare',
    ['-n', '-m', '--', 'sh', '-c', 'ip link set lo up && mount -t tmpfs t /run'],
    {
      encoding: 'utf8',
    },
  );
  if (probe.status !== 0) return `no network/mount namespace here: ${probe.stderr.trim()}`;
  if (existsSync('/etc/dragonfly')) return '/etc/dragonfly exists: a dfdaemon run as root would read it';
  return undefined;
}

/** Whether nobody can read this checkout (its node_modules), so that the commands can run without root. */
function nobodyCanRead(): boolean {
  return canRead(NOBODY, join(ROOT, 'node_modules/commander/package.json'));
}

test(
  'README quick start, run as written: download, check, a three-node cluster, stop',
  { skip: cannotRun() },
  async () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const [install, tests] = shBlocks(readme, '## Quick start');
    assert.equal(install, 'npm ci && npm start\n', 'the first command installs and starts');
    assert.equal(tests, 'npm ci && npm test\n', 'the second installs and tests');
    const [download] = shBlocks(readme, '### Download a file');
    const [check] = shBlocks(readme, '### See that it worked');
    const [cluster] = shBlocks(readme, '### On one machine');
    const [seed] = shBlocks(readme, '## Write and seed');
    assert.ok(download && check && cluster && seed, 'the four shell blocks');
    const stopNodes = inlineCommand(readme, 'Stop the two with');
    const stopOrigin = inlineCommand(readme, 'Stop the origin with');
    assert.match(readme, /Ctrl-C in its terminal, or `kill` the PID of `npm start`/);

    const home = tempDir('dft-quick-start-');
    chmodSync(home, 0o755);
    const user = nobodyCanRead() ? NOBODY : undefined;
    // The user's clone: what the commands use of it (npm links the package and chmods its bins, so the user must
    // own it); node_modules is this checkout's, read-only.
    const checkout = join(home, 'dragonfly-peer');
    mkdirSync(checkout);
    for (const p of ['package.json', 'dist/src', 'scripts', 'proto', 'README.md'])
      cpSync(join(ROOT, p), join(checkout, p), { recursive: true });
    symlinkSync(realpathSync(join(ROOT, 'node_modules')), join(checkout, 'node_modules'));
    writeFileSync(
      join(home, 'terminal-2.sh'),
      [
        download,
        check,
        'echo "--- cluster"',
        cluster,
        'echo "--- seed"',
        seed,
        stopNodes,
        stopOrigin,
        'wait',
      ].join('\n'),
    );
    // "Terminal 1" runs npm start; "terminal 2" the README's blocks; then npm start is killed by its PID.
    writeFileSync(
      join(home, 'driver.sh'),
      `set -e
cd '${checkout}'
npm start > ~/terminal-1.out 2>&1 &
npm_start=$!
for i in $(seq 600); do grep -q ' running: socket ' ~/terminal-1.out && break; sleep 0.1; done
set +e
bash -e ~/terminal-2.sh > ~/terminal-2.out 2>&1
echo "terminal-2 exit $?" > ~/terminal-2.code
set -e
kill $npm_start
wait $npm_start || true
sleep 0.5
ls ~/.dragonfly/dfdaemon.sock /run/dragonfly/dfdaemon.sock > ~/sockets-left 2>/dev/null || true
ss -ltnH > ~/listening-left
ps -eo pid=,args= > ~/processes-left
`,
    );
    await chownTree(home, user);

    const asUser = user
      ? `exec setpriv --reuid=${user.uid} --regid=${user.gid} --clear-groups -- "$@"`
      : 'exec "$@"';
    const setup = `set -e
mount -t tmpfs -o mode=0755 tmpfs /run
mount -t tmpfs -o mode=0755 tmpfs /var/lib
mount -t tmpfs -o mode=0755 tmpfs /var/log
ip link set lo up
ip link add eth-qs type veth peer name eth-qs-peer
ip addr add 10.99.0.1/24 dev eth-qs
ip link set eth-qs up
ip link set eth-qs-peer up
${asUser}`;
    const outFile = join(home, 'driver.out');
    const outFd = openSync(outFile, 'w');
    const env = {
      PATH: process.env['PATH'] ?? '/usr/bin:/bin',
      HOME: home,
      LANG: 'C.UTF-8',
      npm_config_update_notifier: 'false',
      npm_config_audit: 'false',
      npm_config_fund: 'false',
    };
    // A PID namespace too: `ps` in it sees only this run, and nothing outlives it.
    const unshare = ['-n', '-m', '-p', '-f', '--mount-proc', '--'];
    const proc = spawn('unshare', [...unshare, 'sh', '-c', setup, 'setup', 'bash', join(home, 'driver.sh')], {
      env,
      stdio: ['ignore', outFd, outFd],
      detached: true, // its own process group, ended by its id on a timeout
    });
    closeSync(outFd);
    const read = (f: string) =>
      existsSync(join(home, f)) ? readFileSync(join(home, f), 'utf8') : `(no ${f})`;
    const detail = () =>
      `driver:\n${read('driver.out')}\nterminal 1:\n${read('terminal-1.out')}\nterminal 2:\n${read('terminal-2.out')}`;
    try {
      const code = await new Promise<number | null>((resolve) => {
        const timer = setTimeout(() => process.kill(-proc.pid!, 'SIGKILL'), 240_000);
        proc.once('exit', (c) => {
          clearTimeout(timer);
          resolve(c);
        });
      });
      assert.equal(code, 0, `the run failed (exit ${code})\n${detail()}`);
      assert.equal(read('terminal-2.code').trim(), 'terminal-2 exit 0', detail());
      const t1 = read('terminal-1.out');
      const t2 = read('terminal-2.out');
      // Without root, dfdaemon cannot write the system directories (root's 0755 here) and uses ~/.dragonfly.
      const dirs = user
        ? { socket: `${home}/.dragonfly/dfdaemon.sock`, logs: `${home}/.dragonfly/logs/dfdaemon` }
        : { socket: '/var/run/dragonfly/dfdaemon.sock', logs: '/var/log/dragonfly/dfdaemon' };
      assert.ok(
        t1.includes(` running: socket ${dirs.socket}, storage `) &&
          t1.includes(`, log ${dirs.logs}/dfdaemon.1.log\n`),
        detail(),
      );

      // Download a file: byte-exact; see that it worked: dfctl, the metrics, a cache hit.
      assert.match(t2, /^same bytes$/m, detail());
      assert.match(t2, /^[0-9a-f]{64} +64 MiB +16\/16 +Succeeded /m, detail());
      const [single = '', rest = ''] = t2.split('\n--- cluster\n');
      const [cluster3 = '', seeded = ''] = rest.split('\n--- seed\n');
      const traffic = (text: string, type: string) =>
        metricValue(text, 'dragonfly_client_download_traffic', `type="${type}"`);
      assert.equal(traffic(single, 'BACK_TO_SOURCE'), 64 * 2 ** 20, detail());
      const demo = readFileSync(join(home, 'df-demo/file.bin'));
      for (const f of ['file.bin', 'again.bin', 'df/file-2.bin', 'df/file-3.bin'])
        assert.ok(readFileSync(join(home, f)).equals(demo), `${f} differs from the origin's file`);
      // The origin served the pieces once: the cached download and nodes 2 and 3 asked it only for the length.
      const pieceRequests = t2.split('\n').filter((l) => /^GET \/file\.bin bytes=\d+-\d+ → 206/.test(l));
      assert.equal(pieceRequests.filter((l) => !l.includes('bytes=0-0 ')).length, 16, detail());
      // node-3's bytes all came from peers.
      assert.equal(traffic(cluster3, 'REMOTE_PEER'), 64 * 2 ** 20, detail());
      assert.equal(traffic(cluster3, 'BACK_TO_SOURCE'), 0, detail());

      // Write and seed: the model's two files imported on node-1, exported on nodes 2 and 3, listed by dfctl.
      assert.match(seeded, /^same model$/m, detail());
      assert.match(seeded, /^Persistent replicas: +[12]\/2$/m, detail());
      assert.match(seeded, /^ID +PERSISTENT +TTL +PIECE LENGTH +CONTENT LENGTH /m, detail());
      assert.equal(seeded.match(/^[0-9a-f]{64} +(true|false) +1d /gm)?.length, 2, detail());

      // Stop it: nothing left running, listening or on disk.
      assert.equal(read('sockets-left').trim(), '', 'the socket is removed');
      assert.equal(read('listening-left').trim(), '', 'nothing listens');
      // In the PID namespace: the setup shell (now the driver), ps, and nothing of the README's.
      const left = read('processes-left')
        .split('\n')
        .filter((l) => /dfdaemon|serve-dir|npm|node /.test(l));
      assert.deepEqual(left, [], `no process is left:\n${read('processes-left')}`);
    } finally {
      if (proc.exitCode === null && proc.signalCode === null) process.kill(-proc.pid!, 'SIGKILL');
      rmSync(home, { recursive: true, force: true });
    }
  },
);
