// A swarm against the real dfscheduler process: 30 peers (AnnouncePeer clients, one connection each, as 30 hosts
// would have) register for a new task at once while the seed peer — a real dfdaemon — is still starting, because
// the origin is slow to answer. Upstream's scheduler sends such peers to the origin after 4 empty rounds (about
// 2 s); ours keeps them waiting for the seed, so the origin serves the file once, to the seed.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { status as GrpcStatus } from '@grpc/grpc-js';
import type { Peer } from '../../src/gen/common.js';
import type { SchedulerClient } from '../../src/gen/scheduler.js';
import { taskIdFromUrl } from '../../src/core/task-id.js';
import { startDaemon, stopDaemon, type DaemonHandle } from '../helpers/daemon.js';
import { Origin } from '../helpers/origin.js';
import { announceHost, download, PeerStream, piece, schedulerClient } from '../helpers/scheduler-client.js';
import { startScheduler, stopScheduler, type SchedulerHandle } from '../helpers/scheduler-process.js';

const MiB = 1024 * 1024;
const PEERS = 30;
const SIZE = 16 * MiB;
const PIECES = 4;
/** Every origin answer waits this long, so the seed registers well after upstream's 4 × 500 ms of retries. */
const ORIGIN_DELAY_MS = 3000;
/**
 * A seed fetches from the origin on the scheduler's behalf (a remote caller), and the test origin is on loopback,
 * which a remote caller may reach only when security.allowedPrivateSources names it.
 */
const SEED = 'seedPeer:\n  enable: true\n  type: super\nsecurity:\n  allowedPrivateSources: [127.0.0.1]\n';

interface Outcome {
  peerId: string;
  parents: Peer[];
  needBackToSource: boolean;
  repliedAfterMs: number;
}

/**
 * One peer as the client drives it: register, and on NormalTaskResponse report Started, every piece from its
 * first parent, and Finished (the scheduler only learns what peers report; the bytes do not matter here).
 */
async function runPeer(client: SchedulerClient, i: number, taskId: string, url: string): Promise<Outcome> {
  const peerId = `swarm-peer-${i}`;
  const s = new PeerStream(client, `swarm-host-${i}`, taskId, peerId);
  const started = Date.now();
  s.register(
    download({ url, actualContentLength: SIZE, actualPieceLength: 4 * MiB, actualPieceCount: PIECES }),
  );
  const reply = await s.next(60_000);
  const outcome: Outcome = {
    peerId,
    parents: reply?.normalTaskResponse?.candidateParents ?? [],
    needBackToSource: !!reply?.needBackToSourceResponse,
    repliedAfterMs: Date.now() - started,
  };
  if (outcome.parents.length === 0) {
    s.cancel();
    return outcome;
  }
  s.send({ downloadPeerStartedRequest: {} });
  for (let n = 0; n < PIECES; n++) {
    s.send({ downloadPieceFinishedRequest: { piece: piece(n, outcome.parents[0]!.id) } });
  }
  s.send({ downloadPeerFinishedRequest: {} });
  assert.equal((await s.finalStatus(10_000)).code, GrpcStatus.OK, peerId);
  return outcome;
}

/** An origin with a slow file, dfscheduler with `schedulerYaml`, a real seed dfdaemon and 30 announced hosts. */
class Swarm {
  readonly origin = new Origin();
  scheduler!: SchedulerHandle;
  seed!: DaemonHandle;
  readonly clients: SchedulerClient[] = [];

  static async start(schedulerYaml?: string): Promise<Swarm> {
    const w = new Swarm();
    await w.origin.start();
    w.scheduler = await startScheduler({ retryInterval: '500ms', scheduler: schedulerYaml });
    w.seed = await startDaemon({ schedulerAddr: w.scheduler.addr, extraConfig: SEED });
    for (let i = 0; i < PEERS; i++) {
      const c = schedulerClient(w.scheduler.port);
      w.clients.push(c);
      await announceHost(c, { id: `swarm-host-${i}`, hostname: `swarm-host-${i}`, port: 10_000 + i });
    }
    return w;
  }

  /** All 30 peers register for a new slow task at once; resolves with what each was told. */
  async run(): Promise<Outcome[]> {
    const url = this.origin.add('/swarm.bin', { size: SIZE, seed: 30, delayMs: ORIGIN_DELAY_MS });
    const taskId = taskIdFromUrl({ url });
    return Promise.all(this.clients.map((c, i) => runPeer(c, i, taskId, url)));
  }

  /** The origin's piece requests, once the seed made all of them (or after 10 s). */
  async originRanges(): Promise<string[]> {
    for (let i = 0; i < 400 && this.origin.pieceRequests('/swarm.bin').length < PIECES; i++) {
      await new Promise((r) => setTimeout(r, 25));
    }
    // A second fetch of some piece would come right after; give it a moment to show.
    await new Promise((r) => setTimeout(r, 200));
    return this.origin.pieceRequests('/swarm.bin').map((r) => r.range!);
  }

  async close(): Promise<void> {
    for (const c of this.clients) c.close();
    await stopDaemon(this.seed);
    await stopScheduler(this.scheduler);
    await this.origin.stop();
  }
}

describe('scheduler swarm: 30 peers at once while the seed starts', () => {
  test('none is sent back to source, the origin serves each piece once (to the seed), offers mix seed and peers', async () => {
    const w = await Swarm.start();
    try {
      const outcomes = await w.run();
      const sentToSource = outcomes.filter((o) => o.needBackToSource).map((o) => o.peerId);
      assert.deepEqual(sentToSource, [], 'peers told to go back to source');
      for (const o of outcomes) assert.ok(o.parents.length > 0, `${o.peerId} got no parents`);
      // They really waited past upstream's back-to-source point (4 rounds of 500 ms ± 25 %).
      const first = Math.min(...outcomes.map((o) => o.repliedAfterMs));
      assert.ok(first >= 2500, `first reply after ${first} ms`);

      // The seed is offered, and so are normal peers: the swarm trades instead of everyone leaning on the seed.
      const isSeed = (p: Peer) => p.host?.type === 1;
      assert.ok(
        outcomes.some((o) => o.parents.some(isSeed)),
        'the seed was offered',
      );
      assert.ok(
        outcomes.some((o) => o.parents.some((p) => !isSeed(p))),
        'a normal peer was offered',
      );

      // The seed fetched every piece from the origin exactly once; the peers fetched nothing.
      const ranges = await w.originRanges();
      assert.equal(ranges.length, PIECES, ranges.join(' '));
      assert.equal(new Set(ranges).size, PIECES, ranges.join(' '));
      assert.ok(
        w.scheduler.logs.some((l) => l.includes('seed peer triggers download task')),
        'the scheduler triggered the seed',
      );
    } finally {
      await w.close();
    }
  });

  test('swarm: false keeps upstream’s behaviour: peers go back to source while the seed starts', async () => {
    const w = await Swarm.start('swarm: false');
    try {
      const outcomes = await w.run();
      assert.ok(
        outcomes.some((o) => o.needBackToSource),
        'upstream sends waiting peers to the source after its retries',
      );
    } finally {
      await w.close();
    }
  });
});
