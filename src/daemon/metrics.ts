// Prometheus metrics with upstream's names and labels (dragonfly-client-metric/src/lib.rs), registered in a
// registry owned by one daemon (not a process global), so a test can run two daemons side by side.

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

const PREFIX = 'dragonfly_client_';

// Upstream buckets are 1·2^n ms, n < 24 (exponential_buckets(1.0, 2.0, 24)).
const DURATION_BUCKETS = Array.from({ length: 24 }, (_, n) => 2 ** n);

const TYPE_LABELS = ['type', 'tag', 'app', 'priority'] as const;

/** Upstream's TaskSize levels (label task_size_level): Level0 is empty, then upper bounds in MiB, exclusive. */
const SIZE_LEVEL_BOUNDS_MIB = [
  1, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 8192, 16384, 32768, 65536, 131072, 262144, 524288, 1048576,
];

export function taskSizeLevel(size: number): string {
  if (size === 0) return 'Level0';
  const i = SIZE_LEVEL_BOUNDS_MIB.findIndex((mib) => size < mib * 1024 * 1024);
  return `Level${i === -1 ? SIZE_LEVEL_BOUNDS_MIB.length + 1 : i + 1}`;
}

export interface TaskLabels {
  /** common.v2.TaskType number, as upstream renders it (`typ.to_string()` of the i32). */
  type: number;
  tag: string;
  app: string;
  priority: number;
}

export class DaemonMetrics {
  readonly registry = new Registry();
  private readonly downloadTaskTotal;
  private readonly downloadTaskFailureTotal;
  private readonly concurrentDownloadTask;
  private readonly downloadTaskDuration;
  private readonly downloadTrafficCounter;
  private readonly backendRequestTotal;
  private readonly backendRequestFailureTotal;
  private readonly backendRequestDurationHist;
  private readonly diskSpace;
  private readonly diskUsageSpace;
  private readonly gcEvictedTasks;
  private readonly gcEvictedBytes;
  /** proxy_request_total, proxy_request_failure_total, proxy_request_via_dfdaemon_total (no labels, as upstream). */
  /** download_task_blocked_total{type}: downloads the block list refused. */
  readonly downloadTaskBlocked: (type: number) => void;
  /** connection_refused_total{server}: server = vortex | upload | proxy | health | metrics. */
  readonly connectionRefused: (server: string) => void;
  readonly proxy: { request(): void; failure(): void; viaDfdaemon(): void };
  private readonly typed = new Map<string, { total: Counter<'type'>; failure: Counter<'type'> }>();

  constructor(version: { gitVersion: string; gitCommit: string; buildTime: string }) {
    const registers = [this.registry];
    const version_ = new Gauge({
      name: `${PREFIX}version`,
      help: 'Version info of the service.',
      labelNames: ['git_version', 'git_commit', 'platform', 'build_time'],
      registers,
    });
    version_.set(
      {
        git_version: version.gitVersion,
        git_commit: version.gitCommit,
        platform: `${process.platform}-${process.arch}`,
        build_time: version.buildTime,
      },
      1,
    );
    this.downloadTaskTotal = new Counter({
      name: `${PREFIX}download_task_total`,
      help: 'Counter of the number of the download task.',
      labelNames: TYPE_LABELS,
      registers,
    });
    this.downloadTaskFailureTotal = new Counter({
      name: `${PREFIX}download_task_failure_total`,
      help: 'Counter of the number of failed of the download task.',
      labelNames: TYPE_LABELS,
      registers,
    });
    this.concurrentDownloadTask = new Gauge({
      name: `${PREFIX}concurrent_download_task_total`,
      help: 'Gauge of the number of concurrent of the download task.',
      labelNames: TYPE_LABELS,
      registers,
    });
    this.downloadTaskDuration = new Histogram({
      name: `${PREFIX}download_task_duration_milliseconds`,
      help: 'Histogram of the download task duration.',
      labelNames: ['task_type', 'task_size_level'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.downloadTrafficCounter = new Counter({
      name: `${PREFIX}download_traffic`,
      help: 'Counter of the number of the download traffic.',
      labelNames: ['type'],
      registers,
    });
    this.backendRequestTotal = new Counter({
      name: `${PREFIX}backend_request_total`,
      help: 'Counter of the number of the backend request.',
      labelNames: ['scheme', 'method'],
      registers,
    });
    this.backendRequestFailureTotal = new Counter({
      name: `${PREFIX}backend_request_failure_total`,
      help: 'Counter of the number of failed of the backend request.',
      labelNames: ['scheme', 'method'],
      registers,
    });
    this.backendRequestDurationHist = new Histogram({
      name: `${PREFIX}backend_request_duration_milliseconds`,
      help: 'Histogram of the backend request duration.',
      labelNames: ['scheme', 'method'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    // Request counters by task type, one pair per RPC family as upstream (stat_task_total, ...).
    for (const name of [
      'stat_task',
      'delete_task',
      'list_task_entries',
      'stat_local_task',
      'list_local_tasks',
      'delete_local_task',
    ]) {
      this.typed.set(name, {
        total: new Counter({
          name: `${PREFIX}${name}_total`,
          help: `Counter of the number of the ${name.replaceAll('_', ' ')}.`,
          labelNames: ['type'],
          registers,
        }),
        failure: new Counter({
          name: `${PREFIX}${name}_failure_total`,
          help: `Counter of the number of failed of the ${name.replaceAll('_', ' ')}.`,
          labelNames: ['type'],
          registers,
        }),
      });
    }
    // Upstream's disk gauges (collect_disk_metrics): statvfs of storage.dir, no labels.
    this.diskSpace = new Gauge({
      name: `${PREFIX}disk_space_total`,
      help: 'Gauge of the disk space in bytes',
      registers,
    });
    this.diskUsageSpace = new Gauge({
      name: `${PREFIX}disk_usage_space_total`,
      help: 'Gauge of the disk usage space in bytes',
      registers,
    });
    // Upstream has no GC counters; ours, by reason ("ttl" or "disk").
    this.gcEvictedTasks = new Counter({
      name: `${PREFIX}gc_evicted_tasks_total`,
      help: 'Counter of the number of tasks evicted by the garbage collector.',
      labelNames: ['reason'],
      registers,
    });
    this.gcEvictedBytes = new Counter({
      name: `${PREFIX}gc_evicted_bytes_total`,
      help: 'Counter of the bytes freed by the garbage collector.',
      labelNames: ['reason'],
      registers,
    });
    const counter = (name: string, help: string) =>
      new Counter({ name: `${PREFIX}${name}`, help, registers });
    const proxyTotal = counter('proxy_request_total', 'Counter of the number of the proxy request.');
    const proxyFailure = counter(
      'proxy_request_failure_total',
      'Counter of the number of failed of the proxy request.',
    );
    const proxyViaDfdaemon = counter(
      'proxy_request_via_dfdaemon_total',
      'Counter of the number of the proxy request via dfdaemon.',
    );
    const blocked = new Counter({
      name: `${PREFIX}download_task_blocked_total`,
      help: 'Counter of the number of download task blocked.',
      labelNames: ['type'],
      registers,
    });
    this.downloadTaskBlocked = (type: number) => blocked.inc({ type: String(type) });
    // Ours (upstream has no connection caps): connections refused because a listener held its maxConnections.
    const refused = new Counter({
      name: `${PREFIX}connection_refused_total`,
      help: 'Counter of the connections a listener refused because it held its maxConnections.',
      labelNames: ['server'],
      registers,
    });
    this.connectionRefused = (server: string) => refused.inc({ server });
    this.proxy = {
      request: () => proxyTotal.inc(),
      failure: () => proxyFailure.inc(),
      viaDfdaemon: () => proxyViaDfdaemon.inc(),
    };
    collectDefaultMetrics({ register: this.registry });
  }

  private static labels(l: TaskLabels): Record<(typeof TYPE_LABELS)[number], string> {
    return { type: String(l.type), tag: l.tag, app: l.app, priority: String(l.priority) };
  }

  downloadTaskStarted(l: TaskLabels): void {
    this.downloadTaskTotal.inc(DaemonMetrics.labels(l));
    this.concurrentDownloadTask.inc(DaemonMetrics.labels(l));
  }

  downloadTaskFinished(l: TaskLabels, size: number, costMs: number): void {
    this.downloadTaskDuration.observe(
      { task_type: String(l.type), task_size_level: taskSizeLevel(size) },
      costMs,
    );
    this.concurrentDownloadTask.dec(DaemonMetrics.labels(l));
  }

  downloadTaskFailed(l: TaskLabels): void {
    this.downloadTaskFailureTotal.inc(DaemonMetrics.labels(l));
    this.concurrentDownloadTask.dec(DaemonMetrics.labels(l));
  }

  /** type: BACK_TO_SOURCE, REMOTE_PEER or LOCAL_PEER (common.v2.TrafficType names). */
  downloadTraffic(type: 'BACK_TO_SOURCE' | 'REMOTE_PEER' | 'LOCAL_PEER', bytes: number): void {
    this.downloadTrafficCounter.inc({ type }, bytes);
  }

  backendRequest(scheme: string, method: string): void {
    this.backendRequestTotal.inc({ scheme, method });
  }

  backendRequestFailed(scheme: string, method: string): void {
    this.backendRequestFailureTotal.inc({ scheme, method });
  }

  backendRequestDuration(scheme: string, method: string, ms: number): void {
    this.backendRequestDurationHist.observe({ scheme, method }, ms);
  }

  /** Counts one request of an RPC family (stat_task, delete_task, ...) and, when `failed`, its failure. */
  request(family: string, type: number, failed = false): void {
    const m = this.typed.get(family);
    if (!m) return;
    m.total.inc({ type: String(type) });
    if (failed) m.failure.inc({ type: String(type) });
  }

  /** Sets the disk gauges: the filesystem's total bytes and its used bytes (total − available). */
  disk(totalBytes: number, usageBytes: number): void {
    this.diskSpace.set(totalBytes);
    this.diskUsageSpace.set(usageBytes);
  }

  /** Counts one task evicted by GC and the bytes it freed. */
  gcEvicted(reason: 'ttl' | 'disk', bytes: number): void {
    this.gcEvictedTasks.inc({ reason });
    this.gcEvictedBytes.inc({ reason }, bytes);
  }

  async text(): Promise<string> {
    return this.registry.metrics();
  }

  reset(): void {
    this.registry.resetMetrics();
  }
}
