// The composition root (as upstream's bin/dfdaemon/main.rs): the only module that knows every part. It builds
// them from the config, hands each its collaborators, starts the servers, and stops them in order.

import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { ChannelCredentials, Server } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { BackendFactory } from '../backend/factory.js';
import { loadBackendPlugins } from '../backend/plugins.js';
import { DfError } from '../core/errors.js';
import { DEFAULTS, type DfdaemonConfig } from '../config/dfdaemon.js';
import { loadTlsFiles, type TlsMaterial } from '../config/tls-files.js';
import { channelCredentials } from '../grpc/credentials.js';
import { deadlineSparesStreams, LONG_LIVED_UPLOAD_STREAMS } from '../grpc/stream-deadline.js';
import { acceptFramedResponses, passFramedResponses } from '../grpc/framed-responses.js';
import { DfdaemonDownloadService, DfdaemonUploadService } from '../gen/dfdaemon.js';
import type { Host } from '../gen/common.js';
import { SchedulerAnnouncer } from '../scheduler/announcer.js';
import { EmbeddedScheduler } from '../scheduler/embedded/scheduler-server.js';
import { SCHEDULER_STORE_FILE, SqliteSchedulerStore } from '../storage/scheduler-store.js';
import { HostInfo } from '../scheduler/host-info.js';
import { SchedulerSelector } from '../scheduler/scheduler-selector.js';
import { schedulerSourceFromConfig } from '../scheduler/scheduler-source.js';
import type { SchedulerSource } from '../scheduler/scheduler-source-types.js';
import { socketAddrFromIp } from '../scheduler/socket-addr.js';
import { Storage } from '../storage/storage.js';
import { PersistentCacheStore } from '../storage/persistent-cache-store.js';
import { TcpPieceTransport, type VortexClientTls } from '../vortex/piece-client.js';
import { VortexTcpServer } from '../vortex/piece-server.js';
import { DfdaemonDownloadServiceImpl } from './grpc/dfdaemon-download.js';
import { DfdaemonUploadServiceImpl } from './grpc/dfdaemon-upload.js';
import {
  bindTcp,
  bindUnixSocket,
  createGrpcServer,
  shutdownGrpcServer,
  type UnixSocketListener,
} from '../grpc/server.js';
import { tcpCaller, UnixSocketCallers } from './local-caller.js';
import { startHealthServer, startMetricsServer, type Listening } from './http/servers.js';
import { DaemonMetrics } from './metrics.js';
import { TaskManager } from './task-manager.js';
import { GarbageCollector, schedulerTaskDeleter } from './gc.js';
import { UploadClientPool } from './upload-clients.js';
import { RateLimiter } from './rate-limiter.js';
import { UploadMeter } from './upload-meter.js';
import { limitImplementation, serverGates } from './grpc/request-limiter.js';
import { AdaptiveRateLimiter } from './load-shedding.js';
import { ProxyServer } from '../proxy/server.js';
import { LeafCertificates, loadOrCreateProxyCa } from '../proxy/certificates.js';
import { ProxyDownloads } from './proxy-downloads.js';
import { SuperSeeding } from './super-seeding.js';
import { UploadPace } from './upload-pace.js';
import { UploadSlots } from '../vortex/upload-slots.js';
import { TaskDownloadBlockList } from './block-list.js';
import { connectionCaps, openFileLimit } from './connection-limits.js';
import { SourceAddressPolicy } from '../backend/address-policy.js';
import { AddressList } from '../core/addresses.js';
import { UploadCallers } from './grpc/upload-callers.js';
import { PersistentCacheService } from './grpc/persistent-cache-service.js';
import { PersistentCacheImporter, type PersistentCacheDeps } from './persistent-cache/import.js';
import { PersistentCacheExporter, type ExportDeps } from './persistent-cache/export.js';
import { PersistentTaskService } from './grpc/persistent-task-service.js';
import { PersistentTaskExporter } from './persistent-task/export.js';
import { PersistentTaskImporter } from './persistent-task/import.js';
import { ObjectStore } from './persistent-task/object-store.js';
import { peerId as makePeerId } from '../core/ids.js';

/** How long shutdown waits for in-flight calls before cutting them. */
const SHUTDOWN_GRACE_MS = 5_000;
/** The download service's calls whose responses may be framed by hand (piece content in transfer mode). */
const FRAMED_RESPONSE_PATHS: ReadonlySet<string> = new Set(['/dfdaemon.v2.DfdaemonDownload/DownloadTask']);

export interface DfdaemonOptions {
  config: DfdaemonConfig;
  log: Logger;
  version: string;
  /** The local dynconfig file (`--dynconfig`); its scheduler addresses are used when manager.addr is not set. */
  dynconfigPath?: string;
  /** The HTTP/2 keepalive of both gRPC servers; upstream's (grpc/server.ts KEEPALIVE) unless a test shortens it. */
  grpcKeepalive?: { timeMs: number; timeoutMs: number };
}

/** How this daemon finds its scheduler. */
export type SchedulerMode = 'manager' | 'dynconfig' | 'embedded' | 'none';

export function schedulerMode(config: DfdaemonConfig, dynconfigPath: string | undefined): SchedulerMode {
  if (config.embeddedScheduler.enable === true) return 'embedded';
  if (config.manager.addr) return 'manager';
  if (dynconfigPath && existsSync(dynconfigPath)) return 'dynconfig';
  return config.embeddedScheduler.enable === false ? 'none' : 'embedded';
}

// Piece bodies the Vortex server sends at once follow the time one piece takes on this uplink (upload-pace.ts:
// four on a fast link, one where a piece takes seconds). An earlier count that followed the measured upload
// *rate* measured its own limit and stayed at one or two (an 8-host run at 100 Mbit/s took 60 s instead of 37 s);
// the time per piece alone does not shrink with fewer bodies.

export class Dfdaemon {
  readonly config: DfdaemonConfig;
  readonly log: Logger;
  readonly metrics: DaemonMetrics;
  private readonly version: string;
  private readonly dynconfigPath?: string;
  private readonly grpcKeepalive?: { timeMs: number; timeoutMs: number };
  private storage?: Storage;
  private persistentCache?: PersistentCacheStore;
  /** Persistent tasks (dfstore), kept like persistent cache tasks. */
  private persistentTasks?: PersistentCacheStore;
  private backends?: BackendFactory;
  private taskManager?: TaskManager;
  private grpcDownload?: Server;
  private downloadSocket?: UnixSocketListener;
  private grpcUpload?: Server;
  private vortex?: VortexTcpServer;
  private embedded?: EmbeddedScheduler;
  private selector?: SchedulerSelector;
  private announcer?: SchedulerAnnouncer;
  private uploadClients?: UploadClientPool;
  /** Announcement control of the tasks a seed peer is still downloading (seedPeer.enable). */
  private readonly superSeeding?: SuperSeeding;
  private readonly uploadMeter = new UploadMeter();
  private uploadLimit!: RateLimiter;
  private health?: Listening;
  private metricsServer?: Listening;
  private hostInfo?: HostInfo;
  private lastHost?: Host;
  private stopping?: Promise<void>;
  private gc?: GarbageCollector;
  /** server.adaptiveRateLimit (request limits): shared by both gRPC servers; undefined when off. */
  private loadShedder?: AdaptiveRateLimiter;
  private proxy?: ProxyServer;
  private blockList?: TaskDownloadBlockList;
  private proxyDownloads?: ProxyDownloads;
  private sourcePolicy?: SourceAddressPolicy;
  private bound: { upload?: number; vortex?: number; scheduler?: number; proxy?: number } = {};

  constructor(o: DfdaemonOptions) {
    this.config = o.config;
    this.log = o.log;
    this.version = o.version;
    this.dynconfigPath = o.dynconfigPath;
    this.grpcKeepalive = o.grpcKeepalive;
    this.metrics = new DaemonMetrics({ gitVersion: o.version, gitCommit: '', buildTime: '' });
    if (o.config.seedPeer.enable) this.superSeeding = new SuperSeeding();
  }

  get hostId(): string {
    return this.hostInfo?.id ?? '';
  }

  async start(): Promise<void> {
    const c = this.config;
    const ip = c.host.ip ?? '127.0.0.1';
    // Every TLS file first: a bad one stops the start before anything listens.
    const tls = await loadDaemonTls(c);
    this.uploadClients = new UploadClientPool(channelCredentials(tls.uploadClient));
    const vortexClientTls: VortexClientTls | undefined = tls.storageClient?.caCert
      ? { ...tls.storageClient, caCert: tls.storageClient.caCert }
      : undefined;
    this.uploadLimit = new RateLimiter(c.upload.bandwidthLimit);
    this.storage = await Storage.open(
      {
        dir: c.storage.dir,
        keep: c.storage.keep,
        writeBufferSize: c.storage.writeBufferSize,
        readBufferSize: c.storage.readBufferSize,
      },
      this.log.child({ component: 'storage' }),
    );
    // Persistent cache tasks (dfcache) beside the standard ones, sharing their disk-space reservations.
    this.persistentCache = await PersistentCacheStore.open({
      dir: c.storage.dir,
      keep: c.storage.keep,
      writeBufferSize: c.storage.writeBufferSize,
      readBufferSize: c.storage.readBufferSize,
      space: this.storage.space,
    });
    this.persistentTasks = await PersistentCacheStore.open({
      dir: c.storage.dir,
      kind: 'persistent',
      keep: c.storage.keep,
      writeBufferSize: c.storage.writeBufferSize,
      readBufferSize: c.storage.readBufferSize,
      space: this.storage.space,
    });
    // proxy.registryMirror.cert: trusted, next to the root store, by the proxy's forwarding and by source fetches.
    const mirrorCa = c.proxy.registryMirror.cert
      ? await readCertificate(c.proxy.registryMirror.cert)
      : undefined;
    // What a remote caller may make this daemon fetch from (security.allowedPrivateSources; docs/security.md).
    // The registry mirror and the proxy rules' redirect targets are origins the operator named: allowed too.
    const sourcePolicy = new SourceAddressPolicy({
      allow: new AddressList(
        [...c.security.allowedPrivateSources, ...configuredOriginHosts(c)],
        'security.allowedPrivateSources',
        { hostNames: true },
      ),
    });
    this.sourcePolicy = sourcePolicy;
    this.backends = new BackendFactory({
      sourcePolicy,
      ca: mirrorCa ? [Buffer.from(mirrorCa)] : undefined,
      maxRetries: c.backend.maxRetries,
      requestHeader: c.backend.requestHeader ?? {},
      enableCacheTemporaryRedirect: c.backend.enableCacheTemporaryRedirect,
      cacheTemporaryRedirectTTLMs: c.backend.cacheTemporaryRedirectTTL,
    });
    // Backend plugins (backend/plugins.ts): a broken one stops the start here, naming its file.
    for (const plugin of await loadBackendPlugins(join(c.server.pluginDir, 'backend'))) {
      const fields = { scheme: plugin.scheme, file: plugin.file };
      if (this.backends.supports(plugin.scheme))
        this.log.warn(fields, 'backend plugin replaces the built-in backend');
      this.backends.register(plugin.scheme, plugin.backend);
      this.log.info(fields, 'backend plugin loaded');
    }

    // Connection caps of the TCP listeners, lowered to fit the open-file limit (connection-limits.ts).
    const fileLimit = openFileLimit();
    const { caps, lowered } = connectionCaps(c, fileLimit);
    for (const l of lowered) {
      // A default lowered is expected on a small limit; a value someone chose deserves a warning.
      const fields = { key: l.key, configured: l.configured, cap: l.cap, openFileLimit: fileLimit };
      const msg = `${l.key} lowered to ${l.cap} to fit the open-file limit ${fileLimit}`;
      if (l.configured !== DEFAULTS[l.key as keyof typeof DEFAULTS]) this.log.warn(fields, msg);
      else this.log.info(fields, msg);
    }
    this.log.info({ caps, openFileLimit: fileLimit }, 'connection caps');
    const refusals = this.connectionRefusals();

    if (c.download.protocol === 'quic') {
      this.log.warn({}, 'download.protocol quic is not supported yet; pieces are fetched over Vortex TCP');
    }
    // Pieces for other peers: the Vortex server and the upload gRPC service.
    const superSeeding = this.superSeeding;
    const uploadPace = new UploadPace();
    const uploadSlots = new UploadSlots({
      slots: (pieceLength) => uploadPace.slots(pieceLength),
      // storage.server.queueLimit (ours): unset, no busy answers — an upstream Rust child takes "busy" as a failed
      // piece, and under the Go scheduler it was sent back to the origin for half the file (test/interop/rust).
      maxWaiting: c.storage.server.queueLimit,
      priority: superSeeding ? (taskId, number) => superSeeding.priority(taskId, number) : undefined,
    });
    this.vortex = new VortexTcpServer({
      storage: this.storage,
      persistentCache: this.persistentCache,
      persistent: this.persistentTasks,
      ip: c.storage.server.ip ?? '0.0.0.0',
      port: c.storage.server.tcpPort,
      // upload.bandwidthLimit across every piece this peer serves, and the meter SyncHost reports.
      uploadLimiter: {
        acquire: async (bytes: number) => {
          await this.uploadLimit.acquire(bytes);
          await this.uploadMeter.acquire(bytes);
        },
      },
      onPieceServed: (taskId, number, ms, length) => {
        this.superSeeding?.served(taskId, number, ms);
        uploadPace.observe(length, ms, uploadSlots.inUse);
      },
      uploadSlots,
      maxConnections: caps.vortex,
      onRefused: () => this.metrics.connectionRefused('vortex'),
      tls:
        tls.storageServer?.cert && tls.storageServer.key
          ? { ...tls.storageServer, cert: tls.storageServer.cert, key: tls.storageServer.key }
          : undefined,
      log: this.log.child({ component: 'vortex' }),
    });
    this.bound.vortex = await this.vortex.listen();

    // Where the scheduler comes from decides whether downloads are P2P at all.
    const mode = schedulerMode(c, this.dynconfigPath);
    let source: SchedulerSource | undefined;
    // How this daemon reaches its schedulers: TLS with scheduler.caCert (and its client certificate).
    let schedulerCredentials: ChannelCredentials = channelCredentials(tls.scheduler);
    if (mode === 'embedded') {
      // Its own embedded scheduler is reached at 127.0.0.1 like any scheduler: over TLS when it serves TLS.
      schedulerCredentials = channelCredentials(
        tls.embeddedScheduler ? embeddedSchedulerClientTls(tls.scheduler) : undefined,
      );
      this.embedded = new EmbeddedScheduler({
        ip: c.embeddedScheduler.ip ?? '0.0.0.0',
        port: c.embeddedScheduler.port,
        log: this.log.child({ component: 'scheduler' }),
        tls: tls.embeddedScheduler,
        // It triggers seed peers' upload ports as this daemon's upload client does (mTLS: upload.client).
        seedPeerTls: tls.uploadClient,
        maxConnections: caps.scheduler,
        onRefused: refusals('scheduler', 'embeddedScheduler.maxConnections'),
        // Preheat fetches image manifests for its callers: under the same policy as this daemon's remote callers.
        sourceGate: sourcePolicy,
        // Beside the daemon's own metadata: its hosts and persistent cache tasks survive a restart.
        store: new SqliteSchedulerStore(join(c.storage.dir, 'metadata', SCHEDULER_STORE_FILE)),
      });
      const port = await this.embedded.start();
      this.bound.scheduler = port;
      source = {
        description: `embedded scheduler on port ${port}`,
        singleCluster: false,
        list: async () => [{ addr: socketAddrFromIp('127.0.0.1', port) }],
        close: () => undefined,
      };
    } else if (mode !== 'none') {
      source = schedulerSourceFromConfig(c, {
        dynconfigPath: this.dynconfigPath ?? '',
        version: this.version,
        log: this.log.child({ component: 'dynconfig' }),
        managerCredentials: tls.manager ? channelCredentials(tls.manager) : undefined,
      });
    }
    if (source) {
      const credentials = schedulerCredentials;
      this.selector = new SchedulerSelector({
        source,
        refreshIntervalMs: c.dynconfig.refreshInterval,
        log: this.log.child({ component: 'dynconfig' }),
        credentials: () => credentials,
      });
      await this.selector.start();
    }

    this.taskManager = new TaskManager({
      storage: this.storage,
      backends: this.backends,
      metrics: this.metrics,
      concurrentPieceCount: c.download.concurrentPieceCount,
      pieceTimeoutMs: c.download.pieceTimeout,
      maxRetries: c.backend.maxRetries,
      downloadLimiter: new RateLimiter(c.download.bandwidthLimit),
      backToSourceLimiter: new RateLimiter(c.download.backToSourceBandwidthLimit),
      cutThrough: c.storage.server.cutThrough,
      log: this.log.child({ component: 'task' }),
    });
    this.blockList = new TaskDownloadBlockList({
      dynconfigPath: this.dynconfigPath,
      seed: c.seedPeer.enable,
      refreshIntervalMs: c.dynconfig.refreshInterval,
      log: this.log.child({ component: 'dynconfig' }),
    });
    this.blockList.start();
    const download = new DfdaemonDownloadServiceImpl({
      taskManager: this.taskManager,
      blockList: this.blockList,
      metrics: this.metrics,
      host: { ip, hostname: c.host.hostname },
      storageDir: c.storage.dir,
      transferBufferSize: c.download.server.transferBufferSize,
      pieceChunkSize: c.storage.readBufferSize,
      sourcePolicy,
      backends: this.backends,
      log: this.log.child({ component: 'download' }),
    });
    const uploadCallers = new UploadCallers({
      trusted: new AddressList(c.security.trustedSchedulers, 'security.trustedSchedulers'),
      schedulers: () => this.selector?.knownAddresses() ?? [],
      // The embedded scheduler calls this host's upload server at the address it announced.
      local: () => (mode === 'embedded' ? [ip] : []),
    });
    const upload = new DfdaemonUploadServiceImpl({
      taskManager: this.taskManager,
      download,
      pieceServer: () => ({ ip, tcpPort: this.bound.vortex }),
      superSeeding: this.superSeeding,
      host: () => this.syncHostMessage(ip),
      callers: uploadCallers,
      log: this.log.child({ component: 'upload' }),
    });
    const persistentCache = this.persistentCacheService(ip, download, uploadCallers, vortexClientTls);
    const persistentTasks = this.persistentTaskService(ip, download, uploadCallers, vortexClientTls);
    // Request limits: adaptive load shedding (server.adaptiveRateLimit) and each server's
    // requestRateLimit/requestBufferSize wrap the services' handlers (health and reflection are not limited).
    const adaptive = c.server.adaptiveRateLimit;
    if (adaptive) {
      const shedLog = this.log.child({ component: 'load-shedding' });
      this.loadShedder = new AdaptiveRateLimiter({
        config: adaptive,
        registry: this.metrics.registry,
        onShed: (s) => {
          if (s.limit >= 0) shedLog.warn(s, 'overloaded: shedding gRPC requests');
        },
      });
      await this.loadShedder.start();
    }
    const gates = (server: 'download' | 'upload') =>
      serverGates({
        server,
        limits: c[server].server,
        shedder: this.loadShedder,
        registry: this.metrics.registry,
      });
    this.grpcUpload = createGrpcServer(
      [
        {
          definition: DfdaemonUploadService,
          implementation: limitImplementation(
            DfdaemonUploadService,
            {
              ...upload.handlers(),
              ...persistentCache.uploadHandlers(),
              ...persistentTasks.uploadHandlers(),
            },
            gates('upload'),
          ),
          name: 'dfdaemon.v2.DfdaemonUpload',
        },
      ],
      // A Rust child's SyncPieces and SyncHost carry a 10 s deadline it does not mean for the stream.
      { keepalive: this.grpcKeepalive, interceptors: [deadlineSparesStreams(LONG_LIVED_UPLOAD_STREAMS)] },
    );
    this.bound.upload = await bindTcp(
      this.grpcUpload,
      c.upload.server.ip ?? '0.0.0.0',
      c.upload.server.port,
      tls.uploadServer,
      { maxConnections: caps.upload, onRefused: refusals('upload', 'upload.server.maxConnections') },
    );

    this.hostInfo = new HostInfo({ config: c, uploadPort: this.bound.upload, version: this.version });
    this.lastHost = await this.hostInfo.build();
    download.setHostId(this.hostInfo.id);
    const selectorForGc = this.selector;
    this.gc = new GarbageCollector({
      storage: this.storage,
      isInUse: (taskId) => this.taskManager?.isBusy(taskId) ?? false,
      deleteIdle: (taskId, deletion) =>
        this.taskManager ? this.taskManager.deleteIdle(taskId, deletion) : deletion().then(() => true),
      policy: c.gc.policy,
      intervalMs: c.gc.interval,
      metrics: this.metrics,
      persistentCache: bothPersistentStores(this.persistentCache!, this.persistentTasks),
      deleteFromScheduler: selectorForGc
        ? schedulerTaskDeleter({
            schedulerFor: (taskId) =>
              selectorForGc.addresses().length > 0 ? selectorForGc.forTask(taskId) : undefined,
            hostId: () => this.hostInfo!.id,
          })
        : undefined,
      log: this.log.child({ component: 'gc' }),
    });
    this.gc.start();
    if (this.selector) {
      const selector = this.selector;
      const uploadClients = this.uploadClients;
      const transport = new TcpPieceTransport({ tls: vortexClientTls });
      this.taskManager.enableP2P({
        schedulerFor: (taskId) => (selector.addresses().length > 0 ? selector.forTask(taskId) : undefined),
        uploadClient: (peerIp, port) => uploadClients.get(peerIp, port),
        downloadPiece: (req) => transport.downloadPiece(req),
        host: { ip, hostname: c.host.hostname, id: this.hostInfo.id, seed: c.seedPeer.enable },
        scheduleTimeoutMs: c.scheduler.scheduleTimeout,
        maxScheduleCount: c.scheduler.maxScheduleCount,
        collectedPieceTimeoutMs: c.download.collectedPieceTimeout,
        reannounce: () => this.announcer?.announce() ?? Promise.resolve(),
      });
      this.announcer = new SchedulerAnnouncer({
        selector,
        hostInfo: async () => (this.lastHost = await this.hostInfo!.build()),
        intervalMs: c.scheduler.announceInterval,
        log: this.log.child({ component: 'announcer' }),
      });
      await this.announcer.start();
    }

    // One set of limits for the socket, whichever service a call is of.
    const downloadGates = gates('download');
    this.grpcDownload = createGrpcServer(
      [
        {
          // DownloadTask also takes messages framed by hand around piece content (grpc/piece-content.ts).
          definition: acceptFramedResponses(DfdaemonDownloadService, 'downloadTask'),
          implementation: limitImplementation(
            DfdaemonDownloadService,
            {
              ...download.handlers(),
              ...persistentCache.downloadHandlers(),
              ...persistentTasks.downloadHandlers(),
            },
            downloadGates,
          ),
          name: 'dfdaemon.v2.DfdaemonDownload',
        },
        {
          // Only DeletePersistentCacheTask (dfcache rm): DfdaemonDownload has no delete for those tasks.
          definition: DfdaemonUploadService,
          implementation: limitImplementation(
            DfdaemonUploadService,
            persistentCache.socketUploadHandlers(),
            downloadGates,
          ),
          name: 'dfdaemon.v2.DfdaemonUpload',
        },
      ],
      // DownloadTask's piece content goes to HTTP/2 in the frames it was read into (grpc/framed-responses.ts).
      { keepalive: this.grpcKeepalive, interceptors: [passFramedResponses(FRAMED_RESPONSE_PATHS)] },
    );
    await mkdir(dirname(c.download.server.socketPath), { recursive: true });
    const socketCallers = new UnixSocketCallers();
    this.downloadSocket = await bindUnixSocket(
      this.grpcDownload,
      c.download.server.socketPath,
      {
        maxConnections: caps.download,
        onRefused: refusals('download', 'download.server.maxConnections'),
      },
      (socket) => socketCallers.prefetch(socket),
    );
    const listener = this.downloadSocket;
    download.callerOf = (peer) => socketCallers.callerOf(listener.socketOf(peer));
    await this.startProxy(download.sessions, ip, {
      maxConnections: caps.proxy,
      onRefused: refusals('proxy', 'proxy.server.maxConnections'),
    });
    this.health = await startHealthServer(c.health.server.ip ?? '0.0.0.0', c.health.server.port, {
      maxConnections: caps.health,
      onRefused: refusals('health', 'health.server.maxConnections'),
    });
    this.metricsServer = await startMetricsServer(
      c.metrics.server.ip ?? '0.0.0.0',
      c.metrics.server.port,
      this.metrics,
      { maxConnections: caps.metrics, onRefused: refusals('metrics', 'metrics.server.maxConnections') },
    );
    this.log.info(
      {
        hostId: this.hostId,
        socket: c.download.server.socketPath,
        storage: c.storage.dir,
        health: this.health.port,
        metrics: this.metricsServer.port,
        upload: this.bound.upload,
        vortex: this.bound.vortex,
        scheduler: mode === 'embedded' ? `embedded:${this.bound.scheduler}` : mode,
        schedulerPort: this.bound.scheduler,
        proxy: this.bound.proxy,
        tls: Object.fromEntries(
          Object.entries(tls).flatMap(([k, v]) => (v ? [[k, v.caCert && v.cert ? 'mTLS' : 'TLS']] : [])),
        ),
      },
      'dfdaemon started',
    );
  }

  /**
   * For a listener's refused connections: counts them (connection_refused_total) and logs at most once a second,
   * naming the key to raise.
   */
  private connectionRefusals(): (server: string, key: string) => () => void {
    return (server, key) => {
      let refused = 0;
      let loggedAt = 0;
      return () => {
        this.metrics.connectionRefused(server);
        refused++;
        const now = Date.now();
        if (now - loggedAt < 1000) return;
        loggedAt = now;
        this.log.warn({ server, refusedTotal: refused }, `connection refused: ${key} reached`);
      };
    };
  }

  /** The HTTP proxy and registry mirror on proxy.server.{ip,port}, with its CONNECT-interception CA. */
  private async startProxy(
    sessions: DfdaemonDownloadServiceImpl['sessions'],
    ip: string,
    cap: { maxConnections: number; onRefused: () => void },
  ): Promise<void> {
    const c = this.config;
    const log = this.log.child({ component: 'proxy' });
    const ca = await loadOrCreateProxyCa({
      caCert: c.proxy.server.caCert,
      caKey: c.proxy.server.caKey,
      dir: join(c.storage.dir, 'proxy'),
      log,
    });
    this.proxyDownloads = new ProxyDownloads({
      sessions,
      prefetchLimiter: new RateLimiter(c.proxy.prefetchBandwidthLimit),
      concurrentPieceCount: c.download.concurrentPieceCount,
      log,
    });
    this.proxy = new ProxyServer({
      config: c.proxy,
      serverIp: ip,
      downloader: this.proxyDownloads,
      certificates: new LeafCertificates(ca),
      concurrentPieceCount: c.download.concurrentPieceCount,
      ca: c.proxy.registryMirror.cert ? [await readCertificate(c.proxy.registryMirror.cert)] : undefined,
      sourcePolicy: this.sourcePolicy,
      metrics: this.metrics.proxy,
      maxConnections: cap.maxConnections,
      onConnectionRefused: cap.onRefused,
      callerOf: (socket) => tcpCaller(socket),
      log,
    });
    this.bound.proxy = await this.proxy.listen(c.proxy.server.ip ?? '0.0.0.0', c.proxy.server.port);
    log.info(
      { port: this.bound.proxy, caCert: ca.certPath },
      'proxy started; clients must trust caCert for CONNECT',
    );
  }

  /** Our host for SyncHost: the last announced one, with the upload rate measured now. */
  private syncHostMessage(ip: string): Host {
    const host = this.lastHost ?? ({ id: this.hostId, ip, hostname: this.config.host.hostname } as Host);
    const network = host.network ?? {
      tcpConnectionCount: 0,
      uploadTcpConnectionCount: 0,
      maxRxBandwidth: 0,
      maxTxBandwidth: 0,
    };
    return { ...host, network: { ...network, txBandwidth: this.uploadMeter.rateBps() } };
  }

  /** What the persistent cache (dfcache) and persistent task (dfstore) RPCs are built from. */
  private persistentDeps(
    ip: string,
    store: PersistentCacheStore,
    defaultTtlMs: number,
    component: string,
    vortexTls: VortexClientTls | undefined,
  ) {
    const c = this.config;
    const selector = this.selector;
    const deps: PersistentCacheDeps = {
      store,
      schedulerFor: (taskId) =>
        selector && selector.addresses().length > 0 ? selector.forTask(taskId) : undefined,
      host: () => ({ id: this.hostInfo?.id ?? '', ip, hostname: c.host.hostname }),
      defaultTtlMs,
      log: this.log.child({ component }),
    };
    const uploadClients = this.uploadClients!;
    const exportDeps: ExportDeps = {
      ...deps,
      storageDir: c.storage.dir,
      p2p: {
        uploadClient: (peerIp, port) => uploadClients.get(peerIp, port),
        transport: new TcpPieceTransport({ tls: vortexTls }),
        concurrentPieceCount: c.download.concurrentPieceCount,
        pieceTimeoutMs: c.download.pieceTimeout,
        scheduleTimeoutMs: c.scheduler.scheduleTimeout,
        maxScheduleCount: c.scheduler.maxScheduleCount,
      },
    };
    return { deps, exportDeps };
  }

  /**
   * dfcache's import and export and the persistent cache RPCs of both services. Built before the host id is known:
   * the host and the scheduler are looked up at each call.
   */
  private persistentCacheService(
    ip: string,
    download: DfdaemonDownloadServiceImpl,
    callers: UploadCallers,
    vortexTls: VortexClientTls | undefined,
  ): PersistentCacheService {
    const c = this.config;
    const { deps, exportDeps } = this.persistentDeps(
      ip,
      this.persistentCache!,
      c.gc.policy.persistentCacheTaskTTL,
      'persistent-cache',
      vortexTls,
    );
    return new PersistentCacheService({
      ...deps,
      importer: new PersistentCacheImporter(deps, () => makePeerId(ip, c.host.hostname)),
      exporter: new PersistentCacheExporter(exportDeps),
      callerOf: (peer) => download.callerOf(peer),
      callers,
      pieceServer: () => ({ ip, tcpPort: this.bound.vortex }),
      metrics: this.metrics,
    });
  }

  /** dfstore's import and export and the persistent task RPCs of both services, as persistentCacheService. */
  private persistentTaskService(
    ip: string,
    download: DfdaemonDownloadServiceImpl,
    callers: UploadCallers,
    vortexTls: VortexClientTls | undefined,
  ): PersistentTaskService {
    const c = this.config;
    const { deps, exportDeps } = this.persistentDeps(
      ip,
      this.persistentTasks!,
      c.gc.policy.persistentTaskTTL,
      'persistent-task',
      vortexTls,
    );
    const backends = this.backends!;
    const objects = new ObjectStore({
      backendFor: (url) => backends.get(url),
      putChunkSize: c.backend.putChunkSize,
      putConcurrentChunkCount: c.backend.putConcurrentChunkCount,
      putTimeoutMs: c.backend.putTimeout,
      pieceTimeoutMs: c.download.pieceTimeout,
    });
    return new PersistentTaskService({
      ...deps,
      importer: new PersistentTaskImporter({ ...deps, objects }, () => makePeerId(ip, c.host.hostname)),
      exporter: new PersistentTaskExporter({ ...exportDeps, objects }),
      callerOf: (peer) => download.callerOf(peer),
      callers,
      pieceServer: () => ({ ip, tcpPort: this.bound.vortex }),
      metrics: this.metrics,
    });
  }

  /** Graceful stop: refuse new work, drain calls for a few seconds, leave the scheduler, close storage. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.log.info({}, 'dfdaemon stopping');
      this.taskManager?.close();
      this.proxyDownloads?.close();
      await this.announcer?.stop().catch(() => undefined);
      await Promise.all([
        this.grpcDownload
          ? shutdownGrpcServer(this.grpcDownload, SHUTDOWN_GRACE_MS).then(() => this.downloadSocket?.close())
          : undefined,
        this.grpcUpload ? shutdownGrpcServer(this.grpcUpload, SHUTDOWN_GRACE_MS) : undefined,
        this.vortex?.close(),
        this.proxy?.close(),
        this.health?.close(),
        this.metricsServer?.close(),
      ]);
      this.selector?.close();
      this.uploadClients?.close();
      await this.embedded?.stop();
      await this.backends?.close();
      this.gc?.stop();
      this.blockList?.stop();
      this.loadShedder?.stop();
      this.storage?.close();
      this.persistentCache?.close();
      this.persistentTasks?.close();
      this.log.info({}, 'dfdaemon stopped');
    })();
    return this.stopping;
  }
}

/**
 * The hosts of the origins the config names (proxy.registryMirror.addr, proxy.rules[].redirect): a remote caller
 * may make the proxy and the seed reach them even when they are private, as the operator chose them.
 */
export function configuredOriginHosts(c: DfdaemonConfig): string[] {
  const hosts: string[] = [];
  const add = (url: string) => {
    try {
      const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
      new AddressList([host], '', { hostNames: true });
      hosts.push(host);
    } catch {
      // Not a URL, or no host an address list can hold: nothing to allow.
    }
  };
  add(c.proxy.registryMirror.addr);
  for (const rule of c.proxy.rules ?? []) if (rule.redirect) add(`http://${rule.redirect}`);
  return hosts;
}

/** The TLS files of every section, read and checked (config/tls-files.ts); undefined where TLS is off. */
async function loadDaemonTls(c: DfdaemonConfig) {
  return {
    uploadServer: await loadTlsFiles('upload.server', c.upload.server, 'server'),
    uploadClient: await loadTlsFiles('upload.client', c.upload.client, 'client'),
    storageServer: await loadTlsFiles('storage.server', c.storage.server, 'server'),
    storageClient: await loadTlsFiles('storage.client', c.storage.client, 'client'),
    scheduler: await loadTlsFiles('scheduler', c.scheduler, 'client'),
    manager: await loadTlsFiles('manager', c.manager, 'client'),
    embeddedScheduler: await loadTlsFiles('embeddedScheduler', c.embeddedScheduler, 'server'),
  };
}

/**
 * The daemon's client TLS to its own embedded scheduler when that serves TLS: the scheduler section's, as for any
 * scheduler (its certificate must name 127.0.0.1, where the daemon reaches it).
 */
function embeddedSchedulerClientTls(scheduler: TlsMaterial | undefined): TlsMaterial {
  if (!scheduler) {
    throw new DfError(
      'INVALID_CONFIG',
      'embeddedScheduler.cert/key are set, so the embedded scheduler serves TLS, and this daemon reaches it at ' +
        '127.0.0.1 as its scheduler client: set scheduler.caCert to the CA that signed embeddedScheduler.cert ' +
        '(and scheduler.cert/key if embeddedScheduler.caCert asks for client certificates)',
    );
  }
  return scheduler;
}

/** A PEM certificate file named by a config key; a clear error when it cannot be read. */
async function readCertificate(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    throw new DfError('INVALID_CONFIG', `cannot read certificate ${path}: ${(e as Error).message}`);
  }
}

/** GC's view of the two persistent stores: both expire tasks past their TTL. */
function bothPersistentStores(
  a: PersistentCacheStore,
  b: PersistentCacheStore | undefined,
): { deleteExpired(): Promise<Array<{ taskId: string; bytes: number }>> } {
  return {
    deleteExpired: async () => [...(await a.deleteExpired()), ...((await b?.deleteExpired()) ?? [])],
  };
}
