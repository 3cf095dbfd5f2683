#!/usr/bin/env node
// Fetches the upstream Dragonfly protos by name from a package registry: the Go module d7y.io/api/v2 (the
// dragonflyoss/api repository, which ships proto/*.proto for the Rust crate beside the Go code), at the version
// upstream's client pins today. They land in the Go module cache (`go env GOMODCACHE`), outside the repository;
// nothing is written into the project.
//
//   node scripts/fetch-upstream-protos.mjs     prints what it does on stderr, the proto/ directory on stdout
//
// Idempotent: a module already in the cache is not fetched again (`go mod download` answers from the cache in
// well under a second; a first fetch of the 5.7 MB module takes about a second). The module's hash is checked
// against the go.sum line below, so the protos compared are exactly those of the pinned version.
// Needs the `go` command (Go ≥ 1.17). DRAGONFLY_API_PROTO=DIR skips the fetch and uses DIR instead (e.g. the
// proto/ of an unpacked `dragonfly-api` crate); then the version is the caller's business.
//
// Exit codes: 0 ok; 2 no `go` command; 1 anything else (the message says what).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** dragonfly-client 1.5.10 pins `dragonfly-api = "=2.3.8"`; the crate and the Go module share the api repo's tags. */
const MODULE = 'd7y.io/api/v2';
const VERSION = 'v2.3.8';
/** go.sum's h1: hash of d7y.io/api/v2 v2.3.8 (`go mod download -json d7y.io/api/v2@v2.3.8`). */
const SUM = 'h1:v2ur2xA5WspWhyy73t7qTZrRMvxir/hNzlSM2QCif4E=';
const PROTO_FILES = [
  'common.proto',
  'dfdaemon.proto',
  'errordetails.proto',
  'manager.proto',
  'scheduler.proto',
];

const say = (line) => process.stderr.write(`fetch-upstream-protos: ${line}\n`);

function fail(code, message) {
  say(message);
  process.exit(code);
}

function checkDir(dir, what) {
  const have = existsSync(dir) ? readdirSync(dir) : [];
  const missing = PROTO_FILES.filter((f) => !have.includes(f));
  if (missing.length > 0) fail(1, `${what} ${dir} lacks ${missing.join(', ')}`);
}

function go(args, env, cwd) {
  return execFileSync('go', args, { encoding: 'utf8', env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
}

const override = process.env.DRAGONFLY_API_PROTO;
if (override) {
  say(`DRAGONFLY_API_PROTO is set: using ${override} as it is (no fetch, version not checked)`);
  checkDir(override, 'DRAGONFLY_API_PROTO');
  process.stdout.write(`${override}\n`);
  process.exit(0);
}

// GOFLAGS=-mod=mod: never consult a vendor directory or complain about a go.mod of the directory we run in.
const env = { ...process.env, GOFLAGS: '-mod=mod' };
let goVersion;
try {
  goVersion = go(['version'], env).trim();
} catch {
  fail(
    2,
    `the \`go\` command is needed to take ${MODULE}@${VERSION} from the Go module proxy, and none was found on ` +
      'PATH. Install Go (https://go.dev/dl/, or `apt-get install golang-go`), or set DRAGONFLY_API_PROTO to a ' +
      `directory holding the ${VERSION} proto/ files (${PROTO_FILES.join(', ')}).`,
  );
}
const cache = go(['env', 'GOMODCACHE'], env).trim();
const expectedDir = join(cache, `${MODULE}@${VERSION}`);
const cached = existsSync(join(expectedDir, 'proto', 'common.proto'));
say(
  cached
    ? `${MODULE}@${VERSION} is in the Go module cache (${expectedDir}); checking it with \`go mod download\``
    : `fetching ${MODULE}@${VERSION} with \`go mod download\` (${goVersion}) into the Go module cache ${cache}`,
);

// Run outside any Go module (and outside this repository), in an empty directory.
const cwd = mkdtempSync(join(tmpdir(), 'fetch-protos-'));
let info;
try {
  const started = Date.now();
  let out;
  try {
    out = go(['mod', 'download', '-json', `${MODULE}@${VERSION}`], env, cwd);
  } catch (e) {
    // `go mod download -json` prints the JSON (with an Error field) on stdout even when it fails.
    out = e.stdout || '';
    if (!out.trim())
      fail(1, `go mod download ${MODULE}@${VERSION} failed: ${(e.stderr || e.message).trim()}`);
  }
  info = JSON.parse(out);
  if (info.Error) fail(1, `go mod download ${MODULE}@${VERSION} failed: ${info.Error}`);
  say(`${cached ? 'checked' : 'fetched'} in ${Date.now() - started} ms: ${info.Dir}`);
} finally {
  rmSync(cwd, { recursive: true, force: true });
}
if (info.Sum !== SUM) fail(1, `${MODULE}@${VERSION} has hash ${info.Sum}, expected ${SUM}`);
const protoDir = join(info.Dir, 'proto');
checkDir(protoDir, `${MODULE}@${VERSION}`);
process.stdout.write(`${protoDir}\n`);
