import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { tcpCaller, UnixSocketCallers } from '../../../src/daemon/local-caller.js';

/** A server and one client connection to it; resolves with the server's end. */
async function pair(listen: (s: net.Server) => void, connect: () => net.Socket) {
  const server = net.createServer();
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  listen(server);
  await new Promise((r) => server.once('listening', r));
  const client = connect();
  const serverEnd = await accepted;
  return {
    serverEnd,
    close: () => {
      client.destroy();
      serverEnd.destroy();
      server.close();
    },
  };
}

test('UnixSocketCallers reads the peer (this process) from the kernel, once per connection', async (t) => {
  if (spawnSync('perl', ['-e', '1']).status !== 0) return t.skip('no perl');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'peercred-'));
  const sock = path.join(dir, 's');
  const p = await pair(
    (s) => s.listen(sock),
    () => net.connect(sock),
  );
  try {
    const callers = new UnixSocketCallers();
    const c = await callers.callerOf(p.serverEnd);
    assert.equal(c.kind, 'local');
    if (c.kind !== 'local') return;
    assert.equal(c.cred.uid, process.geteuid!());
    assert.equal(c.cred.gid, process.getegid!());
    assert.equal(c.cred.pid, process.pid);
    // The supplementary groups as the kernel keeps them (process.getgroups() adds the egid).
    const status = fs.readFileSync('/proc/self/status', 'utf8');
    const groups = (status.match(/^Groups:[ \t]*(.*)$/m)?.[1] ?? '').split(/\s+/).filter(Boolean).map(Number);
    assert.deepEqual([...c.cred.groups].sort(), groups.sort());
    assert.equal(callers.callerOf(p.serverEnd), callers.callerOf(p.serverEnd), 'cached per connection');
    const none = await new UnixSocketCallers({ perl: '/nonexistent/perl' }).callerOf(p.serverEnd);
    assert.equal(none.kind, 'unidentified');
    assert.match(none.kind === 'unidentified' ? none.why : '', /cannot run \/nonexistent\/perl/);
  } finally {
    p.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

for (const host of ['127.0.0.1', '::1']) {
  test(`tcpCaller finds the local process behind a TCP connection over ${host}`, async (t) => {
    const server = net.createServer();
    const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, host, () => resolve());
      });
    } catch {
      return t.skip(`${host} is not available`);
    }
    const port = (server.address() as net.AddressInfo).port;
    const client = net.connect(port, host);
    const serverEnd = await accepted;
    try {
      const c = await tcpCaller(serverEnd);
      assert.equal(c.kind, 'local', JSON.stringify(c));
      if (c.kind !== 'local') return;
      assert.equal(c.cred.uid, process.geteuid!());
      if (c.cred.uid !== 0) assert.equal(c.cred.pid, process.pid);
    } finally {
      client.destroy();
      serverEnd.destroy();
      server.close();
    }
  });
}

test('tcpCaller: a connection whose client end is not in /proc/net/tcp is unidentified', async () => {
  const procRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'noproc-'));
  try {
    const c = await tcpCaller(
      { remoteAddress: '127.0.0.1', remotePort: 1, localAddress: '127.0.0.1', localPort: 2 },
      { procRoot },
    );
    assert.equal(c.kind, 'unidentified');
  } finally {
    fs.rmSync(procRoot, { recursive: true, force: true });
  }
});

test('tcpCaller reads the process of the socket from /proc: filesystem ids, and no groups from an empty line', async (t) => {
  if (process.getuid?.() !== 0) return t.skip('needs root to chown the fake /proc entry');
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'fakeproc-'));
  try {
    fs.mkdirSync(path.join(root, 'net'));
    const header =
      '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n';
    // Client 127.0.0.1:40000 -> server 127.0.0.1:4001, uid 1234, inode 999.
    fs.writeFileSync(
      path.join(root, 'net', 'tcp'),
      `${header}   0: 0100007F:9C40 0100007F:0FA1 01 00000000:00000000 00:00000000 00000000  1234        0 999 1\n`,
    );
    fs.mkdirSync(path.join(root, '77', 'fd'), { recursive: true });
    fs.symlinkSync('socket:[999]', path.join(root, '77', 'fd', '3'));
    fs.writeFileSync(
      path.join(root, '77', 'status'),
      'Name:\tcurl\nUid:\t1234\t1234\t1234\t1234\nGid:\t50\t50\t50\t51\nGroups:\t\nNStgid:\t77\n',
    );
    fs.chownSync(path.join(root, '77'), 1234, 50);
    const c = await tcpCaller(
      { remoteAddress: '127.0.0.1', remotePort: 40000, localAddress: '127.0.0.1', localPort: 4001 },
      { procRoot: root },
    );
    assert.deepEqual(c, {
      kind: 'local',
      cred: { uid: 1234, gid: 51, groups: [], pid: 77 },
      via: 'the proxy',
    });
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
