// Runs one of our built CLIs and tells which modules it loaded: the guard of lazy loading (a dfget that only asks
// dfdaemon for a download must not load the daemon's modules, zod or pino), measured by Node's loader itself.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run, type RunResult } from './daemon.js';

const REGISTER = fileURLToPath(new URL('./loaded-modules-register.js', import.meta.url));
const DIST_SRC = fileURLToPath(new URL('../../src/', import.meta.url));

export interface LoadedModules {
  /** Our modules, relative to dist/src ("cli/dfget.js"), sorted. */
  own: string[];
  /** Packages whose entry was loaded ("commander", "@grpc/grpc-js"), sorted. */
  packages: string[];
}

/** The package a node_modules path belongs to, or undefined. */
function packageOf(path: string): string | undefined {
  const m = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(path);
  return m?.[1];
}

export async function runRecordingModules(args: string[]): Promise<RunResult & LoadedModules> {
  const dir = mkdtempSync(join(tmpdir(), 'dft-modules-'));
  try {
    const out = join(dir, 'loaded.txt');
    const r = await run(['--import', REGISTER, ...args], { env: { LOADED_MODULES_OUT: out } });
    const urls = readFileSync(out, 'utf8')
      .split('\n')
      .filter((u) => u.startsWith('file:'));
    const paths = urls.map((u) => fileURLToPath(u));
    const own = new Set<string>();
    const packages = new Set<string>();
    for (const p of paths) {
      const pkg = packageOf(p);
      if (pkg) packages.add(pkg);
      else if (p.startsWith(DIST_SRC)) own.add(p.slice(DIST_SRC.length));
    }
    return { ...r, own: [...own].sort(), packages: [...packages].sort() };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
