// A TaskManager on its own (no daemon): real storage in a temp dir, the real http backend, a Node origin. For
// tests of the download flow below the gRPC services.

import { after, before } from 'node:test';
import { rmSync } from 'node:fs';
import { BackendFactory } from '../../src/backend/factory.js';
import { DaemonMetrics } from '../../src/daemon/metrics.js';
import { TaskManager, type DownloadRequest } from '../../src/daemon/task-manager.js';
import { Storage } from '../../src/storage/storage.js';
import { Origin } from './origin.js';
import { tempDir } from './daemon.js';

const log = { info() {}, warn() {}, debug() {} };

export class TaskManagerEnv {
  readonly origin = new Origin();
  readonly dir = tempDir('dft-tm-');
  storage!: Storage;
  backends!: BackendFactory;
  tm!: TaskManager;

  /** An environment started before the file's tests and stopped after them. */
  static use(): TaskManagerEnv {
    const env = new TaskManagerEnv();
    before(() => env.start());
    after(() => env.stop());
    return env;
  }

  async start(): Promise<void> {
    await this.origin.start();
    this.storage = await Storage.open(
      { dir: this.dir, keep: true, writeBufferSize: 64 * 1024, readBufferSize: 64 * 1024 },
      log,
    );
    this.backends = new BackendFactory({
      maxRetries: 0,
      requestHeader: {},
      enableCacheTemporaryRedirect: false,
      cacheTemporaryRedirectTTLMs: 0,
    });
    this.tm = new TaskManager({
      storage: this.storage,
      backends: this.backends,
      metrics: new DaemonMetrics({ gitVersion: 't', gitCommit: '', buildTime: '' }),
      concurrentPieceCount: 2,
      pieceTimeoutMs: 10_000,
      maxRetries: 0,
      log,
    });
  }

  async stop(): Promise<void> {
    this.tm.close();
    await this.backends.close();
    this.storage.close();
    await this.origin.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Downloads every piece and returns the content, or stops after `stopAfter` pieces (a partial task). */
  async download(taskId: string, req: DownloadRequest, stopAfter = Infinity): Promise<Buffer> {
    const controller = new AbortController();
    const started = await this.tm.start(taskId, req, controller.signal);
    try {
      let n = 0;
      for await (const _ of this.tm.pieces(started, req, controller.signal)) {
        void _;
        if (++n >= stopAfter) return Buffer.alloc(0);
      }
      await this.tm.finishIfComplete(started);
      return await this.storage.content.readPieceBuffer(taskId, 0, started.task.contentLength);
    } finally {
      started.release();
    }
  }
}
