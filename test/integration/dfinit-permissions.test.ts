// dfinit checks every file it will write before it writes any (issue 17). It used to rewrite config.toml, then
// fail on certs.d with a permission error: half applied. Here a user who is not root (nobody, when the tests run
// as root; else the test's own user with a read-only directory) owns config.toml but cannot write certs.d: the run
// must fail naming certs.d and leave every file as it was, with no backup and no temporary file.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  chmodSync,
  chownSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCommand, unprivilegedForOurBinaries } from '../helpers/exec.js';

const DFINIT = fileURLToPath(new URL('../../src/cli/dfinit.js', import.meta.url));

/** Every path under `dir` with its mode and content (files), to show that a run wrote nothing. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const st = statSync(p);
      out[relative(dir, p)] = st.isDirectory()
        ? `dir ${st.mode.toString(8)}`
        : `${st.mode.toString(8)} ${st.mtimeMs} ${readFileSync(p, 'utf8')}`;
      if (st.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out;
}

test('containerd: certs.d not writable → error naming it, config.toml untouched, nothing written', async () => {
  const user = unprivilegedForOurBinaries();
  const dir = mkdtempSync(join(tmpdir(), 'dft-dfinit-perm-'));
  try {
    chmodSync(dir, 0o755);
    const certs = join(dir, 'certs.d');
    const configToml = join(dir, 'config.toml');
    // Versionless: dfinit adds `version = 2` to config.toml, then wants certs.d/docker.io/hosts.toml.
    writeFileSync(configToml, `[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "${certs}"\n`);
    const cfg = join(dir, 'dfinit.yaml');
    writeFileSync(
      cfg,
      `containerRuntime:\n  containerd:\n    configPath: ${configToml}\n    registries:\n` +
        '      - hostNamespace: docker.io\n        serverAddr: https://index.docker.io\n',
    );
    mkdirSync(certs, { mode: 0o755 });
    if (user) {
      // The user owns the directory and config.toml (so it may rewrite them); certs.d stays root's 0755.
      chownSync(dir, user.uid, user.gid);
      chownSync(configToml, user.uid, user.gid);
    } else {
      chmodSync(certs, 0o555);
    }
    const before = snapshot(dir);

    const dry = await runCommand(process.execPath, [DFINIT, '-c', cfg, '--dry-run'], { ...user });
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(
      dry.stdout,
      new RegExp(
        `^note: a real run would stop here, writing nothing: ${certs}/docker\\.io/hosts\\.toml: cannot create ${certs}/docker\\.io in ${certs}: permission denied`,
        'm',
      ),
    );

    const r = await runCommand(process.execPath, [DFINIT, '-c', cfg], { ...user });
    assert.equal(r.code, 1, r.stdout);
    assert.equal(r.stdout, '', 'nothing reported as written');
    const lines = r.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(
      lines[0]!,
      new RegExp(
        `^Error: ${certs}/docker\\.io/hosts\\.toml: cannot create ${certs}/docker\\.io in ${certs}: permission denied \\(run dfinit as root\\?\\); ` +
          `${certs}/_default/hosts\\.toml: .*; nothing was written$`,
      ),
    );
    assert.deepEqual(snapshot(dir), before, 'no file changed, no backup, no temporary file');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
