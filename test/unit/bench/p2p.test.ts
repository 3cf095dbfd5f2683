// The P2P benchmark's arithmetic and read-back: the distribution bound, the scenario settings, the log counts
// and the piece records (from a real metadata store).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { distributionBound, equalLinks } from '../../../bench/p2p/bound.js';
import {
  daemonLogCounts,
  pieceTimeline,
  summarizePieces,
  uploadedBytes,
} from '../../../bench/p2p/collect.js';
import { goodputBytes, settingsFromEnv } from '../../../bench/p2p/scenarios.js';
import { MetadataStore } from '../../../src/storage/metadata.js';

const MIB = 2 ** 20;

test('with equal links the bound is the one-link time S·8/R', () => {
  const b = distributionBound(equalLinks(256 * MIB, 7, 100e6));
  assert.equal(b.seconds, (256 * MIB * 8) / 100e6);
  assert.equal(b.binding, 'seed upload = slowest download = cold seed');
  // N·S/(u_s+Σu) = 7/8 of it
  assert.equal(b.terms.find((t) => t.name === 'total upload')!.seconds, ((256 * MIB * 8) / 100e6) * (7 / 8));
});

test('the bound takes the largest of its terms with unequal links', () => {
  const S = 100 * 8e6; // 100 MB in bits
  // A fast seed, slow peer uplinks: the aggregate term binds.
  let b = distributionBound({
    size: 100e6,
    seedUp: 1e9,
    peerUp: [10e6, 10e6, 10e6],
    peerDown: [1e9, 1e9, 1e9],
  });
  assert.equal(b.binding, 'total upload');
  assert.equal(b.seconds, (3 * S) / (1e9 + 30e6));
  // A slow downloader binds.
  b = distributionBound({ size: 100e6, seedUp: 1e9, peerUp: [1e9, 1e9], peerDown: [1e9, 50e6] });
  assert.equal(b.binding, 'slowest download');
  assert.equal(b.seconds, S / 50e6);
  // A slow seed binds; a cold seed behind a slower source link binds harder.
  b = distributionBound({ size: 100e6, seedUp: 20e6, peerUp: [1e9], peerDown: [1e9] });
  assert.equal(b.binding, 'seed upload');
  b = distributionBound({ size: 100e6, seedUp: 20e6, peerUp: [1e9], peerDown: [1e9], sourceIn: 10e6 });
  assert.equal(b.binding, 'cold seed');
  assert.equal(b.seconds, S / 10e6);
});

test('scenarios: all presets by default, a list selects, overrides are recorded', () => {
  const all = settingsFromEnv({});
  assert.deepEqual(
    all.scenarios.map((s) => s.name),
    ['cold-seed', '8x256M', '8x1G', '32x64M'],
  );
  assert.equal(all.repeats, 3);
  assert.deepEqual(
    all.scenarios.map((s) => [s.peers, s.rate, s.size / MIB, s.target]),
    [
      [1, '100mbit', 256, 1.1],
      [7, '100mbit', 256, 1.3],
      [7, '100mbit', 1024, 1.15],
      [32, '10mbit', 64, 1.5],
    ],
  );
  const few = settingsFromEnv({
    P2P_SCENARIOS: 'cold-seed,8x1G',
    P2P_SIZE: '16MiB',
    P2P_PEERS: '3',
    P2P_REPEATS: '1',
  });
  assert.deepEqual(
    few.scenarios.map((s) => [s.name, s.peers, s.size, s.overridden]),
    [
      ['cold-seed', 1, 16 * MIB, ['size 16 MiB']],
      ['8x1G', 3, 16 * MIB, ['peers 3', 'size 16 MiB']],
    ],
  );
  assert.equal(few.repeats, 1);
  assert.ok(all.scenarios.every((s) => s.latency === '400ms'));
  const shortQueues = settingsFromEnv({ P2P_SCENARIOS: '32x64M', P2P_TBF_LATENCY: '50ms' }).scenarios[0]!;
  assert.deepEqual([shortQueues.latency, shortQueues.overridden], ['50ms', ['tbf latency 50ms']]);
  assert.throws(() => settingsFromEnv({ P2P_SCENARIOS: '9x9G' }), /unknown "9x9G"/);
  assert.throws(() => settingsFromEnv({ P2P_REPEATS: '0' }), /P2P_REPEATS/);
});

test('the goodput curl lasts about the asked seconds at the link rate, within [4 MiB, S]', () => {
  const [, s256] = settingsFromEnv({ P2P_SCENARIOS: 'cold-seed,8x256M' }).scenarios;
  assert.equal(goodputBytes(s256!, 10), 119 * MIB); // 100 Mbit/s · 10 s = 125 MB
  const tiny = settingsFromEnv({ P2P_SCENARIOS: '32x64M', P2P_SIZE: '2MiB' }).scenarios[0]!;
  assert.equal(goodputBytes(tiny, 10), 2 * MIB);
});

test('log counts: reschedules from the candidate-parents lines when no reschedule line exists', () => {
  const dir = mkdtempSync(join(tmpdir(), 'p2p-test-'));
  try {
    const names = new Map([
      ['10.0.0.10', 'seed'],
      ['10.0.0.11', 'peer1'],
    ]);
    const line = (o: object) => JSON.stringify({ level: 30, ...o });
    const path = join(dir, 'd.log');
    writeFileSync(
      path,
      [
        line({ taskId: 't', msg: 'download task' }),
        line({ taskId: 't', msg: 'scheduler gave candidate parents', parents: ['10.0.0.10-h0-u-seed'] }),
        line({
          taskId: 't',
          msg: 'scheduler gave candidate parents',
          parents: ['10.0.0.11-h1-u', '10.0.0.10-h0-v-seed'],
        }),
        line({ taskId: 'other', msg: 'scheduler gave candidate parents', parents: [] }),
        JSON.stringify({ level: 40, taskId: 't', msg: 'piece from parent failed' }),
        'not json',
      ].join('\n'),
    );
    const c = daemonLogCounts(path, 't', names);
    assert.equal(c.candidateParents, 2);
    assert.equal(c.reschedules, 1);
    assert.equal(c.rescheduleSource, 'candidate-parents lines − 1');
    assert.equal(c.pieceFailed, 1);
    assert.equal(c.warn, 1);
    assert.deepEqual(c.parentsOffered, ['seed', 'peer1']);
    writeFileSync(path, `\n${line({ taskId: 't', msg: 'sent ReschedulePeerRequest' })}\n`, { flag: 'a' });
    const d = daemonLogCounts(path, 't', names);
    assert.equal(d.reschedules, 1);
    assert.equal(d.rescheduleSource, 'reschedule lines');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('piece records are read back from a metadata store, with where each piece came from', () => {
  const dir = mkdtempSync(join(tmpdir(), 'p2p-test-'));
  try {
    let now = 1_000_000;
    const db = join(dir, 'dfdaemon.db');
    const store = new MetadataStore(db, { now: () => now });
    store.upsertTask('t', { contentLength: 12 * MIB, pieceLength: 4 * MIB, responseHeader: {} });
    const piece = (number: number, parentId: string | undefined, trafficType: number) => {
      now += 100;
      store.finishPiece({
        taskId: 't',
        number,
        offset: number * 4 * MIB,
        length: 4 * MIB,
        digest: 'crc32:0',
        parentId,
        trafficType,
        costMs: 50,
      });
    };
    piece(2, '10.0.0.10-h0-u-seed', 1);
    piece(0, '10.0.0.12-h2-u', 1);
    piece(1, undefined, 0);
    store.close();
    const names = new Map([
      ['10.0.0.10', 'seed'],
      ['10.0.0.12', 'peer2'],
    ]);
    const { pieces, error } = pieceTimeline(db, 't', 1_000_000, names);
    assert.equal(error, undefined);
    assert.deepEqual(
      pieces.map((p) => [p.n, p.from, p.type, p.finished, p.cost]),
      [
        [2, 'seed', 'peer', 100, 50],
        [0, 'peer2', 'peer', 200, 50],
        [1, 'origin', 'source', 300, 50],
      ],
    );
    const s = summarizePieces(pieces);
    assert.equal(s.pieces, 3);
    assert.equal(s.fromSeed, 1 / 3);
    assert.equal(s.fromPeers, 1 / 3);
    assert.equal(s.fromSource, 1 / 3);
    assert.equal(s.firstStartS, 0.05);
    assert.equal(s.lastS, 0.3);
    assert.deepEqual(
      [...uploadedBytes(new Map([['peer1', pieces]]))],
      [
        ['seed', 4 * MIB],
        ['peer2', 4 * MIB],
      ],
    );
    assert.match(pieceTimeline(join(dir, 'missing.db'), 't', 0, names).error ?? '', /./);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
