// The soak's heap snapshots (SOAK_HEAP_SNAPSHOTS=1) explain RSS growth by what grew in the V8 heap; this checks on
// a real process that the summary finds objects by constructor and that the growth between two snapshots names
// what was allocated in between.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  heapGrowth,
  heapSnapshotNodeOptions,
  summarizeHeapSnapshot,
  takeHeapSnapshot,
} from '../../../bench/heap-snapshot.js';
import { stopByPid } from '../../helpers/child-process.js';

const CHILD = `
  class RetainedRecord { constructor(i) { this.i = i; this.name = 'r' + i; } }
  globalThis.kept = [];
  process.on('message', (m) => {
    if (m === 'grow') for (let i = 0; i < 50000; i++) globalThis.kept.push(new RetainedRecord(i));
    process.send('done');
  });
  process.send('ready');`;

test('two snapshots of a process name the objects it allocated in between', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dft-heap-'));
  const child = spawn(process.execPath, ['-e', CHILD], {
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    env: { ...process.env, NODE_OPTIONS: heapSnapshotNodeOptions(dir) },
  });
  const next = () => new Promise((resolve) => child.once('message', resolve));
  try {
    await next();
    const before = summarizeHeapSnapshot(await takeHeapSnapshot(child.pid!, dir, 30_000));
    child.send('grow');
    await next();
    const after = summarizeHeapSnapshot(await takeHeapSnapshot(child.pid!, dir, 30_000));
    assert.equal(before.byGroup.get('RetainedRecord') ?? 0, 0);
    // Each record is at least a header and two fields (compressed pointers: 4 bytes each).
    assert.ok((after.byGroup.get('RetainedRecord') ?? 0) >= 50000 * 12);
    assert.ok(after.totalBytes > before.totalBytes);
    const top = heapGrowth(before, after, 3).map((g) => g.group);
    assert.ok(top.includes('RetainedRecord'), `grew most: ${top.join(', ')}`);
  } finally {
    await stopByPid(child, 5000);
    rmSync(dir, { recursive: true, force: true });
  }
});
