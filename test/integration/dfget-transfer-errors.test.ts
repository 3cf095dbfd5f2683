// Transfer mode (--transfer-from-dfdaemon) after a client-side error (issue 16, item 10): dfget used to print the
// error and then hang until its deadline (2 h by default), because the DownloadTask call was left open and kept
// the process alive. A fake dfdaemon on a unix socket (a grpc-js server of our DfdaemonDownload definition) sends
// a started response and then either a piece whose bytes do not match its digest, or valid pieces onto an output
// disk that is full, and then keeps the stream open, as a busy dfdaemon would. dfget must exit 1 at once with one
// line, remove its output, and cancel the call (the fake daemon sees the cancellation).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Server, ServerCredentials, type ServerWritableStream } from '@grpc/grpc-js';
import { pieceDigest } from '../../src/core/digest.js';
import {
  DfdaemonDownloadService,
  type DownloadTaskRequest,
  type DownloadTaskResponse,
} from '../../src/gen/dfdaemon.js';
import { DFGET, run, tempDir } from '../helpers/daemon.js';
import { mountTmpfs, unmountTmpfs } from '../helpers/tmpfs.js';

const MiB = 1024 * 1024;
const PIECE = 4 * MiB;

type Behaviour = 'bad-digest' | 'valid';

/** A DfdaemonDownload server whose DownloadTask sends `pieces` pieces and never ends the stream by itself. */
class FakeDaemon {
  readonly socket: string;
  private readonly server = new Server({ 'grpc.max_send_message_length': -1 });
  behaviour: Behaviour = 'valid';
  pieces = 4;
  /** Calls the client cancelled. */
  cancelled = 0;
  private readonly open = new Set<ServerWritableStream<DownloadTaskRequest, DownloadTaskResponse>>();

  constructor(dir: string) {
    this.socket = join(dir, 'fake-dfdaemon.sock');
    this.server.addService(DfdaemonDownloadService, {
      downloadTask: (call: ServerWritableStream<DownloadTaskRequest, DownloadTaskResponse>) =>
        this.downloadTask(call),
    });
  }

  start(): Promise<void> {
    return new Promise((resolve, reject) =>
      this.server.bindAsync(`unix:${this.socket}`, ServerCredentials.createInsecure(), (err) =>
        err ? reject(err) : resolve(),
      ),
    );
  }

  stop(): Promise<void> {
    for (const call of this.open) call.end();
    return new Promise((resolve) => {
      this.server.tryShutdown(() => resolve());
      setTimeout(() => this.server.forceShutdown(), 1000).unref();
    });
  }

  private downloadTask(call: ServerWritableStream<DownloadTaskRequest, DownloadTaskResponse>): void {
    this.open.add(call);
    call.on('cancelled', () => {
      this.cancelled++;
      this.open.delete(call);
    });
    const ids = { hostId: 'h', taskId: 't', peerId: 'p' };
    const n = this.pieces;
    const specs = Array.from({ length: n }, (_, i) => ({ number: i, offset: i * PIECE, length: PIECE }));
    call.write({
      ...ids,
      downloadTaskStartedResponse: {
        contentLength: n * PIECE,
        responseHeader: {},
        isFinished: true,
        pieces: specs.map((p) => ({ ...p, digest: '', cost: undefined, createdAt: undefined })),
      },
    });
    for (const p of specs) {
      const content = Buffer.alloc(PIECE, p.number + 1);
      const digest = pieceDigest(this.behaviour === 'bad-digest' ? Buffer.alloc(PIECE, 0xee) : content);
      call.write({
        ...ids,
        downloadPieceFinishedResponse: {
          piece: { ...p, digest, content, trafficType: 2, cost: undefined, createdAt: undefined },
        },
      });
    }
    // No end(): the stream stays open, as it does while dfdaemon still downloads other pieces.
  }
}

describe('dfget --transfer-from-dfdaemon exits on a client-side error', () => {
  let dir: string;
  let fake: FakeDaemon;

  before(async () => {
    dir = tempDir('dft-transfer-err-');
    fake = new FakeDaemon(dir);
    await fake.start();
  });

  after(async () => {
    await fake.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** dfget in transfer mode with a 10-minute timeout: it must end on its own, long before that. */
  async function transfer(output: string): Promise<{ code: number | null; stderr: string; ms: number }> {
    const t0 = Date.now();
    const r = await run(
      [DFGET, 'http://origin.invalid/file', '-O', output, '-e', fake.socket, '--no-progress'].concat([
        '--transfer-from-dfdaemon',
        '--timeout',
        '10m',
      ]),
      { timeoutMs: 30_000 },
    );
    return { code: r.code, stderr: r.stderr, ms: Date.now() - t0 };
  }

  async function waitForCancelled(n: number): Promise<void> {
    const deadline = Date.now() + 5000;
    while (fake.cancelled < n) {
      assert.ok(Date.now() < deadline, 'dfdaemon saw the call cancelled');
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** dfget exited 1 within 15 s (it did not hang), printing one error line that matches `line`. */
  function assertExitedAtOnce(r: { code: number | null; ms: number; stderr: string }, line: RegExp): void {
    assert.notEqual(r.code, null, `dfget did not exit within 30 s (it hangs): ${r.stderr}`);
    assert.equal(r.code, 1, r.stderr);
    assert.ok(r.ms < 15_000, `dfget took ${r.ms} ms`);
    const lines = r.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, line);
  }

  test('a piece whose bytes do not match its digest: exit 1 at once, one line, no output, call cancelled', async () => {
    fake.behaviour = 'bad-digest';
    const cancelled = fake.cancelled;
    const output = join(dir, 'bad-digest.bin');
    const r = await transfer(output);
    assertExitedAtOnce(r, /^Error: piece 0 content does not match its digest/);
    assert.equal(existsSync(output), false, 'the output is removed');
    await waitForCancelled(cancelled + 1);
  });

  const mounted = mountTmpfs(2, 'dft-outfull-');
  test(
    'the output disk fills (ENOSPC): exit 1 at once, one line, call cancelled',
    { skip: typeof mounted === 'string' ? false : mounted.skip },
    async () => {
      const mnt = mounted as string;
      try {
        fake.behaviour = 'valid';
        const cancelled = fake.cancelled;
        const output = join(mnt, 'full.bin');
        const r = await transfer(output);
        assertExitedAtOnce(r, /^Error: .*no space left on device/i);
        assert.equal(existsSync(output), false, 'the output is removed');
        await waitForCancelled(cancelled + 1);
      } finally {
        unmountTmpfs(mnt);
      }
    },
  );
});
