// A 1 GiB body through the proxy's P2P path: byte-exact at the client, and dfdaemon's memory stays flat (the
// body is streamed piece by piece from the content file, never held whole).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { startDaemon, stopDaemon, type DaemonHandle } from '../helpers/daemon.js';
import { Origin, contentSha256 } from '../helpers/origin.js';

const GiB = 1024 * 1024 * 1024;

/** The peak resident set of a process (VmHWM), bytes. */
function peakRss(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) * 1024;
}

const origin = new Origin();
let d: DaemonHandle;

before(async () => {
  await origin.start();
  d = await startDaemon();
});

after(async () => {
  if (d) await stopDaemon(d);
  await origin.stop();
});

test('1 GiB streamed through the proxy via P2P: exact bytes, flat dfdaemon memory', async () => {
  const url = origin.add('/big', { size: GiB, seed: 42 });
  const expected = contentSha256(42, GiB);
  const baseline = peakRss(d.proc.pid!);
  const hash = createHash('sha256');
  let received = 0;
  const code = await new Promise<number | null>((resolve, reject) => {
    const p = spawn(
      'curl',
      ['-sS', '-x', `http://127.0.0.1:${d.proxyPort}`, '-H', 'X-Dragonfly-Use-P2P: true', url],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    p.stdout.on('data', (c: Buffer) => {
      hash.update(c);
      received += c.length;
    });
    p.once('error', reject);
    p.once('close', resolve);
  });
  assert.equal(code, 0);
  assert.equal(received, GiB);
  assert.equal(hash.digest('hex'), expected);
  const peak = peakRss(d.proc.pid!);
  // Holding the body (or even a tenth of it) would show; a few pieces in flight do not.
  assert.ok(
    peak - baseline < 160 * 1024 * 1024,
    `dfdaemon peak RSS grew by ${(peak - baseline) / 2 ** 20} MiB`,
  );
});
