// Running `buf curl` (npm @bufbuild/buf), the real third-party gRPC client of the e2e tests.

import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { DIST } from './daemon.js';

export const REPO = resolve(DIST, '..');
/**
 * The upstream protos for `buf curl --schema`: the d7y.io/api/v2 Go module's proto/, fetched by
 * scripts/fetch-upstream-protos.mjs into the Go module cache (the same protos the conformance test compares).
 */
export { upstreamProtoDir } from './upstream-protos.js';

/**
 * The native buf binary. node_modules/.bin/buf is a Node wrapper that runs it with spawnSync: ending the wrapper
 * by its PID would orphan the real buf (and a stream like SyncHost never ends by itself), so spawn the binary.
 */
function nativeBuf(): string {
  const arch = ({ x64: 'x64', arm64: 'aarch64' } as Record<string, string>)[process.arch];
  if (arch && process.platform === 'linux') {
    try {
      const p = createRequire(join(REPO, 'package.json')).resolve(`@bufbuild/buf-linux-${arch}/bin/buf`);
      if (existsSync(p)) return p;
    } catch {
      // fall through to the wrapper
    }
  }
  return join(REPO, 'node_modules/.bin/buf');
}

export const BUF = nativeBuf();

export interface BufResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs buf with `args`, killed (by its own PID) after `timeoutMs`. */
export function buf(args: string[], timeoutMs = 120_000): Promise<BufResult> {
  return new Promise((done) => {
    execFile(
      BUF,
      args,
      { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        done({ code, stdout, stderr });
      },
    );
  });
}

/** buf curl prints one pretty JSON document per response message: split them. */
export function parseJsonStream(text: string): unknown[] {
  const out: unknown[] = [];
  let depth = 0;
  let start = -1;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    else if (c === '{') {
      if (depth++ === 0) start = i;
    } else if (c === '}' && --depth === 0) {
      out.push(JSON.parse(text.slice(start, i + 1)));
    }
  }
  return out;
}
