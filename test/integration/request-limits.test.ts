// download.server.requestRateLimit / requestBufferSize against a real dfdaemon: a burst of StatTask calls over
// the unix socket gets RESOURCE_EXHAUSTED naming the key for the calls beyond the rate and the wait queue.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { status, type ServiceError } from '@grpc/grpc-js';
import { connectDaemon, downloadClient } from '../../src/cli/daemon-client.js';
import { metricsText, startDaemon, stopDaemon, type DaemonHandle } from '../helpers/daemon.js';

describe('gRPC request limits', () => {
  let daemon: DaemonHandle;
  before(async () => {
    daemon = await startDaemon({ downloadServer: 'requestRateLimit: 2\nrequestBufferSize: 1' });
  });
  after(async () => {
    await stopDaemon(daemon);
  });

  test('a burst beyond requestRateLimit + requestBufferSize is refused with RESOURCE_EXHAUSTED', async () => {
    const client = downloadClient(daemon.socket);
    try {
      await connectDaemon(client, daemon.socket);
      const results = await Promise.all(
        Array.from(
          { length: 12 },
          (_, i) =>
            new Promise<ServiceError | null>((resolve) =>
              client.statTask({ taskId: `no-such-task-${i}` }, (err) => resolve(err)),
            ),
        ),
      );
      const exhausted = results.filter((e) => e?.code === status.RESOURCE_EXHAUSTED);
      const served = results.filter((e) => e?.code !== status.RESOURCE_EXHAUSTED);
      // 2 tokens at once + 1 waiting (served within half a second); the rest are refused.
      assert.ok(served.length >= 3, `served ${served.length}`);
      assert.ok(exhausted.length >= 1, `codes: ${results.map((e) => e?.code).join(',')}`);
      assert.match(exhausted[0]!.details, /more than 2 requests\/s \(download\.server\.requestRateLimit\)/);
      assert.match(exhausted[0]!.details, /download\.server\.requestBufferSize/);
      const text = await metricsText(daemon);
      assert.match(text, /dragonfly_client_request_limit_rejected_total\{server="download"\} [1-9]/);
      assert.match(text, /dragonfly_client_adaptive_rate_limit_in_flight/);
    } finally {
      client.close();
    }
  });
});
