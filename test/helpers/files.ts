// File checks shared by tests.

import { createHash } from 'node:crypto';
import { createReadStream, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';

/** The sha256 of a file, streamed. */
export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(path)) h.update(c as Buffer);
  return h.digest('hex');
}

/** The sha256 of bytes in memory, hex. */
export function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

/** The regular files under `dir`, as sorted paths relative to it. */
export function filesUnder(dir: string): string[] {
  return (
    readdirSync(dir, { recursive: true, withFileTypes: true }) as Array<{
      parentPath: string;
      name: string;
      isFile(): boolean;
    }>
  )
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .sort();
}
