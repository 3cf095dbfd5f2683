// The embedded scheduler: a scheduler.v2.Scheduler gRPC server (with grpc.health.v1 and reflection) over an
// in-memory model, so a handful of peers need no Dragonfly control plane. Wire-compatible with upstream peers.
// Hosts and persistent cache tasks are written through to a store (core/scheduler-state.ts) and read back at start.

import type { Server } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { TlsMaterial } from '../../config/tls-files.js';
import { DfError } from '../../core/errors.js';
import { channelCredentials } from '../../grpc/credentials.js';
import { bindTcp, createGrpcServer, shutdownGrpcServer } from '../../grpc/server.js';
import { SchedulerService as SchedulerServiceDefinition } from '../../gen/scheduler.js';
import { ResourceGc } from './gc.js';
import { ImageManifestResolver, type SourceGate } from './image-manifest.js';
import { PreheatJobs } from './preheat.js';
import { resolveSchedulerOptions, type PartialSchedulerOptions, type SchedulerOptions } from './options.js';
import { PersistentCacheTasks } from './persistent-cache.js';
import { PersistentCacheService } from './persistent-cache-service.js';
import { persistentTasks, persistentTaskService } from './persistent-task.js';
import { Host, Resources } from './resources.js';
import { Host as HostCodec } from '../../gen/common.js';
import type { SchedulerStateStore } from '../../core/scheduler-state.js';
import { Scheduling } from './scheduling.js';
import { SeedPeerTrigger } from './seed-peer.js';
import { SchedulerService } from './service.js';
import { bestEffortWrites } from './state-writes.js';

/** The largest request the scheduler accepts (gRPC's default; ours are a few KiB). */
const MAX_REQUEST_BYTES = 4 * 1024 * 1024;

/** How long stop() lets in-flight calls finish before cutting them. */
const SHUTDOWN_GRACE_MS = 5000;

/** The gate of a scheduler given none: preheat may make it connect nowhere. */
const NO_SOURCES: SourceGate = {
  checkUrl: () =>
    Promise.reject(new DfError('PERMISSION_DENIED', 'this scheduler was given no source policy')),
  connector: () => (_opts, callback) =>
    callback(new DfError('PERMISSION_DENIED', 'this scheduler was given no source policy'), null),
};

export interface EmbeddedSchedulerInit {
  /** Listen address, e.g. "0.0.0.0", "127.0.0.1" or "::". */
  ip: string;
  /** Listen port; 0 picks a free one (start() returns it). */
  port: number;
  log: Logger;
  options?: PartialSchedulerOptions;
  /** Serve over TLS (a certificate and key); with a CA as well, require client certificates signed by it. */
  tls?: TlsMaterial;
  /** How to reach seed peers' upload ports to trigger them (a client certificate for mTLS ports). */
  seedPeerTls?: TlsMaterial;
  /** Connections held at once; one more is closed as soon as it is accepted. Default: no cap. */
  maxConnections?: number;
  /** Called for each connection refused for the cap. */
  onRefused?: () => void;
  /**
   * Where preheat may make the scheduler connect (image registries, token realms) and what file URLs it accepts:
   * dfdaemon's security.allowedPrivateSources policy (backend/address-policy.ts), injected by the caller.
   * Without one, preheat reaches no source at all.
   */
  sourceGate?: SourceGate;
  /**
   * Where the scheduler keeps hosts and persistent cache tasks across restarts (storage/scheduler-store.ts:
   * dfscheduler `<server.dataDir>/scheduler/scheduler.db`, dfdaemon `<storage.dir>/metadata/scheduler.db`);
   * stop() closes it. Without one they live in memory only.
   */
  store?: SchedulerStateStore;
}

export class EmbeddedScheduler {
  readonly options: SchedulerOptions;
  /** The model, exposed for tests and diagnostics. */
  readonly resources = new Resources();
  private readonly log: Logger;
  private readonly ip: string;
  private readonly port: number;
  private readonly init: EmbeddedSchedulerInit;
  private readonly seedPeer: SeedPeerTrigger;
  /** Persistent cache tasks (dfcache), exposed for tests and diagnostics. */
  readonly persistentCacheTasks: PersistentCacheTasks;
  /** Persistent tasks (dfstore), exposed for tests and diagnostics. */
  readonly persistentTasks: PersistentCacheTasks;
  private readonly service: SchedulerService;
  private readonly preheat: PreheatJobs;
  private readonly gc: ResourceGc;
  private readonly store?: SchedulerStateStore;
  private server?: Server;
  private boundPort?: number;
  private stopping?: Promise<void>;

  constructor(init: EmbeddedSchedulerInit) {
    this.ip = init.ip;
    this.port = init.port;
    this.log = init.log;
    this.init = init;
    this.options = resolveSchedulerOptions(init.options);
    this.store = init.store && bestEffortWrites(init.store, this.log);
    const hosts = this.restoreHosts();
    this.resources.onHostAnnounced((host) =>
      this.store?.saveHost({
        id: host.id,
        info: HostCodec.encode(host.info).finish(),
        intervalMs: host.intervalMs,
        announcedFrom: host.announcedFrom,
      }),
    );
    this.resources.onHostDeleted((host) => this.store?.deleteHost(host.id));
    this.seedPeer = new SeedPeerTrigger(
      this.resources,
      this.log,
      channelCredentials(init.seedPeerTls),
      init.seedPeerTls?.section,
    );
    const scheduling = new Scheduling(this.options, this.log);
    const gate = init.sourceGate ?? NO_SOURCES;
    this.preheat = new PreheatJobs({
      resources: this.resources,
      peers: this.seedPeer,
      images: new ImageManifestResolver(gate),
      gate,
      log: this.log.child({ component: 'preheat' }),
    });
    // Replicas are placed through hosts' upload ports, reached like seed peers (seedPeerTls).
    this.persistentCacheTasks = new PersistentCacheTasks({
      resources: this.resources,
      log: this.log,
      store: this.store,
      creds: channelCredentials(init.seedPeerTls),
    });
    const tasks = this.persistentCacheTasks.restore();
    if (hosts + tasks > 0) this.log.info({ hosts, persistentCacheTasks: tasks }, 'scheduler state restored');
    this.persistentTasks = persistentTasks(this.resources, this.log, channelCredentials(init.seedPeerTls));
    this.service = new SchedulerService({
      resources: this.resources,
      scheduling,
      seedPeer: this.seedPeer,
      preheat: this.preheat,
      options: this.options,
      log: this.log,
      persistentCache: new PersistentCacheService(this.resources, this.persistentCacheTasks, this.log),
      persistent: persistentTaskService(this.resources, this.persistentTasks, this.log),
    });
    this.gc = new ResourceGc(this.resources, this.options.gc, this.log);
  }

  /** The bound port, once started. */
  get listenPort(): number | undefined {
    return this.boundPort;
  }

  /** Binds and serves; returns the bound port. */
  async start(): Promise<number> {
    if (this.boundPort !== undefined) return this.boundPort;
    const server = createGrpcServer(
      [
        {
          definition: SchedulerServiceDefinition,
          implementation: this.service.implementation,
          name: 'scheduler.v2.Scheduler',
        },
      ],
      // gRPC's usual 4 MiB: a scheduler request is a few KiB (a 3 MB host id only costs memory).
      { maxReceiveMessageLength: MAX_REQUEST_BYTES },
    );
    const { tls, maxConnections, onRefused } = this.init;
    let port: number;
    try {
      port = await bindTcp(
        server,
        this.ip,
        this.port,
        tls,
        maxConnections !== undefined ? { maxConnections, onRefused } : undefined,
      );
    } catch (e) {
      throw new DfError('UNAVAILABLE', `scheduler ${(e as Error).message}`, { cause: e });
    }
    this.server = server;
    this.boundPort = port;
    this.gc.start();
    // Placements in flight when the last run stopped ended with it.
    this.persistentCacheTasks.replicateAll();
    this.log.info(
      { ip: this.ip, port, tls: tls ? (tls.caCert ? 'mTLS' : 'TLS') : 'off', maxConnections },
      'scheduler started',
    );
    return port;
  }

  /** Ends open streams, cancels seed triggers, stops GC and the server. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.gc.stop();
      this.preheat.close();
      this.seedPeer.close();
      this.persistentCacheTasks.close();
      this.persistentTasks.close();
      this.service.closeStreams();
      if (this.server) await shutdownGrpcServer(this.server, SHUTDOWN_GRACE_MS);
      this.store?.close();
      this.log.info({}, 'scheduler stopped');
    })();
    return this.stopping;
  }

  /**
   * The hosts of the last run, back in the model. Each is taken as just announced: it has its announce interval to
   * announce again before host GC drops it (and its replicas with it).
   */
  private restoreHosts(): number {
    const now = new Date();
    const stored = this.store?.hosts() ?? [];
    for (const h of stored) {
      const host = new Host(HostCodec.decode(h.info), now);
      host.intervalMs = h.intervalMs;
      host.announcedFrom = h.announcedFrom;
      this.resources.hosts.set(host.id, host);
    }
    return stored.length;
  }
}
