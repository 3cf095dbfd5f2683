// Adaptive load shedding for both gRPC servers (`server.adaptiveRateLimit`), after upstream's BBR limiter
// (dragonfly-client-util/src/ratelimiter/bbr.rs), one instance shared by the download and upload servers:
//   - a collector samples CPU and memory every collectInterval (first sample at start). The daemon is
//     overloaded while CPU% >= cpuThreshold or memory% >= memoryThreshold; a threshold of 100 ignores that
//     resource. CPU% is the process's CPU time over wall time and logical cores (or the cgroup v2 CPU quota when
//     one is set); memory% is the process's RSS over total memory (or the cgroup v2 anonymous memory over memory.max
//     when a limit is set) — upstream reads process stats, or cgroup stats inside a container.
//   - every call counts in flight from admission until it ends; a rolling window of bucketCount buckets of
//     bucketInterval records calls completed per bucket and their minimum response time.
//   - while overloaded, a new call is shed when in flight exceeds the estimated capacity
//     maxPass × minRt(ms) × bucketsPerSecond / 1000 (Little's law). Upstream multiplies by bucketCount
//     instead of buckets per second (50 vs 5 with the defaults), which lets ten times as many calls in; we use the
//     formula of the BBR design it follows (Kratos). With no completed call in the window nothing is shed.
//   - after a call is shed, every new call is shed for shedCooldown.
// Shed calls get RESOURCE_EXHAUSTED. Metrics (ours; upstream exports none for this): see `AdaptiveRateLimiter`.

import { readFileSync } from 'node:fs';
import os from 'node:os';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { AdaptiveRateLimitConfig } from '../config/dfdaemon.js';
import { DfError } from '../core/errors.js';
import type { CallGate, Release } from './grpc/request-limiter.js';

export interface ResourceUsage {
  /** 0-100. */
  cpuPercent: number;
  /** 0-100. */
  memoryPercent: number;
}

export type UsageSampler = () => ResourceUsage | Promise<ResourceUsage>;

function readCgroup(file: string): string | undefined {
  try {
    return readFileSync(`/sys/fs/cgroup/${file}`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/**
 * The default sampler: this process's CPU since the previous sample and its RSS, against the cgroup v2 limits
 * when set (a container), else against the machine.
 */
export function processUsageSampler(): UsageSampler {
  let lastCpu = process.cpuUsage();
  let lastAt = performance.now();
  return () => {
    const cpu = process.cpuUsage();
    const at = performance.now();
    const usedMicros = cpu.user - lastCpu.user + (cpu.system - lastCpu.system);
    const wallMicros = Math.max(1, (at - lastAt) * 1000);
    lastCpu = cpu;
    lastAt = at;
    let cores = os.availableParallelism();
    const cpuMax = readCgroup('cpu.max')?.split(/\s+/);
    if (cpuMax && cpuMax[0] !== 'max' && Number(cpuMax[1]) > 0) {
      cores = Math.min(cores, Number(cpuMax[0]) / Number(cpuMax[1]));
    }
    let memTotal = os.totalmem();
    let memUsed = process.memoryUsage.rss();
    // As upstream: the cgroup's anonymous memory (not its page cache) over its limit.
    const memMax = readCgroup('memory.max');
    const anon = /^anon (\d+)$/m.exec(readCgroup('memory.stat') ?? '')?.[1];
    if (memMax && /^\d+$/.test(memMax) && anon) {
      memTotal = Number(memMax);
      memUsed = Number(anon);
    }
    const clamp = (v: number) => Math.min(100, Math.max(0, v));
    return {
      cpuPercent: clamp((usedMicros / wallMicros / cores) * 100),
      memoryPercent: clamp((memUsed / memTotal) * 100),
    };
  };
}

export interface AdaptiveRateLimiterOptions {
  config: AdaptiveRateLimitConfig;
  sampler?: UsageSampler;
  registry?: Registry;
  now?: () => number;
  onShed?: (info: { server: string; cpu: number; memory: number; limit: number; inFlight: number }) => void;
}

interface Bucket {
  start: number;
  pass: number;
  minRt: number;
}

/**
 * Metrics, registered on `registry` (ours, prefixed as upstream's):
 *   dragonfly_client_adaptive_rate_limit_overloaded            gauge 1 while CPU or memory is over its threshold
 *   dragonfly_client_adaptive_rate_limit_cpu_used_percent      gauge, last sample
 *   dragonfly_client_adaptive_rate_limit_memory_used_percent   gauge, last sample
 *   dragonfly_client_adaptive_rate_limit_in_flight             gauge, calls admitted and not yet ended
 *   dragonfly_client_adaptive_rate_limit_shed_total{server}    counter of calls refused (download / upload)
 */
export class AdaptiveRateLimiter {
  private readonly cfg: AdaptiveRateLimitConfig;
  private readonly sampler: UsageSampler;
  private readonly now: () => number;
  private overloaded = false;
  private cpu = 0;
  private memory = 0;
  private inFlight = 0;
  private shedAt?: number;
  private buckets: Bucket[] = [];
  private timer?: NodeJS.Timeout;
  private readonly metrics?: {
    overloaded: Gauge;
    cpu: Gauge;
    memory: Gauge;
    inFlight: Gauge;
    shed: Counter<'server'>;
  };

  constructor(private readonly o: AdaptiveRateLimiterOptions) {
    this.cfg = o.config;
    this.sampler = o.sampler ?? processUsageSampler();
    this.now = o.now ?? (() => performance.now());
    if (o.registry) {
      const registers = [o.registry];
      const p = 'dragonfly_client_adaptive_rate_limit_';
      this.metrics = {
        overloaded: new Gauge({
          name: `${p}overloaded`,
          help: 'Gauge, 1 while CPU or memory usage is over its server.adaptiveRateLimit threshold.',
          registers,
        }),
        cpu: new Gauge({
          name: `${p}cpu_used_percent`,
          help: 'Gauge of the CPU usage percent last sampled for adaptive rate limiting.',
          registers,
        }),
        memory: new Gauge({
          name: `${p}memory_used_percent`,
          help: 'Gauge of the memory usage percent last sampled for adaptive rate limiting.',
          registers,
        }),
        inFlight: new Gauge({
          name: `${p}in_flight`,
          help: 'Gauge of the gRPC requests in flight counted by adaptive rate limiting.',
          registers,
        }),
        shed: new Counter({
          name: `${p}shed_total`,
          help: 'Counter of the gRPC requests shed by adaptive rate limiting.',
          labelNames: ['server'],
          registers,
        }),
      };
    }
  }

  /** Takes the first sample, then samples every collectInterval until stop(). */
  async start(): Promise<void> {
    await this.collect();
    this.timer = setInterval(() => void this.collect(), Math.max(1, this.cfg.collectInterval));
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One sample (the timer's work; tests call it directly). */
  async collect(): Promise<void> {
    let usage: ResourceUsage;
    try {
      usage = await this.sampler();
    } catch {
      return;
    }
    this.cpu = usage.cpuPercent;
    this.memory = usage.memoryPercent;
    this.overloaded =
      (this.cfg.cpuThreshold < 100 && Math.round(usage.cpuPercent) >= this.cfg.cpuThreshold) ||
      (this.cfg.memoryThreshold < 100 && Math.round(usage.memoryPercent) >= this.cfg.memoryThreshold);
    this.metrics?.cpu.set(usage.cpuPercent);
    this.metrics?.memory.set(usage.memoryPercent);
    this.metrics?.overloaded.set(this.overloaded ? 1 : 0);
  }

  get isOverloaded(): boolean {
    return this.overloaded;
  }

  get callsInFlight(): number {
    return this.inFlight;
  }

  /** The gate for one server; `server` labels the shed counter ("download", "upload"). */
  gate(server: string, description: string): CallGate {
    return { admit: () => this.admit(server, description) };
  }

  /** Admits a call or throws RESOURCE_EXHAUSTED; the release records its response time. */
  admit(server: string, description = `dfdaemon ${server} server`): Release {
    this.inFlight += 1;
    const limit = this.shouldShed();
    if (limit !== undefined) {
      this.inFlight -= 1;
      this.metrics?.shed.inc({ server });
      this.o.onShed?.({ server, cpu: this.cpu, memory: this.memory, limit, inFlight: this.inFlight + 1 });
      throw new DfError(
        'RESOURCE_EXHAUSTED',
        `${description} is overloaded: CPU/memory thresholds are exceeded (cpu ${Math.round(this.cpu)}%, ` +
          `memory ${Math.round(this.memory)}%; server.adaptiveRateLimit cpuThreshold ${this.cfg.cpuThreshold}, ` +
          `memoryThreshold ${this.cfg.memoryThreshold}), please retry later`,
      );
    }
    this.metrics?.inFlight.set(this.inFlight);
    const started = this.now();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.inFlight -= 1;
      this.metrics?.inFlight.set(this.inFlight);
      this.record(Math.max(1, Math.round(this.now() - started)));
    };
  }

  /** The estimated limit the call exceeds, -1 for the cooldown, or undefined to admit it. */
  private shouldShed(): number | undefined {
    const now = this.now();
    if (this.shedAt !== undefined && now - this.shedAt < this.cfg.shedCooldown) return -1;
    if (!this.overloaded) return undefined;
    const { maxPass, minRt } = this.stats(now);
    if (maxPass === 0) return undefined;
    const bucketsPerSecond = 1000 / Math.max(1, this.cfg.bucketInterval);
    const limit = Math.round((maxPass * minRt * bucketsPerSecond) / 1000);
    if (limit >= this.inFlight) return undefined;
    this.shedAt = now;
    return limit;
  }

  private record(rt: number): void {
    const now = this.now();
    const interval = Math.max(1, this.cfg.bucketInterval);
    const start = Math.floor(now / interval) * interval;
    let b = this.buckets[this.buckets.length - 1];
    if (!b || b.start !== start) {
      b = { start, pass: 0, minRt: Infinity };
      this.buckets.push(b);
      if (this.buckets.length > this.cfg.bucketCount) this.buckets.shift();
    }
    b.pass += 1;
    b.minRt = Math.min(b.minRt, rt);
  }

  /** Max calls completed in one bucket and min response time over the window, excluding the current bucket. */
  private stats(now: number): { maxPass: number; minRt: number } {
    const interval = Math.max(1, this.cfg.bucketInterval);
    const current = Math.floor(now / interval) * interval;
    const oldest = current - this.cfg.bucketCount * interval;
    let maxPass = 0;
    let minRt = Infinity;
    for (const b of this.buckets) {
      if (b.start >= current || b.start < oldest) continue;
      maxPass = Math.max(maxPass, b.pass);
      minRt = Math.min(minRt, b.minRt);
    }
    return { maxPass, minRt: minRt === Infinity ? 1 : minRt };
  }
}
