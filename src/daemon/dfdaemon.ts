// The composition root (as upstream's bin/dfdaemon/main.rs): the only module that knows every part. It builds
// them from the config, hands each its collaborators, starts the servers, and stops them in order.

import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Server } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { BackendFactory } from '../backend/factory.js';
import type { DfdaemonConfig } from '../config/dfdaemon.js';
import { hostId } from '../core/ids.js';
import { DfdaemonDownloadService } from '../gen/dfdaemon.js';
import { Storage } from '../storage/storage.js';
import { DfdaemonDownloadServiceImpl } from './grpc/dfdaemon-download.js';
import { bindUnixSocket, createGrpcServer, shutdownGrpcServer } from './grpc/server.js';
import { startHealthServer, startMetricsServer, type Listening } from './http/servers.js';
import { DaemonMetrics } from './metrics.js';
import { TaskManager } from './task-manager.js';

/** How long shutdown waits for in-flight calls before cutting them. */
const SHUTDOWN_GRACE_MS = 5_000;

export interface DfdaemonOptions {
  config: DfdaemonConfig;
  log: Logger;
  version: string;
}

export class Dfdaemon {
  readonly config: DfdaemonConfig;
  readonly log: Logger;
  readonly metrics: DaemonMetrics;
  private storage?: Storage;
  private backends?: BackendFactory;
  private taskManager?: TaskManager;
  private grpcDownload?: Server;
  private health?: Listening;
  private metricsServer?: Listening;
  private stopping?: Promise<void>;

  constructor(o: DfdaemonOptions) {
    this.config = o.config;
    this.log = o.log;
    this.metrics = new DaemonMetrics({ gitVersion: o.version, gitCommit: '', buildTime: '' });
  }

  get hostId(): string {
    return hostId(this.config.host.ip ?? '127.0.0.1', this.config.host.hostname);
  }

  /** Ports actually bound (useful when the config asks for port 0). */
  get ports(): { health?: number; metrics?: number } {
    return { health: this.health?.port, metrics: this.metricsServer?.port };
  }

  async start(): Promise<void> {
    const c = this.config;
    this.storage = await Storage.open(
      {
        dir: c.storage.dir,
        keep: c.storage.keep,
        writeBufferSize: c.storage.writeBufferSize,
        readBufferSize: c.storage.readBufferSize,
      },
      this.log.child({ component: 'storage' }),
    );
    this.backends = new BackendFactory({
      maxRetries: c.backend.maxRetries,
      requestHeader: c.backend.requestHeader ?? {},
      enableCacheTemporaryRedirect: c.backend.enableCacheTemporaryRedirect,
      cacheTemporaryRedirectTTLMs: c.backend.cacheTemporaryRedirectTTL,
    });
    this.taskManager = new TaskManager({
      storage: this.storage,
      backends: this.backends,
      metrics: this.metrics,
      concurrentPieceCount: c.download.concurrentPieceCount,
      pieceTimeoutMs: c.download.pieceTimeout,
      maxRetries: c.backend.maxRetries,
      log: this.log.child({ component: 'task' }),
    });
    const download = new DfdaemonDownloadServiceImpl({
      taskManager: this.taskManager,
      metrics: this.metrics,
      host: { ip: c.host.ip ?? '127.0.0.1', hostname: c.host.hostname },
      storageDir: c.storage.dir,
      log: this.log.child({ component: 'download' }),
    });
    this.grpcDownload = createGrpcServer([
      {
        definition: DfdaemonDownloadService,
        implementation: download.handlers(),
        name: 'dfdaemon.v2.DfdaemonDownload',
      },
    ]);
    await mkdir(dirname(c.download.server.socketPath), { recursive: true });
    await bindUnixSocket(this.grpcDownload, c.download.server.socketPath);
    this.health = await startHealthServer(c.health.server.ip ?? '0.0.0.0', c.health.server.port);
    this.metricsServer = await startMetricsServer(
      c.metrics.server.ip ?? '0.0.0.0',
      c.metrics.server.port,
      this.metrics,
    );
    this.log.info(
      {
        hostId: this.hostId,
        socket: c.download.server.socketPath,
        storage: c.storage.dir,
        health: this.health.port,
        metrics: this.metricsServer.port,
      },
      'dfdaemon started',
    );
  }

  /** Graceful stop: refuse new work, drain calls for a few seconds, then close storage. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.log.info({}, 'dfdaemon stopping');
      this.taskManager?.close();
      await Promise.all([
        this.grpcDownload ? shutdownGrpcServer(this.grpcDownload, SHUTDOWN_GRACE_MS) : undefined,
        this.health?.close(),
        this.metricsServer?.close(),
      ]);
      await this.backends?.close();
      this.storage?.close();
      this.log.info({}, 'dfdaemon stopped');
    })();
    return this.stopping;
  }
}
