// The recipe "Several daemons on one machine" of docs/cluster.md, run as it stands: its shell blocks in order, then its stop
// command, in one bash with HOME set to a temp dir and `dfdaemon` / `dfget` on PATH as the built binaries. Only
// the port numbers (each mapped to a free port) and the example URL (this test's origin) are replaced. node-1
// downloads from the origin; node-2 must get the file from node-1 without touching the origin.
// Also: two daemons with one host.hostname: the second is refused at start and says how to fix it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Origin, contentSha256 } from '../helpers/origin.js';
import { DFDAEMON, DFGET, metricValue, startDaemon, stopDaemon, tempDir } from '../helpers/daemon.js';
import { freePort } from '../helpers/child-process.js';
import { sha256File } from '../helpers/files.js';
import { rpc, schedulerClient } from '../helpers/scheduler-client.js';

const CLUSTER_MD = fileURLToPath(new URL('../../../docs/cluster.md', import.meta.url));
const MiB = 1024 * 1024;

/** The recipe: its ```sh blocks and the inline stop command, from its heading to the next heading. */
function readRecipe(): { blocks: string[]; stop: string } {
  const text = readFileSync(CLUSTER_MD, 'utf8');
  const start = text.indexOf('## Several daemons on one machine\n');
  assert.ok(start >= 0, 'docs/cluster.md has no "## Several daemons on one machine" section');
  const end = text.indexOf('\n## ', start + 4);
  const section = text.slice(start, end < 0 ? undefined : end);
  const blocks = [...section.matchAll(/^```sh\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
  const stop = /Stop them with `([^`]+)`/.exec(section)?.[1];
  assert.equal(blocks.length, 3, 'the recipe has three shell blocks: configuration, start, download');
  assert.ok(stop, 'the recipe says how to stop the daemons');
  return { blocks, stop };
}

/** Every port number of the recipe (40xx, and the scheduler's 8002) mapped to a free port. */
async function remapPorts(script: string): Promise<{ script: string; ports: Map<string, number> }> {
  const ports = new Map<string, number>();
  for (const m of script.matchAll(/\b(40[0-2]\d|8002)\b/g)) {
    if (!ports.has(m[1]!)) ports.set(m[1]!, await freePort());
  }
  return { script: script.replace(/\b(40[0-2]\d|8002)\b/g, (p) => String(ports.get(p))), ports };
}

/** Whether the process is gone (or a zombie nobody has reaped yet). */
function gone(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return true;
  }
  try {
    return /^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

function logsOf(dir: string): string {
  if (!existsSync(dir)) return `(no ${dir})`;
  return readdirSync(dir)
    .map((f) => `--- ${f}\n${readFileSync(join(dir, f), 'utf8').split('\n').slice(-30).join('\n')}`)
    .join('\n');
}

test('docs/cluster.md recipe "several daemons on one machine": node-2 gets the file from node-1, not from the origin', async () => {
  const origin = new Origin();
  await origin.start();
  const size = 24 * MiB + 123;
  const url = origin.add('/file.bin', { size, seed: 17 });
  const home = tempDir('dft-recipe-');
  const bin = join(home, 'bin');
  const pidsFile = join(home, 'dfdaemon.pids');
  mkdirSync(bin);
  // dfdaemon and dfget as a user has them on PATH; dfdaemon's shim notes its PID (it execs, so $! is that PID).
  writeFileSync(
    join(bin, 'dfdaemon'),
    `#!/bin/sh\necho $$ >> '${pidsFile}'\nexec '${process.execPath}' '${DFDAEMON}' "$@"\n`,
  );
  writeFileSync(join(bin, 'dfget'), `#!/bin/sh\nexec '${process.execPath}' '${DFGET}' "$@"\n`);
  chmodSync(join(bin, 'dfdaemon'), 0o755);
  chmodSync(join(bin, 'dfget'), 0o755);

  const recipe = readRecipe();
  const [configure, start, download] = recipe.blocks as [string, string, string];
  const withUrl = download.replace(/^URL=\S+/m, `URL=${url}`);
  assert.notEqual(withUrl, download, 'the download block sets URL=');
  const { script, ports } = await remapPorts(
    [configure, start, withUrl, recipe.stop, 'wait # for both daemons to stop'].join('\n'),
  );
  assert.ok(ports.has('8002') && ports.has('4012'), `ports found: ${[...ports.keys()].join(' ')}`);

  const out = join(home, 'recipe.out');
  const outFd = openSync(out, 'w');
  const sh = spawn('bash', ['-e', '-c', script], {
    cwd: home,
    env: { ...process.env, HOME: home, PATH: `${bin}:${process.env['PATH']}` },
    stdio: ['ignore', outFd, outFd],
  });
  closeSync(outFd);
  const pids = () =>
    existsSync(pidsFile) ? readFileSync(pidsFile, 'utf8').split('\n').filter(Boolean).map(Number) : [];
  try {
    const code = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => sh.kill('SIGKILL'), 120_000);
      sh.once('exit', (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    const output = readFileSync(out, 'utf8');
    const detail = () =>
      `recipe output:\n${output}\nnode-1 logs:\n${logsOf(join(home, 'df/node-1/logs'))}\n` +
      `node-2 logs:\n${logsOf(join(home, 'df/node-2/logs'))}`;
    assert.equal(code, 0, `the recipe failed (exit ${code})\n${detail()}`);
    assert.equal(pids().length, 2, 'the recipe started two daemons');
    assert.ok(pids().every(gone), 'the stop command stopped both daemons');

    const want = contentSha256(17, size);
    assert.equal(await sha256File(join(home, 'df/file-1.bin')), want);
    assert.equal(await sha256File(join(home, 'df/file-2.bin')), want);
    // The recipe's check: node-2's download traffic is all REMOTE_PEER.
    assert.equal(
      metricValue(output, 'dragonfly_client_download_traffic', 'type="REMOTE_PEER"'),
      size,
      detail(),
    );
    assert.equal(metricValue(output, 'dragonfly_client_download_traffic', 'type="BACK_TO_SOURCE"'), 0);
    // The origin served each byte once: node-1's pieces, none for node-2.
    const ranges = origin.pieceRequests('/file.bin').map((r) => r.range!);
    assert.equal(new Set(ranges).size, ranges.length, `a range was fetched twice: ${ranges.join(' ')}`);
    const served = ranges.reduce((n, r) => {
      const [a, b] = r.replace('bytes=', '').split('-').map(Number) as [number, number];
      return n + (b - a + 1);
    }, 0);
    assert.equal(served, size);
  } finally {
    if (!(sh.exitCode !== null || sh.signalCode !== null)) sh.kill('SIGKILL');
    for (const pid of pids()) if (!gone(pid)) process.kill(pid, 'SIGKILL');
    await origin.stop();
    rmSync(home, { recursive: true, force: true });
  }
});

test('two daemons with one host.hostname: the second is refused at start and its log says to set host.hostname', async () => {
  // Two dirs with one basename give one hostname (test-node), so one host id 127.0.0.1-test-node.
  const dirA = join(tempDir(), 'node');
  const dirB = join(tempDir(), 'node');
  mkdirSync(dirA);
  mkdirSync(dirB);
  const a = await startDaemon({ dir: dirA });
  try {
    assert.equal(a.hostId, '127.0.0.1-test-node');
    const addr = `127.0.0.1:${a.schedulerPort}`;
    await assert.rejects(startDaemon({ dir: dirB, schedulerAddr: addr }), (e: Error) => {
      assert.match(e.message, /exited with 1/);
      // the daemon's log: how to fix it
      assert.match(
        e.message,
        /host id 127\.0\.0\.1-test-node is already used by another daemon at scheduler 127\.0\.0\.1:\d+\. To run several daemons on one machine, set host\.hostname in each one's dfdaemon\.yaml to a unique name \(this one is \\"test-node\\"\)/,
      );
      // the one line on stderr: the scheduler's refusal
      assert.match(
        e.message,
        /dfdaemon: announce host to scheduler 127\.0\.0\.1:\d+ failed: host id 127\.0\.0\.1-test-node is already announced by another daemon \(ip 127\.0\.0\.1, port \d+\).*set host\.hostname/,
      );
      return true;
    });
    // The first daemon keeps its place.
    const client = schedulerClient(a.schedulerPort!);
    try {
      const hosts = (await rpc(client).listHosts({})).hosts.map((h) => `${h.id} ${h.port}`);
      assert.deepEqual(hosts, [`127.0.0.1-test-node ${a.uploadPort}`]);
    } finally {
      client.close();
    }
  } finally {
    await stopDaemon(a);
    rmSync(join(dirA, '..'), { recursive: true, force: true });
    rmSync(join(dirB, '..'), { recursive: true, force: true });
  }
});
