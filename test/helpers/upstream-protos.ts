// The upstream protos (dragonflyoss/api's proto/*.proto, the Rust-side set) for the e2e tests: taken by name from
// a registry — the Go module d7y.io/api/v2 — by scripts/fetch-upstream-protos.mjs, which keeps them in the Go
// module cache, outside the repository. The script is idempotent and answers from the cache once it has them.

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(new URL('../../../scripts/fetch-upstream-protos.mjs', import.meta.url));

/** The version the script pins (what the upstream client pins), read from the script itself. */
export const UPSTREAM_PROTO_VERSION =
  /^const VERSION = '([^']+)';$/m.exec(readFileSync(SCRIPT, 'utf8'))?.[1] ?? '?';

let cached: string | undefined;

/** The directory holding the upstream common.proto, dfdaemon.proto, … (fetched on first use); throws saying why not. */
export function upstreamProtoDir(): string {
  if (cached !== undefined) return cached;
  try {
    const out = execFileSync(process.execPath, [SCRIPT], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 300_000,
    });
    cached = out.trim().split('\n').pop()!;
    return cached;
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(
      `the upstream protos are needed (node scripts/fetch-upstream-protos.mjs failed):\n${(err.stderr || err.message).trim()}`,
      { cause: e },
    );
  }
}
