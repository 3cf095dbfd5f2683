// Disk space for downloads (src/storage/disk-space.ts): reservations against free space so that concurrent
// downloads cannot overcommit the disk, and the metadata reserve that lets a delete succeed on a full disk.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DiskSpace } from '../../../src/storage/disk-space.js';
import { Storage } from '../../../src/storage/storage.js';
import { mountTmpfs, unmountTmpfs } from '../../helpers/tmpfs.js';

const KiB = 1024;
const MiB = 1024 * KiB;

const dirs: string[] = [];
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'df-space-'));
  dirs.push(d);
  return d;
}

const isNoSpace = (re: RegExp) => (e: unknown) =>
  (e as { code?: string }).code === 'NO_SPACE' && re.test((e as Error).message);

test('reservations: a download is admitted only beside what the others have still to write', async () => {
  const dir = tempDir();
  let free = 100 * MiB;
  const space = new DiskSpace({
    contentDir: dir,
    reservePath: path.join(dir, 'reserve'),
    reserveBytes: 64 * KiB,
    freeBytes: async () => free,
  });
  assert.equal(await space.ensureReserve(), true);
  assert.equal(fs.statSync(path.join(dir, 'reserve')).size, 64 * KiB);
  await space.reserve('a', 60 * MiB);
  // 60 MiB + 60 MiB > 100 MiB: refused, naming what is held by whom.
  await assert.rejects(
    space.reserve('b', 60 * MiB),
    isNoSpace(/task b: need 62914560 bytes, 104857600 free of which 62914560 are reserved by downloads/),
  );
  await space.reserve('b', 40 * MiB);
  assert.equal(space.reserved, 100 * MiB);
  // a writes 30 MiB: free falls by as much, and so does its reservation.
  space.written('a', 30 * MiB);
  free -= 30 * MiB;
  assert.equal(space.reservedFor('a'), 30 * MiB);
  await assert.rejects(space.reserve('c', 1), isNoSpace(/task c/));
  // a's download ends: what it did not write is free for others.
  space.release('a');
  await space.reserve('c', 30 * MiB);
  // A task reserving again replaces its own reservation rather than adding to it.
  await space.reserve('c', 30 * MiB);
  assert.equal(space.reserved, 70 * MiB);
  space.written('nobody', MiB); // no reservation: nothing happens
  assert.equal(space.reserved, 70 * MiB);
});

test('the metadata reserve: released on demand, counted as held while missing, written again when there is room', async () => {
  const dir = tempDir();
  let free = 10 * MiB;
  const warnings: string[] = [];
  const space = new DiskSpace({
    contentDir: dir,
    reservePath: path.join(dir, 'reserve'),
    reserveBytes: MiB,
    freeBytes: async () => free,
    log: { info: () => undefined, warn: (_o, m) => warnings.push(m) },
  });
  assert.equal(await space.ensureReserve(), true);
  assert.equal(space.releaseReserve('delete a task'), true);
  assert.deepEqual(warnings, ['disk full: released the metadata reserve']);
  assert.equal(space.releaseReserve('again'), false, 'nothing left to release');
  // Its space is not free for downloads while it is missing.
  await assert.rejects(space.reserve('a', 9.5 * MiB), isNoSpace(/1048576 kept for the metadata/));
  await space.reserve('a', 9 * MiB);
  // No room to write it again beside a's reservation (it wants twice its size free).
  assert.equal(await space.ensureReserve(), false);
  assert.equal(space.hasReserve(), false);
  space.release('a');
  free = 3 * MiB;
  assert.equal(await space.ensureReserve(), true);
  assert.equal(space.hasReserve(), true);
  // Random bytes, so that a compressing filesystem cannot make it free.
  const bytes = fs.readFileSync(path.join(dir, 'reserve'));
  assert.ok(bytes.subarray(0, 4096).some((b) => b !== 0));
});

async function* chunks(total: number, size = 64 * KiB): AsyncGenerator<Buffer> {
  for (let at = 0; at < total; at += size) yield Buffer.alloc(Math.min(size, total - at), 7);
}

const mounted = mountTmpfs(16, 'df-space-tmpfs-');
test(
  'on a full 16 MiB tmpfs, a task whose content is hard-linked elsewhere (deleting it frees nothing) is still deleted',
  { skip: typeof mounted === 'string' ? false : mounted.skip },
  async () => {
    const mnt = mounted as string;
    const s = await Storage.open({
      dir: mnt,
      keep: true,
      writeBufferSize: 64 * KiB,
      readBufferSize: 64 * KiB,
    });
    try {
      assert.equal(s.space.hasReserve(), true, 'the reserve is written at open');
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) {
        const id = `task-${String(i).padStart(2, '0')}`;
        ids.push(id);
        await s.prepareTask(id, { contentLength: 64 * KiB, pieceLength: 4 * KiB, responseHeader: {} });
        for (let n = 0; n < 16; n++) {
          await s.writePiece(id, { number: n, offset: n * 4 * KiB, length: 4 * KiB }, chunks(4 * KiB), {
            trafficType: 0,
          });
        }
        s.finishTask(id);
        s.releaseSpace(id);
        // A dfget output is a hard link to the content: deleting the task will free none of it.
        fs.linkSync(s.content.taskPath(id), path.join(mnt, `output-${id}`));
      }
      // Fill every byte left.
      const fd = fs.openSync(path.join(mnt, 'filler'), 'w');
      const buf = Buffer.alloc(64 * KiB, 1);
      try {
        for (;;) fs.writeSync(fd, buf);
      } catch (e) {
        assert.equal((e as NodeJS.ErrnoException).code, 'ENOSPC');
      } finally {
        fs.closeSync(fd);
      }
      assert.ok(fs.statfsSync(mnt).bavail < 4, 'the disk is full');
      for (const id of ids) await s.deleteTask(id);
      assert.deepEqual(s.listTasks(), []);
      assert.equal(s.space.hasReserve(), false, 'the reserve was used');
      // Room again: the reserve comes back.
      fs.rmSync(path.join(mnt, 'filler'));
      assert.equal(await s.space.ensureReserve(), true);
    } finally {
      s.close();
      unmountTmpfs(mnt);
    }
  },
);
