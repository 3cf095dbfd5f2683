// Where the upstream programs that the interop suite runs live, as scripts/install-upstream.sh installs them:
// the Go scheduler and manager where `go install` puts binaries, the Rust client where `cargo install` does, and
// MariaDB and Redis from Debian. Looked up by directory, never on PATH alone: our own package also ships a
// `dfdaemon` and a `dfget`, and "scheduler" / "manager" are names anything could have.
//
// A missing program is an error of one line that says what is missing and which command installs it; a suite
// turns it into a failing test, never a skipped one.

import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { which } from '../exec.js';

export const GO_VERSION = 'v2.5.1';
export const RUST_VERSION = '1.5.10';

/** `$GOBIN`, else `$GOPATH/bin` (first entry), else `~/go/bin`: where `go install` writes. */
export function goBinDir(): string {
  if (process.env.GOBIN) return process.env.GOBIN;
  const gopath = process.env.GOPATH?.split(':')[0];
  return join(gopath || join(homedir(), 'go'), 'bin');
}

/** `$CARGO_HOME/bin`, else `~/.cargo/bin`: where `cargo install` writes. */
export function cargoBinDir(): string {
  return join(process.env.CARGO_HOME || join(homedir(), '.cargo'), 'bin');
}

export type UpstreamProgram =
  | 'scheduler'
  | 'manager'
  | 'dfdaemon'
  | 'dfget'
  | 'dfcache'
  | 'dfstore'
  | 'dfctl'
  | 'mariadbd'
  | 'mariadb-install-db'
  | 'mariadb'
  | 'redis-server';

const HOW: Record<UpstreamProgram, { dir?: () => string; install: string; what: string }> = {
  scheduler: {
    dir: goBinDir,
    install: 'scripts/install-upstream.sh go',
    what: `the Go control plane, d7y.io/dragonfly/v2 ${GO_VERSION}`,
  },
  manager: {
    dir: goBinDir,
    install: 'scripts/install-upstream.sh go',
    what: `the Go control plane, d7y.io/dragonfly/v2 ${GO_VERSION}`,
  },
  dfdaemon: {
    dir: cargoBinDir,
    install: 'scripts/install-upstream.sh rust',
    what: `the Rust client, dragonfly-client ${RUST_VERSION}`,
  },
  dfget: {
    dir: cargoBinDir,
    install: 'scripts/install-upstream.sh rust',
    what: `the Rust client, dragonfly-client ${RUST_VERSION}`,
  },
  dfcache: {
    dir: cargoBinDir,
    install: 'scripts/install-upstream.sh rust',
    what: `the Rust client, dragonfly-client ${RUST_VERSION}`,
  },
  dfstore: {
    dir: cargoBinDir,
    install: 'scripts/install-upstream.sh rust',
    what: `the Rust client, dragonfly-client ${RUST_VERSION}`,
  },
  dfctl: {
    dir: cargoBinDir,
    install: 'scripts/install-upstream.sh rust',
    what: `the Rust client, dragonfly-client ${RUST_VERSION}`,
  },
  mariadbd: { install: 'scripts/install-upstream.sh apt', what: 'Debian mariadb-server, redis-server' },
  'mariadb-install-db': {
    install: 'scripts/install-upstream.sh apt',
    what: 'Debian mariadb-server, redis-server',
  },
  mariadb: { install: 'scripts/install-upstream.sh apt', what: 'Debian mariadb-server, redis-server' },
  'redis-server': { install: 'scripts/install-upstream.sh apt', what: 'Debian mariadb-server, redis-server' },
};

/** The path of an upstream program, or an error line naming it and the command that installs it. */
export function findUpstream(name: UpstreamProgram): { path: string } | { missing: string } {
  const how = HOW[name];
  const path = how.dir ? join(how.dir(), name) : which(name);
  if (path && existsSync(path)) return { path };
  const where = how.dir ? ` at ${join(how.dir(), name)}` : ' on PATH or in /usr/sbin';
  return { missing: `${how.what} is not installed (no ${name}${where}): run \`${how.install}\`` };
}

/** Like findUpstream, but throws the one-line error. */
export function upstreamPath(name: UpstreamProgram): string {
  const found = findUpstream(name);
  if ('missing' in found) throw new Error(found.missing);
  return found.path;
}

/**
 * One line for every install step with something missing, e.g. "dfdaemon, dfget (the Rust dfdaemon …) not in
 * /root/.cargo/bin: run `scripts/install-upstream.sh rust`"; empty when all of `names` are there.
 */
export function missingUpstream(names: UpstreamProgram[]): string[] {
  const byStep = new Map<string, { names: string[]; what: string; where: string }>();
  for (const n of names) {
    if (!('missing' in findUpstream(n))) continue;
    const how = HOW[n];
    const step = byStep.get(how.install) ?? {
      names: [],
      what: how.what,
      where: how.dir ? `in ${how.dir()}` : 'on PATH',
    };
    step.names.push(n);
    byStep.set(how.install, step);
  }
  return [...byStep.entries()].map(
    ([install, s]) => `${s.names.join(', ')} (${s.what}) not ${s.where}: run \`${install}\``,
  );
}
