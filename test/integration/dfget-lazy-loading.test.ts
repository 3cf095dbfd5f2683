// dfget's start-up cost is module loading (issue 12: a cached 1 KiB dfget took 2.6–3.6× `node -e 0`, `--version`
// alone 3.8×). dfget.ts parses the command line with its own small parser (no commander) and loads the download
// only for a download, and the download loads only its HTTP/2 gRPC client and hand-written codec: no grpc-js, no
// generated protobuf code or its runtime, no daemon module, no config loader (zod, yaml), no logger (pino) unless
// --console, no progress bar on a pipe, no transfer-mode writer unless asked. Node's loader tells which modules a
// real run loaded (helpers/loaded-modules.ts); a new static import that breaks this fails here, naming it.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { DFGET, startDaemon, stopDaemon, tempDir, type DaemonHandle } from '../helpers/daemon.js';
import { runRecordingModules } from '../helpers/loaded-modules.js';
import { contentSha256, Origin } from '../helpers/origin.js';
import { sha256File } from '../helpers/files.js';

/** Directories of ours a download must not touch: the daemon's side of things, and the generated code. */
const NOT_FOR_DFGET =
  /^(daemon|proxy|scheduler|storage|backend|vortex|init|gen)\/|^config\/(load|schema)|^grpc\/server/;

describe('dfget loads only what it uses', () => {
  for (const flag of ['--version', '--help']) {
    test(`dfget ${flag} loads dfget's command line, nothing else`, async () => {
      const r = await runRecordingModules([DFGET, flag]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(r.packages, []);
      // storage-options.ts: the --storage-* flags dfget shares with dfstore (an option table, no commander).
      assert.deepEqual(r.own, ['cli/argv.js', 'cli/dfget.js', 'cli/storage-options.js', 'cli/version.js']);
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

    test('loads no package, daemon module, generated code, config loader, logger or transfer writer', async () => {
      const url = origin.add('/lazy-1k.bin', { size: 1024, seed: 5 });
      for (const round of ['cold', 'cached']) {
        const output = join(out, `${round}.bin`);
        const r = await download(url, output);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(await sha256File(output), contentSha256(5, 1024));
        assert.deepEqual(r.packages, [], `${round}: packages loaded`);
        const stray = r.own.filter((m) => NOT_FOR_DFGET.test(m) || m === 'cli/transfer-writer.js');
        assert.deepEqual(stray, [], `${round}: modules dfget should not load`);
        assert.ok(r.own.includes('cli/dfget-download.js') && r.own.includes('grpc/http2-client.js'));
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
