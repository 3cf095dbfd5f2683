// The scheduler.v2.Scheduler service of the embedded scheduler (upstream `scheduler/service/service_v2.go`,
// spec/scheduler.md §1, §5). Preheat RPCs are served by preheat.ts, persistent cache RPCs by
// persistent-cache-service.ts, persistent RPCs by persistent-task.ts over the same code; cache RPCs answer
// UNIMPLEMENTED.

import { isIP } from 'node:net';
import {
  status as GrpcStatus,
  type sendUnaryData,
  type ServerUnaryCall,
  type UntypedHandleCall,
} from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { Host as HostCodec, type Host as HostMessage } from '../../gen/common.js';
import type { Empty } from '../../gen/google/protobuf/empty.js';
import type { SchedulerServer } from '../../gen/scheduler.js';
import { AnnouncePeerHandler } from './announce-peer.js';
import { AnnouncePeerSession } from './announce-peer-stream.js';
import { callerIpOf, checkIdLength, MAX_HOST_MESSAGE_BYTES, ownHost } from './callers.js';
import { checkHostIdentity, type PortProbe } from './host-identity.js';
import { durationToMs, hostMessage, peerMessage, taskMessage } from './messages.js';
import type { SchedulerOptions } from './options.js';
import { Host, HostType, type Resources } from './resources.js';
import type { PreheatJobs } from './preheat.js';
import type { PersistentCacheService } from './persistent-cache-service.js';
import type { Scheduling } from './scheduling.js';
import type { SeedPeerTrigger } from './seed-peer.js';
import { invalidArgument, notFound, permissionDenied, resourceExhausted, toServiceError } from './status.js';

export interface SchedulerServiceDeps {
  resources: Resources;
  scheduling: Scheduling;
  seedPeer: SeedPeerTrigger;
  /** PreheatFile / PreheatImage / StatFile / StatImage (preheat.ts). */
  preheat: PreheatJobs;
  options: SchedulerOptions;
  log: Logger;
  /** Liveness probe of a known host's port when its id is announced with other ports (default: a TCP connect). */
  probe?: PortProbe;
  /** The persistent cache RPCs (dfcache). */
  persistentCache: PersistentCacheService;
  /** The persistent RPCs (dfstore). */
  persistent: PersistentCacheService;
}

function unary<Req, Res>(
  log: Logger,
  method: string,
  f: (req: Req, callerIp: string, call: ServerUnaryCall<Req, Res>) => Res | Promise<Res>,
): (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => void {
  return (call, callback) => {
    const callerIp = callerIpOf(call);
    const fail = (e: unknown) => {
      log.info({ method, caller: callerIp, err: (e as Error).message }, 'request failed');
      callback(toServiceError(e));
    };
    let result: Res | Promise<Res>;
    try {
      result = f(call.request, callerIp, call);
    } catch (e) {
      fail(e);
      return;
    }
    if (result instanceof Promise) result.then((r) => callback(null, r), fail);
    else callback(null, result);
  };
}

// The cache-task RPCs (TaskType CACHE): neither our dfdaemon nor the upstream Rust client (1.5.10) calls them, so
// the embedded scheduler answers them UNIMPLEMENTED, naming the method, rather than keep state no client reads.
const UNIMPLEMENTED_METHODS = [
  'announceCachePeer',
  'statCachePeer',
  'deleteCachePeer',
  'statCacheTask',
  'deleteCacheTask',
] as const;

function unimplemented(method: string): UntypedHandleCall {
  const error = {
    code: GrpcStatus.UNIMPLEMENTED,
    details: `${method} is not implemented by the embedded scheduler; use a Dragonfly scheduler for it`,
  };
  return ((call: { emit?: (e: string, err: unknown) => void }, callback?: (err: unknown) => void) => {
    if (typeof callback === 'function') callback(error);
    else call.emit?.('error', error);
  }) as UntypedHandleCall;
}

export class SchedulerService {
  readonly implementation: SchedulerServer;
  private readonly sessions = new Set<AnnouncePeerSession>();
  private readonly handler: AnnouncePeerHandler;

  constructor(private readonly d: SchedulerServiceDeps) {
    this.handler = new AnnouncePeerHandler(d);
    const log = d.log;
    const stubs = Object.fromEntries(UNIMPLEMENTED_METHODS.map((m) => [m, unimplemented(m)]));
    this.implementation = {
      ...(stubs as unknown as SchedulerServer),
      ...d.persistentCache.methods(),
      ...d.persistent.methods(),
      announcePeer: (call) => {
        const session = new AnnouncePeerSession(call, this.handler, log, (s) => this.sessions.delete(s));
        this.sessions.add(session);
      },
      announceHost: unary(log, 'AnnounceHost', (req, ip, call) =>
        this.announceHost(req.host, req.interval, ip, call.getPeer()),
      ),
      listHosts: unary(log, 'ListHosts', (req, ip) => ({ hosts: this.listHosts(req.type, ip) })),
      deleteHost: unary(log, 'DeleteHost', (req, ip) => this.deleteHost(req.hostId, ip)),
      // Stat answers name hosts' addresses and tasks' pieces: like ListHosts, for members of the cluster only.
      statPeer: unary(log, 'StatPeer', (req, ip) => {
        this.member(ip, 'StatPeer');
        const peer = d.resources.peers.get(req.peerId);
        if (!peer) throw notFound(`peer ${req.peerId} not found`);
        return peerMessage(peer, { hostName: true, taskPieces: true });
      }),
      deletePeer: unary(log, 'DeletePeer', (req, ip): Empty => {
        const peer = d.resources.peers.get(req.peerId);
        if (peer) {
          ownHost(peer.host, ip, 'DeletePeer');
          d.resources.deletePeer(peer);
        }
        return {};
      }),
      statTask: unary(log, 'StatTask', (req, ip) => {
        this.member(ip, 'StatTask');
        const task = d.resources.tasks.get(req.taskId);
        if (!task) throw notFound(`task ${req.taskId} not found`);
        return taskMessage(task, { pieces: true });
      }),
      // Preheat makes hosts download and its stats name hosts' addresses: for members of the cluster only.
      preheatFile: unary(log, 'PreheatFile', async (req, ip): Promise<Empty> => {
        this.member(ip, 'PreheatFile');
        await d.preheat.preheatFile(req);
        return {};
      }),
      preheatImage: unary(log, 'PreheatImage', async (req, ip): Promise<Empty> => {
        this.member(ip, 'PreheatImage');
        await d.preheat.preheatImage(req);
        return {};
      }),
      statFile: unary(log, 'StatFile', (req, ip) => {
        this.member(ip, 'StatFile');
        return d.preheat.statFile(req);
      }),
      statImage: unary(log, 'StatImage', (req, ip) => {
        this.member(ip, 'StatImage');
        return d.preheat.statImage(req);
      }),
      deleteTask: unary(log, 'DeleteTask', (req, ip): Empty => {
        const host = d.resources.hosts.get(req.hostId);
        if (!host) throw notFound(`host ${req.hostId} not found`);
        ownHost(host, ip, 'DeleteTask');
        for (const peer of [...host.peers.values()]) {
          if (peer.task.id === req.taskId) d.resources.deletePeer(peer);
        }
        return {};
      }),
    };
  }

  /** Ends every open AnnouncePeer call (shutdown). */
  closeStreams(): void {
    for (const s of [...this.sessions]) s.close();
  }

  /**
   * Registers or refreshes a host. A host id announced again with other ports by another live daemon is refused
   * (ALREADY_EXISTS naming host.hostname, see host-identity.ts); upstream's scheduler would let it replace the first.
   */
  private async announceHost(
    msg: HostMessage | undefined,
    interval: { seconds: number; nanos: number } | undefined,
    callerIp: string,
    from: string,
  ): Promise<Empty> {
    if (!msg) throw invalidArgument('invalid AnnounceHostRequest.Host: value is required');
    if (!msg.id) throw invalidArgument('invalid Host.Id: value length must be at least 1');
    checkIdLength('Host.Id', msg.id);
    if (!msg.hostname) throw invalidArgument('invalid Host.Hostname: value length must be at least 1');
    // Go's validators (common.proto): an IP, type ≤ 3, ports in [1024, 65535). An accepted host is a parent and a
    // seed-trigger target: a host name there sent the scheduler to DNS, and port 0 nowhere. Ports below 1024 are
    // accepted here (a daemon may serve on them), any other value is not.
    if (isIP(msg.ip) === 0) {
      throw invalidArgument(
        `invalid Host.Ip: value must be a valid IP address, got ${JSON.stringify(msg.ip.slice(0, 64))}`,
      );
    }
    if (msg.type > 3)
      throw invalidArgument(`invalid Host.Type: value must be less than or equal to 3, got ${msg.type}`);
    if (!(msg.port >= 1 && msg.port <= 65535)) {
      throw invalidArgument(`invalid Host.Port: value must be a TCP port (1 to 65535), got ${msg.port}`);
    }
    if (!(msg.downloadPort >= 0 && msg.downloadPort <= 65535)) {
      throw invalidArgument(`invalid Host.DownloadPort: value must be 0 to 65535, got ${msg.downloadPort}`);
    }
    const bytes = HostCodec.encode(msg).finish().length;
    if (bytes > MAX_HOST_MESSAGE_BYTES) {
      throw invalidArgument(
        `invalid AnnounceHostRequest.Host: ${bytes} bytes; at most ${MAX_HOST_MESSAGE_BYTES} are accepted`,
      );
    }
    const hosts = this.d.resources.hosts;
    const known = hosts.get(msg.id);
    if (known) {
      try {
        await checkHostIdentity(known, msg, from, Date.now(), this.d.probe);
      } catch (e) {
        this.d.log.warn(
          {
            hostId: msg.id,
            knownPort: known.info.port,
            port: msg.port,
            from,
            knownFrom: known.announcedVia,
          },
          'host id announced by a second daemon: refused',
        );
        throw e;
      }
    }
    // The probe awaited: take the map's entry as it is now (the host may have been deleted or re-added meanwhile).
    let host = hosts.get(msg.id);
    const now = new Date();
    if (!host) {
      const max = this.d.options.maxHosts;
      if (hosts.size >= max) {
        throw resourceExhausted(
          `the scheduler holds ${hosts.size} hosts, its limit (scheduler.maxHosts ${max}); host ${msg.id} ` +
            `is refused until hosts leave`,
        );
      }
      host = new Host(msg, now);
      host.announcedFrom = callerIp;
      hosts.set(host.id, host);
      this.d.log.info(
        { hostId: host.id, type: host.type, ip: msg.ip, port: msg.port, from: callerIp },
        'host announced',
      );
    } else {
      // Another address may take a host over only once it went quiet (two announce intervals without a word):
      // a host that moved keeps its id, but a live host cannot be redirected by someone else's announcement.
      const quiet = host.intervalMs > 0 && now.getTime() - host.updatedAt.getTime() > 2 * host.intervalMs;
      if (quiet && host.announcedFrom !== callerIp) {
        this.d.log.info({ hostId: host.id, from: callerIp, was: host.announcedFrom }, 'host announced anew');
        host.announcedFrom = callerIp;
      }
      ownHost(host, callerIp, 'AnnounceHost');
      if (host.info.port !== msg.port || host.info.downloadPort !== msg.downloadPort) {
        this.d.log.info(
          { hostId: host.id, ip: msg.ip, port: msg.port, previousPort: host.info.port },
          'host announced again with other ports',
        );
      }
      host.info = { ...msg, schedulerClusterId: 0 };
      host.updatedAt = now;
    }
    host.announcedVia = from;
    if (interval) host.intervalMs = durationToMs(interval);
    this.d.resources.hostAnnounced(host);
    return {};
  }

  /**
   * No type → all; 0 → normal; 1 → seeds; any other type → none (§5). Only for members of the cluster: a caller
   * that announced a host from its address (the list names every host's address and ports).
   */
  private listHosts(type: number | undefined, callerIp: string) {
    this.member(callerIp, 'ListHosts');
    const all = [...this.d.resources.hosts.values()];
    const picked =
      type === undefined
        ? all
        : type === HostType.NORMAL || type === HostType.SUPER_SEED
          ? all.filter((h) => h.type === type)
          : [];
    return picked.map(hostMessage);
  }

  /** A member of the cluster: an address that announced a host here (else PERMISSION_DENIED naming the action). */
  private member(callerIp: string, action: string): void {
    for (const h of this.d.resources.hosts.values()) if (h.announcedFrom === callerIp) return;
    throw permissionDenied(`${action}: ${callerIp} announced no host to this scheduler`);
  }

  private deleteHost(hostId: string, callerIp: string): Empty {
    const host = this.d.resources.hosts.get(hostId);
    if (!host) throw notFound(`host ${hostId} not found`);
    ownHost(host, callerIp, 'DeleteHost');
    this.d.resources.deleteHost(host);
    this.d.log.info({ hostId }, 'host deleted');
    return {};
  }
}
