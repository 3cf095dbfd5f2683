// dfget's start-up cost is module loading (issue 12: a cached 1 KiB dfget took 2.6–3.6× `node -e 0`, `--version`
// alone 3.8×). dfget.ts parses the command line and loads the download (gRPC, the generated protobuf code) only
// for a download, and the download loads only the RPC client: no daemon module, no config loader (zod, yaml), no
// logger (pino) unless --console, no progress bar on a pipe, no transfer-mode writer unless asked. Node's loader
// tells which modules a real run loaded (helpers/loaded-modules.ts); a new static import that breaks this fails
// here, naming the module.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { DFGET, startDaemon, stopDaemon, tempDir, type DaemonHandle } from '../helpers/daemon.js';
import { runRecordingModules } from '../helpers/loaded-modules.js';
import { contentSha256, Origin } from '../helpers/origin.js';
import { sha256File } from '../helpers/files.js';

/** The only packages a download through dfdaemon loads: the gRPC client, protobuf's wire format, the CLI parser. */
const DOWNLOAD_PACKAGES = ['@bufbuild/protobuf', '@grpc/grpc-js', 'commander'];
/** Directories of ours a download must not touch: the daemon's side of things. */
const NOT_FOR_DFGET = /^(daemon|proxy|scheduler|storage|backend|vortex|init|grpc)\/|^config\/(load|schema)/;

describe('dfget loads only what it uses', () => {
  for (const flag of ['--version', '--help']) {
    test(`dfget ${flag} loads commander and dfget's command line, nothing else`, async () => {
      const r = await runRecordingModules([DFGET, flag]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(r.packages, ['commander']);
      // storage-options.ts: the --storage-* flags dfget shares with dfstore (commander only).
      assert.deepEqual(r.own, ['cli/dfget.js', 'cli/storage-options.js', 'cli/version.js']);
    });
  }

  describe('a download through dfdaemon', () => {
    const origin = new Origin();
    let daemon: DaemonHandle | undefined;
    const out = tempDir('dft-lazy-');

    before(async () => {
      await origin.start();
      daemon = await startDaemon();
    });

    after(async () => {
      if (daemon) await stopDaemon(daemon);
      await origin.stop();
      rmSync(out, { recursive: true, force: true });
    });

    const download = (url: string, output: string, extra: string[] = []) =>
      runRecordingModules([DFGET, url, '-O', output, '-e', daemon!.socket, '--no-progress', ...extra]);

    test('loads the RPC client and no daemon module, config loader, logger or transfer writer', async () => {
      const url = origin.add('/lazy-1k.bin', { size: 1024, seed: 5 });
      for (const round of ['cold', 'cached']) {
        const output = join(out, `${round}.bin`);
        const r = await download(url, output);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(await sha256File(output), contentSha256(5, 1024));
        assert.deepEqual(r.packages, DOWNLOAD_PACKAGES, `${round}: packages loaded`);
        const stray = r.own.filter((m) => NOT_FOR_DFGET.test(m) || m === 'cli/transfer-writer.js');
        assert.deepEqual(stray, [], `${round}: modules dfget should not load`);
        assert.ok(r.own.includes('cli/dfget-download.js') && r.own.includes('gen/dfdaemon.js'));
      }
    });

    test('transfer mode loads its writer, --console the logger', async () => {
      const url = origin.add('/lazy-transfer.bin', { size: 4096, seed: 6 });
      const output = join(out, 'transfer.bin');
      const r = await download(url, output, ['--transfer-from-dfdaemon', '--console']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(await sha256File(output), contentSha256(6, 4096));
      assert.ok(r.own.includes('cli/transfer-writer.js'), r.own.join(' '));
      assert.ok(r.packages.includes('pino'), r.packages.join(' '));
    });
  });
});
