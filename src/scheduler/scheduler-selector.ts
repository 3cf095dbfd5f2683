// Which schedulers this peer talks to, and which one owns a task (upstream `grpc/scheduler.rs` SchedulerClient
// together with `dynconfig/`; spec/scheduler.md §7):
// - the candidate list comes from a SchedulerSource (local dynconfig file or manager), refreshed at start and every
//   `dynconfig.refreshInterval`;
// - each candidate is health-checked (service "", 3 s) and only SERVING ones are kept; from the manager, only the
//   cluster of the first healthy one;
// - none healthy at start fails start(); a failed refresh keeps the old list; the ring is rebuilt only on change;
// - task-scoped calls go to the ring's pick, AnnounceHost/DeleteHost to all().

import { credentials as grpcCredentials, type ChannelCredentials, type ClientOptions } from '@grpc/grpc-js';
import { DfError } from '../core/errors.js';
import { SchedulerClient } from '../gen/scheduler.js';
import { SCHEDULER_CHANNEL_OPTIONS } from './channel-options.js';
import { HashRing } from './hash-ring.js';
import { checkHealth, HEALTH_CHECK_TIMEOUT_MS } from './health-check.js';
import type { SchedulerCandidate, SchedulerLog, SchedulerSource } from './scheduler-source-types.js';
import { formatSocketAddr } from './socket-addr.js';

export interface SchedulerSelectorOptions {
  source: SchedulerSource;
  /** `dynconfig.refreshInterval`; 0 turns periodic refresh off. */
  refreshIntervalMs: number;
  log: SchedulerLog;
  healthTimeoutMs?: number;
  /**
   * TLS extension point (scheduler.caCert/cert/key): the credentials for one scheduler address, used for both the
   * health check and the scheduler channel. Default: plaintext, as upstream without TLS config.
   */
  credentials?: (addr: string) => ChannelCredentials;
  channelOptions?: Partial<ClientOptions>;
}

export interface SchedulerEndpoint {
  /** Rust-style "ip:port" / "[v6]:port". */
  addr: string;
  client: SchedulerClient;
}

export type SchedulersChangedListener = (addrs: readonly string[]) => void;

const insecure = (): ChannelCredentials => grpcCredentials.createInsecure();

export class SchedulerSelector {
  readonly #source: SchedulerSource;
  readonly #refreshIntervalMs: number;
  readonly #log: SchedulerLog;
  readonly #healthTimeoutMs: number;
  readonly #credentials: (addr: string) => ChannelCredentials;
  readonly #channelOptions: Partial<ClientOptions>;
  readonly #clients = new Map<string, SchedulerClient>();
  readonly #listeners = new Set<SchedulersChangedListener>();
  #addrs: readonly string[] = [];
  /** Every address the source listed last time, healthy or not. */
  #listed: readonly string[] = [];
  #ring = new HashRing([]);
  #clusterId: number | undefined;
  #refreshing: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: SchedulerSelectorOptions) {
    if (!Number.isFinite(options.refreshIntervalMs) || options.refreshIntervalMs < 0) {
      throw new DfError(
        'INVALID_CONFIG',
        `dynconfig.refreshInterval: expected a duration ≥ 0, got ${options.refreshIntervalMs}`,
      );
    }
    this.#source = options.source;
    this.#refreshIntervalMs = options.refreshIntervalMs;
    this.#log = options.log;
    this.#healthTimeoutMs = options.healthTimeoutMs ?? HEALTH_CHECK_TIMEOUT_MS;
    this.#credentials = options.credentials ?? insecure;
    this.#channelOptions = { ...SCHEDULER_CHANNEL_OPTIONS, ...options.channelOptions };
  }

  /** First refresh (throws DfError UNAVAILABLE when no scheduler is healthy), then the periodic refresh. */
  async start(): Promise<void> {
    if (this.#closed) throw new DfError('CANCELLED', 'scheduler selector is closed');
    await this.refresh();
    if (this.#refreshIntervalMs > 0 && this.#timer === undefined && !this.#closed) {
      this.#timer = setInterval(() => {
        this.refresh().catch((e: unknown) =>
          this.#log.warn({ err: e }, `refresh schedulers failed, keeping ${this.#addrs.join(', ')}`),
        );
      }, this.#refreshIntervalMs);
      this.#timer.unref();
    }
  }

  /** Re-lists and health-checks the schedulers; rejects (keeping the current list) when none is healthy. */
  refresh(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    // One refresh at a time; a caller arriving meanwhile waits for the running one.
    this.#refreshing ??= this.#refresh().finally(() => {
      this.#refreshing = undefined;
    });
    return this.#refreshing;
  }

  /** The scheduler that owns `taskId` on the ring. */
  forTask(taskId: string): SchedulerClient {
    return this.pick(taskId).client;
  }

  /** Like forTask, with the address (for logs). */
  pick(taskId: string): SchedulerEndpoint {
    const addr = this.#ring.pick(taskId);
    if (addr === undefined) {
      throw new DfError('UNAVAILABLE', 'no scheduler available (the scheduler selector is not started)');
    }
    return { addr, client: this.#client(addr) };
  }

  /** Every healthy scheduler (AnnounceHost and DeleteHost go to all of them). */
  all(): SchedulerEndpoint[] {
    return this.#addrs.map((addr) => ({ addr, client: this.#client(addr) }));
  }

  addresses(): readonly string[] {
    return this.#addrs;
  }

  /**
   * The schedulers this peer may use: the healthy ones and every other one the source listed last time ("ip:port"
   * / "[v6]:port"). A scheduler that calls this peer (to trigger a seed download) is one of them.
   */
  knownAddresses(): readonly string[] {
    return [...new Set([...this.#addrs, ...this.#listed])];
  }

  /** The manager's scheduler cluster the healthy schedulers belong to; undefined for the local dynconfig file. */
  get clusterId(): number | undefined {
    return this.#clusterId;
  }

  /** Called with the new list whenever it changes (not on the first refresh). Returns an unsubscribe function. */
  onChange(listener: SchedulersChangedListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Stops refreshing and closes every channel. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.#timer = undefined;
    for (const client of this.#clients.values()) client.close();
    this.#clients.clear();
    this.#listeners.clear();
    this.#source.close();
  }

  async #refresh(): Promise<void> {
    const source = this.#source;
    let candidates: SchedulerCandidate[];
    try {
      candidates = await source.list();
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      throw new DfError('UNAVAILABLE', `cannot list schedulers from ${source.description}: ${why}`, {
        cause: e,
      });
    }
    const addrs = candidates.map((c) => formatSocketAddr(c.addr));
    this.#listed = addrs;
    const verdicts = await Promise.all(addrs.map((addr) => this.#health(addr)));
    let healthy = candidates.flatMap((c, i) =>
      verdicts[i] === 'SERVING' ? [{ ...c, addr: addrs[i]! }] : [],
    );
    if (source.singleCluster && healthy.length > 0) {
      const cluster = healthy[0]!.clusterId;
      healthy = healthy.filter((c) => c.clusterId === cluster);
    }
    if (this.#closed) return;
    if (healthy.length === 0) {
      const among =
        addrs.length === 0 ? 'an empty list' : addrs.map((a, i) => `${a} (${verdicts[i]})`).join(', ');
      throw new DfError('UNAVAILABLE', `no healthy scheduler among ${among} from ${source.description}`);
    }
    this.#clusterId = healthy[0]!.clusterId;
    this.#apply(healthy.map((c) => c.addr));
  }

  /** "SERVING", another serving status, or why the check failed — short, for the error line. */
  async #health(addr: string): Promise<string> {
    try {
      const status = await checkHealth(addr, {
        credentials: this.#credentials(addr),
        timeoutMs: this.#healthTimeoutMs,
      });
      if (status !== 'SERVING') this.#log.warn(`scheduler ${addr} is ${status}, not using it`);
      return status;
    } catch (e) {
      const err = e as { details?: string; message?: string };
      const why = err.details || err.message || String(e);
      this.#log.warn({ err: e }, `health check of scheduler ${addr} failed: ${why}`);
      return `unreachable: ${why}`;
    }
  }

  #apply(addrs: string[]): void {
    const old = this.#addrs;
    if (old.length === addrs.length && old.every((a, i) => a === addrs[i])) return;
    this.#addrs = addrs;
    this.#ring = new HashRing(addrs);
    for (const [addr, client] of this.#clients) {
      if (!addrs.includes(addr)) {
        client.close();
        this.#clients.delete(addr);
      }
    }
    this.#log.info(`schedulers: ${addrs.join(', ')}`);
    if (old.length === 0) return;
    for (const listener of this.#listeners) {
      try {
        listener(addrs);
      } catch (e) {
        this.#log.error({ err: e }, 'schedulers-changed listener failed');
      }
    }
  }

  #client(addr: string): SchedulerClient {
    let client = this.#clients.get(addr);
    if (client === undefined) {
      client = new SchedulerClient(addr, this.#credentials(addr), this.#channelOptions);
      this.#clients.set(addr, client);
    }
    return client;
  }
}
