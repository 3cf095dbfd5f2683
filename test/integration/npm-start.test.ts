// `npm start` as the README's quick start runs it, stopped the way a user stops a process: `kill <PID of npm>`.
// It used to be `npm run build && node dist/src/cli/dfdaemon.js`: npm forwards SIGTERM to its shell, the shell
// died, and dfdaemon lived on as an orphan holding the socket and every port (issue 17). Now the script execs
// dfdaemon, so npm's child is dfdaemon itself and gets the signal. Also: the start-up line names the log file that
// exists (it used to name dfdaemon.log; the rotating logger writes dfdaemon.1.log).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../helpers/child-process.js';
import { tempDir } from '../helpers/daemon.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** PIDs of the processes whose command line names `arg`. */
function startedWith(arg: string): number[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        return readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0').includes(arg);
      } catch {
        return false;
      }
    })
    .map(Number);
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

test('kill <npm start PID> stops dfdaemon: the process is gone, the socket removed, the ports free', async () => {
  const dir = tempDir('dft-npm-start-');
  const ports = {
    upload: await freePort(),
    proxy: await freePort(),
    metrics: await freePort(),
    health: await freePort(),
    vortex: await freePort(),
    scheduler: await freePort(),
  };
  const socket = join(dir, 'dfdaemon.sock');
  const config = join(dir, 'dfdaemon.yaml');
  writeFileSync(
    config,
    `host: { ip: 127.0.0.1, hostname: npm-start }
download: { server: { socketPath: ${socket} } }
upload: { server: { ip: 127.0.0.1, port: ${ports.upload} } }
proxy: { server: { ip: 127.0.0.1, port: ${ports.proxy} } }
metrics: { server: { ip: 127.0.0.1, port: ${ports.metrics} } }
health: { server: { ip: 127.0.0.1, port: ${ports.health} } }
storage: { dir: ${join(dir, 'storage')}, server: { ip: 127.0.0.1, tcpPort: ${ports.vortex} } }
embeddedScheduler: { enable: true, ip: 127.0.0.1, port: ${ports.scheduler} }
`,
  );
  // Output to a file, not a pipe: a dfdaemon left behind (the bug) must not keep this test waiting on the pipe.
  const outFile = join(dir, 'npm-start.out');
  const outFd = openSync(outFile, 'w');
  const npm = spawn('npm', ['start', '--', '-c', config, '--log-dir', join(dir, 'logs')], {
    cwd: ROOT,
    env: { ...process.env, HOME: dir },
    stdio: ['ignore', outFd, outFd],
  });
  closeSync(outFd);
  let output = '';
  const npmExit = new Promise<void>((resolve) => npm.once('exit', () => resolve()));
  let daemonPid: number | undefined;
  try {
    // The start-up line, once every listener is up.
    for (let i = 0; i < 600 && !/ running: socket /.test(output); i++) {
      if (npm.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 50));
      output = readFileSync(outFile, 'utf8');
    }
    const line = / running: socket (\S+), storage (\S+), log (\S+)\n/.exec(output);
    assert.ok(line, `no start-up line from npm start:\n${output}`);
    assert.equal(line[1], socket);
    const logFile = line[3]!;
    assert.equal(logFile, join(dir, 'logs', 'dfdaemon.1.log'));
    // The log file is opened asynchronously and may lag the start-up line on stdout: wait for it.
    const startedLine = () =>
      existsSync(logFile)
        ? readFileSync(logFile, 'utf8')
            .split('\n')
            .find((l) => l.includes('"dfdaemon started"'))
        : undefined;
    let started = startedLine();
    for (let i = 0; i < 200 && !started; i++) {
      await new Promise((r) => setTimeout(r, 50));
      started = startedLine();
    }
    assert.ok(
      started,
      `the log file named holds no "dfdaemon started" line:\n${existsSync(logFile) ? readFileSync(logFile, 'utf8') : '(no such file)'}`,
    );
    daemonPid = (JSON.parse(started) as { pid: number }).pid;
    assert.notEqual(daemonPid, npm.pid);
    assert.ok(existsSync(socket));
    for (const port of Object.values(ports))
      assert.equal(await canListen(port), false, `port ${port} in use`);

    npm.kill('SIGTERM');
    await npmExit;
    for (let i = 0; i < 200 && alive(daemonPid); i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(alive(daemonPid), false, `dfdaemon (PID ${daemonPid}) still runs after npm was killed`);
    assert.equal(existsSync(socket), false, 'the socket is removed');
    for (const [name, port] of Object.entries(ports))
      assert.equal(await canListen(port), true, `the ${name} port ${port} is still held`);
  } finally {
    if (npm.exitCode === null && npm.signalCode === null) npm.kill('SIGKILL');
    // Whatever this test started and left running (its config path is unique), by PID.
    for (const pid of startedWith(config)) process.kill(pid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});
