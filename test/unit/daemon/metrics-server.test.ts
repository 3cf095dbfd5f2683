// DELETE /metrics resets the counters only for a client on this host (issue 16 item 7: it was reachable from the
// network, and through the proxy).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { detectHostIp } from '../../../src/config/load.js';
import { startMetricsServer } from '../../../src/daemon/http/servers.js';
import { DaemonMetrics } from '../../../src/daemon/metrics.js';

const hostIp = detectHostIp(false);

test('DELETE /metrics: 403 from the network address, 200 from loopback', { skip: !hostIp }, async () => {
  const metrics = new DaemonMetrics({ gitVersion: 't', gitCommit: '', buildTime: '' });
  let resets = 0;
  metrics.reset = () => void resets++;
  const s = await startMetricsServer('0.0.0.0', 0, metrics);
  try {
    const remote = await fetch(`http://${hostIp}:${s.port}/metrics`, { method: 'DELETE' });
    assert.equal(remote.status, 403);
    assert.match(await remote.text(), /only from this host/);
    assert.equal(resets, 0);
    assert.equal((await fetch(`http://${hostIp}:${s.port}/metrics`)).status, 200, 'scrapes stay open');
    const local = await fetch(`http://127.0.0.1:${s.port}/metrics`, { method: 'DELETE' });
    assert.equal(local.status, 200);
    assert.equal(resets, 1);
  } finally {
    await s.close();
  }
});
