// skopeo (1.9) as the registry client of e2e tests: push an OCI layout, pull into one, optionally through a
// registry mirror configured in a registries.conf of our own.
//
// Hermetic: as root, skopeo keeps its blob-info cache in /var/lib/containers/cache whatever HOME says, so when we
// are root it runs as `nobody` with HOME and the XDG dirs inside its own temp dir (which therefore belongs to
// nobody, as must every layout it reads). `--insecure-policy` spares it /etc/containers/policy.json.

import { createHash } from 'node:crypto';
import { createReadStream, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RunResult } from './daemon.js';
import { tempDir } from './daemon.js';
import { chownTree, runCommand, unprivileged, which } from './exec.js';

export function findSkopeo(): string | undefined {
  return which('skopeo');
}

export interface CopyOptions {
  /** A registries.conf to use instead of the system one (see writeRegistriesConf). */
  registriesConf?: string;
  /** `--debug`: stderr then lists every HTTP request skopeo made (see requestedUrls). */
  debug?: boolean;
  /** Write the digest of the manifest skopeo wrote here (`--digestfile`). */
  digestFile?: string;
  timeoutMs?: number;
}

export class Skopeo {
  /** skopeo's HOME; outputs of pulls go under it too (see path()). */
  readonly dir: string;
  private readonly user = unprivileged();

  constructor(readonly binary: string) {
    this.dir = tempDir('dft-skopeo-');
    for (const d of ['run', 'data', 'config']) mkdirSync(join(this.dir, d), { mode: 0o700 });
  }

  /** Gives the tree to the user skopeo runs as; call it once on an OCI layout before pushing it. */
  async share(path: string): Promise<void> {
    await chownTree(path, this.user);
  }

  /** A path inside skopeo's dir, e.g. for a pull destination. */
  path(name: string): string {
    return join(this.dir, name);
  }

  async run(args: string[], timeoutMs = 120_000): Promise<RunResult> {
    await chownTree(this.dir, this.user);
    return runCommand(this.binary, args, {
      uid: this.user?.uid,
      gid: this.user?.gid,
      timeoutMs,
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: this.dir,
        XDG_RUNTIME_DIR: join(this.dir, 'run'),
        XDG_DATA_HOME: join(this.dir, 'data'),
        XDG_CONFIG_HOME: join(this.dir, 'config'),
        TMPDIR: this.dir,
      },
    });
  }

  /**
   * `skopeo copy SRC DEST` with TLS verification off on both sides (tries HTTPS, then plain HTTP). skopeo checks
   * every blob against its digest while copying.
   */
  copy(src: string, dest: string, o: CopyOptions = {}): Promise<RunResult> {
    const args = ['--insecure-policy'];
    if (o.debug) args.push('--debug');
    if (o.registriesConf) args.push('--registries-conf', o.registriesConf);
    args.push('copy', '--src-tls-verify=false', '--dest-tls-verify=false');
    if (o.digestFile) args.push('--digestfile', o.digestFile);
    args.push(src, dest);
    return this.run(args, o.timeoutMs);
  }

  /** Removes skopeo's dir (pull outputs included). */
  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * A registries.conf for `registry` ("host:port") with `mirrors` tried first, in order; all insecure (skopeo tries
 * HTTPS, then plain HTTP). When every mirror fails skopeo falls back to `registry` itself, so a test that must
 * know the mirror served the pull checks requestedUrls.
 */
export function writeRegistriesConf(path: string, registry: string, mirrors: string[]): void {
  const lines = ['[[registry]]', `location = "${registry}"`, 'insecure = true', ''];
  for (const m of mirrors) lines.push('[[registry.mirror]]', `location = "${m}"`, 'insecure = true', '');
  writeFileSync(path, lines.join('\n'), { mode: 0o644 });
}

/** The URLs of the HTTP requests skopeo made, from its `--debug` stderr (`msg="GET http://…"`). */
export function requestedUrls(stderr: string): { method: string; url: URL }[] {
  const out: { method: string; url: URL }[] = [];
  for (const m of stderr.matchAll(/msg="(GET|HEAD|PUT|POST|PATCH) (https?:\/\/[^"\s]+)"/g)) {
    try {
      out.push({ method: m[1]!, url: new URL(m[2]!) });
    } catch {
      // not a URL after all
    }
  }
  return out;
}

/** A blob as a manifest lists it. */
export interface OciBlob {
  digest: string;
  size: number;
  mediaType: string;
}

/**
 * Checks that an OCI layout holds every blob of `blobs` with the right size and sha256 (skopeo verified them when
 * it wrote them; this makes the test independent of that). Returns the problems found (empty when all is well).
 */
export async function checkLayoutBlobs(layout: string, blobs: OciBlob[]): Promise<string[]> {
  const problems: string[] = [];
  for (const b of blobs) {
    const [alg, hex] = b.digest.split(':');
    const path = join(layout, 'blobs', alg!, hex!);
    const h = createHash('sha256');
    let size = 0;
    try {
      for await (const c of createReadStream(path)) {
        h.update(c as Buffer);
        size += (c as Buffer).length;
      }
    } catch (e) {
      problems.push(`${b.digest}: ${(e as Error).message}`);
      continue;
    }
    if (size !== b.size) problems.push(`${b.digest}: ${size} bytes, expected ${b.size}`);
    const got = `sha256:${h.digest('hex')}`;
    if (got !== b.digest) problems.push(`${b.digest}: content hashes to ${got}`);
  }
  return problems;
}

/** The manifest digest an OCI layout's index.json gives for `tag`. */
export function layoutManifestDigest(layout: string, tag: string): string | undefined {
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as {
    manifests?: { digest: string; annotations?: Record<string, string> }[];
  };
  return index.manifests?.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag)?.digest;
}
