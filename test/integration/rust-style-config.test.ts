// A dfdaemon.yaml written for the upstream Rust client (its key names and layout, as dragonfly-client 1.5's
// dragonfly-client-config documents them and its docker-compose templates write them) is accepted by our dfdaemon
// unchanged: it starts, every listener, the socket and the storage dir are where the file says, a download works,
// and what ours does not use is a warning, never an error. test/interop/rust/ starts the Rust dfdaemon on the same
// writer's output, so the file is a valid Rust client config too.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_FILTERED_QUERY_PARAMS, taskIdFromUrl } from '../../src/core/task-id.js';
import { Origin, contentSha256 } from '../helpers/origin.js';
import { dfget, startDaemon, stopDaemon, tempDir, type DaemonHandle } from '../helpers/daemon.js';
import { sha256File } from '../helpers/files.js';
import { freeClientPorts, rustStyleConfig } from '../helpers/upstream/rust-client.js';

const MiB = 1024 * 1024;

describe('a dfdaemon.yaml written for the Rust client', { timeout: 120_000 }, () => {
  test('our dfdaemon accepts it unchanged; the keys both know mean the same', async () => {
    const dir = tempDir('dft-interop-config-');
    const ports = await freeClientPorts();
    const config = rustStyleConfig(dir, ports, { hostname: `rust-style-${process.pid}` });
    const origin = new Origin();
    await origin.start();
    let d: DaemonHandle | undefined;
    try {
      d = await startDaemon({ dir, config });
      // Every listener where the file says, the socket and the storage dir too.
      assert.equal(d.uploadPort, ports.upload);
      assert.equal(d.vortexPort, ports.vortex);
      assert.equal(d.healthPort, ports.health);
      assert.equal(d.metricsPort, ports.metrics);
      assert.equal(d.proxyPort, ports.proxy);
      const size = 5 * MiB + 1;
      const url = origin.add('/cfg.bin', { size, seed: 70 });
      const r = await dfget(d, url, join(dir, 'cfg.out'));
      assert.equal(r.code, 0, r.stderr);
      assert.equal(await sha256File(join(dir, 'cfg.out')), contentSha256(70, size));
      const id = taskIdFromUrl({ url, filteredQueryParams: DEFAULT_FILTERED_QUERY_PARAMS });
      assert.ok(
        existsSync(join(dir, 'storage', 'content', 'tasks', id.slice(0, 3), id)),
        'content under storage.dir',
      );
      // Nothing in it is fatal; what ours does not use is named in a warning.
      const errors = d.logs.filter((l) => /"level":(50|60)/.test(l));
      assert.deepEqual(errors, []);
    } finally {
      if (d) await stopDaemon(d);
      await origin.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
