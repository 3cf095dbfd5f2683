// Small filesystems for full-disk tests: a tmpfs mounted on a temp dir (root only; otherwise the reason it cannot
// be, for `skip`), unmounted after; and a file that takes every free byte of it.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Mounts a tmpfs of `sizeMiB` on a new temp dir; the reason it could not, as `{ skip }`, otherwise. */
export function mountTmpfs(sizeMiB: number, prefix = 'dft-tmpfs-'): string | { skip: string } {
  if (process.platform !== 'linux') return { skip: 'tmpfs mounts need Linux' };
  if (process.getuid?.() !== 0) return { skip: 'mounting a tmpfs needs root' };
  const dir = mkdtempSync(join(tmpdir(), prefix));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMiB}m`, 'tmpfs', dir], { stdio: 'pipe' });
    return dir;
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    const err = e as { stderr?: Buffer; message: string };
    return { skip: `cannot mount a tmpfs: ${err.stderr?.toString().trim() || err.message}` };
  }
}

/** Unmounts (lazily if it is busy) and removes the mount point. */
export function unmountTmpfs(dir: string): void {
  try {
    execFileSync('umount', [dir], { stdio: 'pipe' });
  } catch {
    execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
  }
  rmSync(dir, { recursive: true, force: true });
}

/** Writes to `path` until the filesystem is full (ENOSPC); returns the bytes written. */
export async function fillDisk(path: string): Promise<number> {
  const fh = await open(path, 'w');
  const chunk = Buffer.alloc(64 * 1024, 1);
  let total = 0;
  try {
    for (;;) {
      const { bytesWritten } = await fh.write(chunk, 0, chunk.length, total);
      total += bytesWritten;
      if (bytesWritten === 0) break;
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
  } finally {
    await fh.close();
  }
  return total;
}
