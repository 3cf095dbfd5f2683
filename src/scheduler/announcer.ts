// Keeps this host known to every scheduler (upstream `announcer/mod.rs`, spec/scheduler.md §5):
// AnnounceHost to all of them at start — fatal if any fails, as upstream, since a scheduler that does not know the
// host answers NOT_FOUND to every AnnouncePeer — then every `scheduler.announceInterval` (best effort), at once
// when the scheduler list changes, and DeleteHost to all on stop (except a scheduler that refused the host id as
// another daemon's: ALREADY_EXISTS from the embedded scheduler, whose reason and the fix are logged).

import { Metadata, status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { DfError } from '../core/errors.js';
import type { Host } from '../gen/common.js';
import type { SchedulerClient } from '../gen/scheduler.js';
import { SCHEDULER_REQUEST_TIMEOUT_MS } from './channel-options.js';
import type { SchedulerEndpoint, SchedulerSelector } from './scheduler-selector.js';
import type { SchedulerLog } from './scheduler-source-types.js';

/** DeleteHost at shutdown must not hold the shutdown up for long. */
export const DELETE_HOST_TIMEOUT_MS = 3_000;

export interface SchedulerAnnouncerOptions {
  selector: Pick<SchedulerSelector, 'all' | 'onChange'>;
  /** A fresh Host per announce (HostInfo.build). */
  hostInfo: () => Host | Promise<Host>;
  /** `scheduler.announceInterval`; also sent as the request's `interval`. */
  intervalMs: number;
  log: SchedulerLog;
  requestTimeoutMs?: number;
  deleteTimeoutMs?: number;
}

type Unary<Req> = (
  req: Req,
  md: Metadata,
  opts: { deadline: number },
  cb: (err: ServiceError | null) => void,
) => unknown;

function call<Req>(client: SchedulerClient, method: Unary<Req>, req: Req, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    method.call(client, req, new Metadata(), { deadline: Date.now() + timeoutMs }, (err) =>
      err ? reject(err) : resolve(),
    );
  });
}

function describe(e: unknown): string {
  const err = e as Partial<ServiceError>;
  return err.details || err.message || String(e);
}

/**
 * What to do when a scheduler refuses the host id as another daemon's (ALREADY_EXISTS from the embedded scheduler):
 * the host id is "{host.ip}-{host.hostname}", so two daemons on one machine need different hostnames.
 */
export function hostIdTakenHint(host: Pick<Host, 'id' | 'hostname' | 'ip'>, addr: string): string {
  return (
    `host id ${host.id} is already used by another daemon at scheduler ${addr}. To run several daemons on one ` +
    `machine, set host.hostname in each one's dfdaemon.yaml to a unique name (this one is "${host.hostname}"), ` +
    `or give each its own host.ip (this one is ${host.ip}); see docs/cluster.md, "Several daemons on one machine"`
  );
}

export class SchedulerAnnouncer {
  readonly #selector: SchedulerAnnouncerOptions['selector'];
  readonly #hostInfo: SchedulerAnnouncerOptions['hostInfo'];
  readonly #intervalMs: number;
  readonly #log: SchedulerLog;
  readonly #requestTimeoutMs: number;
  readonly #deleteTimeoutMs: number;
  #hostId: string | undefined;
  /** Schedulers whose last answer was ALREADY_EXISTS: the id is another daemon's there, so stop() leaves it alone. */
  readonly #refusedBy = new Set<string>();
  #timer: NodeJS.Timeout | undefined;
  #unsubscribe: (() => void) | undefined;
  #announcing: Promise<void> | undefined;
  #stopped = false;

  constructor(options: SchedulerAnnouncerOptions) {
    if (!Number.isFinite(options.intervalMs) || options.intervalMs <= 0) {
      throw new DfError(
        'INVALID_CONFIG',
        `scheduler.announceInterval: expected a duration > 0, got ${options.intervalMs}`,
      );
    }
    this.#selector = options.selector;
    this.#hostInfo = options.hostInfo;
    this.#intervalMs = options.intervalMs;
    this.#log = options.log;
    this.#requestTimeoutMs = options.requestTimeoutMs ?? SCHEDULER_REQUEST_TIMEOUT_MS;
    this.#deleteTimeoutMs = options.deleteTimeoutMs ?? DELETE_HOST_TIMEOUT_MS;
  }

  /** Announces to every scheduler; throws a DfError naming the first scheduler that refused. Then keeps announcing. */
  async start(): Promise<void> {
    if (this.#stopped) throw new DfError('CANCELLED', 'scheduler announcer is stopped');
    const failures = await this.#announceAll();
    if (failures.length > 0) {
      const { addr, error } = failures[0]!;
      const status = (error as Partial<ServiceError>).code;
      const code =
        status === GrpcStatus.INVALID_ARGUMENT
          ? 'INVALID_ARGUMENT'
          : status === GrpcStatus.ALREADY_EXISTS
            ? 'ALREADY_EXISTS'
            : 'UNAVAILABLE';
      throw new DfError(code, `announce host to scheduler ${addr} failed: ${describe(error)}`, {
        cause: error,
      });
    }
    if (this.#stopped) return;
    this.#timer = setInterval(() => void this.announce(), this.#intervalMs);
    this.#timer.unref();
    this.#unsubscribe = this.#selector.onChange(() => void this.announce());
  }

  /** One best-effort round to every scheduler (failures are logged); concurrent callers share the round. */
  announce(): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    this.#announcing ??= this.#announceAll()
      .then(() => undefined)
      .catch((e: unknown) => this.#log.error({ err: e }, `announce host failed: ${describe(e)}`))
      .finally(() => {
        this.#announcing = undefined;
      });
    return this.#announcing;
  }

  /**
   * Stops announcing and tells every scheduler the host is gone (best effort, at most deleteTimeoutMs), except those
   * that refused the host id as another daemon's: deleting it there would take that daemon's place away. Idempotent.
   */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#unsubscribe?.();
    const hostId = this.#hostId;
    if (hostId === undefined) return; // never announced, nothing to delete
    const ours = this.#selector.all().filter(({ addr }) => !this.#refusedBy.has(addr));
    await Promise.all(
      ours.map(async ({ addr, client }) => {
        try {
          await call(client, client.deleteHost, { hostId }, this.#deleteTimeoutMs);
          this.#log.info(`deleted host ${hostId} from scheduler ${addr}`);
        } catch (e) {
          this.#log.warn({ err: e }, `delete host from scheduler ${addr} failed: ${describe(e)}`);
        }
      }),
    );
  }

  async #announceAll(): Promise<Array<{ addr: string; error: unknown }>> {
    const host = await this.#hostInfo();
    this.#hostId = host.id;
    const request = {
      host,
      interval: {
        seconds: Math.floor(this.#intervalMs / 1000),
        nanos: (this.#intervalMs % 1000) * 1_000_000,
      },
    };
    const endpoints: SchedulerEndpoint[] = this.#selector.all();
    const results = await Promise.all(
      endpoints.map(async ({ addr, client }) => {
        try {
          await call(client, client.announceHost, request, this.#requestTimeoutMs);
          this.#refusedBy.delete(addr);
          this.#log.debug(`announced host ${host.id} to scheduler ${addr}`);
          return undefined;
        } catch (error) {
          if ((error as Partial<ServiceError>).code === GrpcStatus.ALREADY_EXISTS) {
            this.#refusedBy.add(addr);
            this.#log.error({ hostId: host.id, scheduler: addr }, hostIdTakenHint(host, addr));
          } else {
            this.#log.warn({ err: error }, `announce host to scheduler ${addr} failed: ${describe(error)}`);
          }
          return { addr, error };
        }
      }),
    );
    return results.filter((r): r is { addr: string; error: unknown } => r !== undefined);
  }
}
