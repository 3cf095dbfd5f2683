// The embedded scheduler's store is a copy for restarts (scheduler/embedded/state-writes.ts): when a write to it fails
// — here a real SQLITE_FULL, the store's database capped at the pages it has — the RPC that changed the model still
// succeeds, the failure is logged (once per interval, with how many were not), and writes resume when there is room.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import { pino } from 'pino';
import { EmbeddedScheduler } from '../../../../src/scheduler/embedded/scheduler-server.js';
import { bestEffortWrites } from '../../../../src/scheduler/embedded/state-writes.js';
import { SqliteSchedulerStore } from '../../../../src/storage/scheduler-store.js';
import { tempDir } from '../../../helpers/daemon.js';
import { announceHost, rpc, schedulerClient } from '../../../helpers/scheduler-client.js';

/** Enough hosts to fill the pages the store starts with. */
const HOSTS = 200;

/** The store's own connection: a test caps its size to make the disk "full" for SQLite itself. */
const dbOf = (s: SqliteSchedulerStore) => (s as unknown as { db: Database.Database }).db;

function capAtCurrentSize(s: SqliteSchedulerStore): void {
  const db = dbOf(s);
  db.pragma(`max_page_count = ${db.pragma('page_count', { simple: true }) as number}`);
}

function logLines(): { log: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'warn' }, { write: (l: string) => void lines.push(JSON.parse(l)) });
  return { log, lines };
}

test('a full store does not fail AnnounceHost; the hosts saved before it filled survive a restart', async (t) => {
  const dir = tempDir('state-writes-');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'scheduler.db');
  const store = new SqliteSchedulerStore(path);
  capAtCurrentSize(store);
  const { log, lines } = logLines();
  const s = new EmbeddedScheduler({ ip: '127.0.0.1', port: 0, log, store });
  const c = schedulerClient(await s.start());
  try {
    for (let i = 0; i < HOSTS; i++)
      await announceHost(c, { id: `host-${i}`, ip: '127.0.0.1', port: 1000 + i });
    const listed = (await rpc(c).listHosts({})).hosts.map((h) => h.id);
    assert.equal(listed.length, HOSTS, 'every host is known in memory');
  } finally {
    c.close();
    await s.stop();
  }
  const warnings = lines.filter((l) => String(l.msg).startsWith('scheduler state not saved (saveHost)'));
  assert.equal(warnings.length, 1, 'one warning per interval, not one per write');
  assert.match(String(warnings[0]!.msg), /database or disk is full/);

  const again = new SqliteSchedulerStore(path);
  try {
    const saved = again.hosts().map((h) => h.id);
    assert.ok(
      saved.length > 0 && saved.length < HOSTS,
      `some hosts saved before the store filled: ${saved.length}`,
    );
    assert.deepEqual(
      saved,
      Array.from({ length: saved.length }, (_, i) => `host-${i}`),
      'the first hosts, in order',
    );
  } finally {
    again.close();
  }
});

test('a failed write is logged with how many failed since; the next write with room is saved', (t) => {
  const dir = tempDir('state-writes-');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const inner = new SqliteSchedulerStore(join(dir, 'scheduler.db'));
  t.after(() => inner.close());
  capAtCurrentSize(inner);
  const { log, lines } = logLines();
  let now = 0;
  const store = bestEffortWrites(inner, log, () => now);
  const host = (id: string) => ({ id, info: new Uint8Array(300), intervalMs: 1000 });

  let i = 0;
  while (lines.length === 0 && i < 100) store.saveHost(host(`h${i++}`));
  assert.equal(lines.length, 1, 'the store filled up');
  const firstFailed = i - 1;
  for (let k = 0; k < 5; k++) store.saveHost(host(`late-${k}`));
  assert.equal(lines.length, 1, 'within the interval the failures are only counted');

  now += 10_000;
  store.deleteHost('nobody'); // a delete of nothing needs no page: it succeeds
  store.saveHost(host('after-interval'));
  assert.equal(lines.length, 2);
  assert.equal(lines[1]!.failedSinceLastWarning, 5);
  assert.equal(lines[1]!.write, 'saveHost');

  dbOf(inner).pragma('max_page_count = 1000000');
  store.saveHost(host('with-room'));
  const saved = inner.hosts().map((h) => h.id);
  assert.ok(saved.includes('with-room'), 'saved once there is room');
  assert.ok(!saved.includes(`h${firstFailed}`), 'the failed write was not saved');
});
