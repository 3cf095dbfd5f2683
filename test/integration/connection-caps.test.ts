// Connection caps (issue 16, item 11): 1100 half-open connections to the Vortex port of a dfdaemon limited to 1024
// open files took all its descriptors, so dfget and /healthy failed until those connections timed out. Every TCP
// listener now has a cap (storage.server / upload.server / proxy.server / health.server / metrics.server
// `maxConnections`, lowered at start to fit the open-file limit), and a connection beyond it is refused at once.
//
// One dfdaemon runs under `ulimit -n 1024` with the default config. For each listener in turn, the test opens 1100
// connections that send nothing and keeps them open; the daemon must hold at most the listener's cap of them
// (the others closed by the daemon at once, Vortex's with an Error packet first), and meanwhile a dfget of a new
// URL must succeed byte-exact and /healthy (or /metrics, while the health port is the one flooded) answer 200.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { Origin, contentSha256 } from '../helpers/origin.js';
import { DFDAEMON, dfget, startDaemon, stopDaemon, tempDir, type DaemonHandle } from '../helpers/daemon.js';
import { sha256File } from '../helpers/files.js';
import { connectionsHeld } from '../helpers/proc-sockets.js';
import { decodePacket } from '../../src/vortex/codec.js';

const MiB = 1024 * 1024;
const FLOOD = 1100;
const FD_LIMIT = 1024;

interface Caps {
  vortex: number;
  upload: number;
  proxy: number;
  health: number;
  metrics: number;
}

/** A connection of the flood: whether the daemon closed it, and what it sent before. */
interface Held {
  socket: Socket;
  closed: boolean;
  received: Buffer[];
}

/** Opens `n` connections to 127.0.0.1:port that send nothing; resolves once each is connected or closed. */
async function flood(port: number, n: number): Promise<Held[]> {
  const held: Held[] = [];
  await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<void>((resolve) => {
          const h: Held = { socket: connect({ host: '127.0.0.1', port }), closed: false, received: [] };
          held.push(h);
          h.socket.on('data', (d: Buffer) => h.received.push(d));
          h.socket.on('error', () => undefined);
          h.socket.on('close', () => {
            h.closed = true;
            resolve();
          });
          h.socket.on('connect', () => resolve());
        }),
    ),
  );
  return held;
}

describe(
  `connection caps under a ${FD_LIMIT}-file limit`,
  { skip: process.platform !== 'linux' && 'needs ulimit' },
  () => {
    const origin = new Origin();
    let daemon: DaemonHandle;
    let dir: string;
    let out: string;
    let caps: Caps;
    let n = 0;

    before(async () => {
      await origin.start();
      dir = tempDir('dft-caps-');
      out = tempDir('dft-caps-out-');
      const wrapper = join(dir, 'dfdaemon-ulimit.sh');
      writeFileSync(
        wrapper,
        `#!/bin/sh\nulimit -n ${FD_LIMIT} || exit 97\nexec "${process.execPath}" "${DFDAEMON}" "$@"\n`,
      );
      chmodSync(wrapper, 0o755);
      daemon = await startDaemon({ bin: wrapper });
      // The caps dfdaemon applies (its log says); a daemon that logs none is held to half the file limit each.
      const line = daemon.logs.find((l) => l.includes('"connection caps"'));
      const half = FD_LIMIT / 2 - 1;
      caps = line
        ? (JSON.parse(line) as { caps: Caps }).caps
        : { vortex: half, upload: half, proxy: half, health: half, metrics: half };
      for (const [name, cap] of Object.entries(caps)) {
        assert.ok(cap > 0 && cap < FD_LIMIT / 2, `${name} cap ${cap} fits the open-file limit`);
      }
    });

    after(async () => {
      if (daemon) await stopDaemon(daemon);
      await origin.stop();
      rmSync(dir, { recursive: true, force: true });
      rmSync(out, { recursive: true, force: true });
    });

    /** dfget of a URL the daemon has not seen: it needs new files and connections. */
    async function assertDownloadWorks(): Promise<void> {
      n++;
      const url = origin.add(`/file-${n}`, { size: 6 * MiB + n, seed: 100 + n });
      const r = await dfget(daemon, url, join(out, `file-${n}`));
      assert.equal(r.code, 0, r.stderr);
      assert.equal(await sha256File(join(out, `file-${n}`)), contentSha256(100 + n, 6 * MiB + n));
    }

    async function assertHttpOk(port: number, path: string): Promise<void> {
      const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(5000) });
      assert.equal(res.status, 200, path);
      await res.arrayBuffer();
    }

    const listeners: Array<{ name: keyof Caps; port: () => number; vortex?: true }> = [
      { name: 'vortex', port: () => daemon.vortexPort, vortex: true },
      { name: 'upload', port: () => daemon.uploadPort },
      { name: 'proxy', port: () => daemon.proxyPort! },
      { name: 'health', port: () => daemon.healthPort },
      { name: 'metrics', port: () => daemon.metricsPort },
    ];

    for (const l of listeners) {
      test(`${FLOOD} idle connections to the ${l.name} port: at most its cap held, dfget and health unaffected`, async () => {
        const held = await flood(l.port(), FLOOD);
        try {
          // Refusals are immediate once the daemon accepts, but the client cannot see when that is: a connection
          // counts as connected once the kernel completed it, and one whose last ACK found the listen queue full
          // reaches the daemon only at a later SYN-ACK retransmit (1, 3, 7, 15 s ...). So the daemon's own
          // descriptors are counted (/proc), after giving it a moment to drain the queue. Held Vortex connections
          // are closed after 10 s without a request, so this looks sooner than that.
          const deadline = Date.now() + 8000;
          let open = held.filter((h) => !h.closed).length;
          while (open > caps[l.name] && Date.now() < deadline) {
            await new Promise((r) => setTimeout(r, 50));
            open = held.filter((h) => !h.closed).length;
          }
          const daemonHolds = connectionsHeld(daemon.proc.pid!, l.port());
          const seen = `the daemon holds ${daemonHolds}, the client sees ${open} open; cap ${caps[l.name]}`;
          assert.ok(daemonHolds <= caps[l.name], seen);
          assert.ok(daemonHolds >= Math.min(caps[l.name], 10), `the cap admits connections: ${seen}`);
          if (l.vortex) {
            // A refused child gets an Error packet saying why, so it tries again later instead of dropping us.
            const refused = held.find((h) => h.closed && h.received.length > 0);
            assert.ok(refused, 'a refused connection got an answer');
            const packet = decodePacket(Buffer.concat(refused.received));
            assert.equal(packet.kind, 'error');
            assert.match((packet as { message: string }).message, /too many connections/);
          }
          await assertDownloadWorks();
          if (l.name === 'health') await assertHttpOk(daemon.metricsPort, '/metrics');
          else await assertHttpOk(daemon.healthPort, '/healthy');
        } finally {
          for (const h of held) h.socket.destroy();
        }
        // Once the flood is gone, the listener serves again.
        await new Promise((r) => setTimeout(r, 200));
        if (l.name === 'health') await assertHttpOk(daemon.healthPort, '/healthy');
        if (l.name === 'metrics') await assertHttpOk(daemon.metricsPort, '/metrics');
      });
    }
  },
);
