// Preheat in the embedded scheduler (Go `scheduler/service/service_v2.go` PreheatImage / PreheatFile / StatImage /
// StatFile, and the jobs of `scheduler/job/job.go`): content is put on peers before anyone asks for it.
//
// PreheatFile and PreheatImage do the quick work in the call — check the request, resolve the image's manifest
// into blob URLs, pick the hosts — and answer; the downloads then run in the background, each one a
// `DfdaemonUpload.DownloadTask` on a picked host, exactly as a seed is triggered for a peer (seed-peer.ts). Unlike
// Go, which picks the hosts in the background and only logs "no available seed peer", a request that can reach no
// host fails in the call, so the caller learns it. StatFile / StatImage ask every host's upload port
// `StatLocalTask` for each URL's task (Go's GetTask job) and report, per host, which are there and finished.

import { Metadata } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { isDfError } from '../../core/errors.js';
import { selectTaskId } from '../../core/task-id.js';
import { SchedulingPolicy, TaskType, type Download } from '../../gen/common.js';
import type {
  PeerFile,
  PeerImage,
  PreheatFileRequest,
  PreheatImageRequest,
  StatFileRequest,
  StatFileResponse,
  StatImageRequest,
  StatImageResponse,
} from '../../gen/scheduler.js';
import type { StatLocalTaskResponse } from '../../gen/dfdaemon.js';
import type { ImageManifestResolver } from './image-manifest.js';
import type { SourceGate } from './image-manifest.js';
import { durationToMs, msToDuration } from './messages.js';
import { HostType, type Host, type Resources } from './resources.js';
import { PREHEAT_SCOPES, type PreheatScope } from '../preheat-progress.js';
import type { SeedPeerTrigger } from './seed-peer.js';
import { failedPrecondition, invalidArgument, permissionDenied } from './status.js';

// Go's defaults (manager/types/job.go) for fields a request leaves unset.
const DEFAULT_CONCURRENT_TASK_COUNT = 8;
const DEFAULT_CONCURRENT_PEER_COUNT = 500;
const DEFAULT_CONCURRENT_LAYER_COUNT = 8;
const DEFAULT_JOB_TIMEOUT_MS = 60 * 60_000;
/** How long one host may take to answer StatLocalTask before it is left out of a stat. */
const STAT_LOCAL_TASK_TIMEOUT_MS = 10_000;
/** Upstream dfctl's bounds (clap value parsers), which the scheduler also enforces here. */
const BOUNDS = {
  percentage: [1, 100],
  count: [1, 200],
  concurrentTaskCount: [1, 100],
  concurrentPeerCount: [1, 1000],
  concurrentLayerCount: [1, 100],
};

export interface PreheatDeps {
  resources: Resources;
  /** Triggers DownloadTask on hosts and builds clients of their upload ports. */
  peers: SeedPeerTrigger;
  images: ImageManifestResolver;
  gate: SourceGate;
  log: Logger;
}

/** What both kinds of preheat share once the URLs are known. */
interface PreheatPlan {
  urls: string[];
  header: Record<string, string>;
  pieceLength?: number;
  tag: string;
  application: string;
  filteredQueryParams: string[];
  priority: number;
  certificateChain: Buffer[];
  scope: PreheatScope;
  /** The hosts to download on; for single_seed_peer, picked per URL at run time (undefined here). */
  hosts?: Host[];
  concurrentTaskCount: number;
  concurrentPeerCount: number;
  timeoutMs: number;
  /** Image blobs only (PreheatImageRequest, v2.3.8): the peers take the blob digest as the task id. */
  enableTaskIdBasedBlobDigest: boolean;
  extra: Pick<Download, 'objectStorage' | 'hdfs' | 'outputPath'>;
}

/** What, besides the URL, makes a preheated URL's task id. */
type TaskIdParts = Pick<
  PreheatPlan,
  'pieceLength' | 'tag' | 'application' | 'filteredQueryParams' | 'enableTaskIdBasedBlobDigest'
>;

/** Runs `fn` over `items`, at most `limit` at a time. */
async function forEachLimit<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
}

function checkRange(name: keyof typeof BOUNDS, value: number | undefined): void {
  if (value === undefined) return;
  const [lo, hi] = BOUNDS[name];
  if (!(Number.isInteger(value) && value >= lo && value <= hi)) {
    throw invalidArgument(`invalid ${name} ${value}: expected ${lo} to ${hi}`);
  }
}

function scopeOf(scope: string): PreheatScope {
  const s = scope === '' ? 'single_seed_peer' : scope; // Go's default for an unset scope
  if (!(PREHEAT_SCOPES as readonly string[]).includes(s)) {
    throw invalidArgument(`unsupported preheat scope: ${scope} (expected ${PREHEAT_SCOPES.join(', ')})`);
  }
  return s as PreheatScope;
}

const byId = (a: Host, b: Host) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/**
 * Go's selectSeedPeers / selectPeers: `ips` first (hosts with those IPs), then `count` (that many, at most all),
 * then `percentage` (rounded down, at least one), else all. Sorted by id so that a count picks the same hosts.
 */
export function selectHosts(
  candidates: Host[],
  kind: string,
  o: { ips: string[]; count?: number; percentage?: number },
): Host[] {
  const all = [...candidates].sort(byId);
  if (all.length === 0) throw failedPrecondition(`no ${kind} is announced to this scheduler`);
  if (o.ips.length > 0) {
    const picked = all.filter((h) => o.ips.includes(h.info.ip));
    if (picked.length === 0) throw failedPrecondition(`no ${kind} found for ips ${o.ips.join(', ')}`);
    return picked;
  }
  if (o.count !== undefined) return all.slice(0, Math.min(o.count, all.length));
  if (o.percentage !== undefined) {
    return all.slice(0, Math.max(1, Math.min(all.length, Math.floor((all.length * o.percentage) / 100))));
  }
  return all;
}

export class PreheatJobs {
  /** Background jobs, so that close() can tell them to stop starting downloads. */
  private readonly jobs = new Set<AbortController>();

  constructor(private readonly d: PreheatDeps) {}

  async preheatFile(req: PreheatFileRequest): Promise<void> {
    if (req.url.endsWith('/')) {
      throw invalidArgument(
        `preheat of a directory (a URL ending in "/") is not supported by the embedded scheduler: ${req.url}`,
      );
    }
    try {
      new URL(req.url);
    } catch {
      throw invalidArgument(`invalid preheat url "${req.url}"`);
    }
    const scope = scopeOf(req.scope);
    await this.checkSource(req.url);
    this.start(
      this.plan(req, scope, [req.url], req.header, {
        objectStorage: req.objectStorage,
        hdfs: req.hdfs,
        outputPath: req.outputPath,
      }),
    );
  }

  async preheatImage(req: PreheatImageRequest): Promise<void> {
    const scope = scopeOf(req.scope);
    const image = await this.resolveImage(req);
    this.start(this.plan(req, scope, image.blobUrls, image.header, {}, req.enableTaskIdBasedBlobDigest));
  }

  async statFile(req: StatFileRequest): Promise<StatFileResponse> {
    const peers = await this.stat(req, [req.url], DEFAULT_CONCURRENT_LAYER_COUNT, [
      ...this.d.resources.hosts.values(),
    ]);
    return { peers: peers.map((p) => ({ ip: p.ip, hostname: p.hostname, cachedFiles: p.items })) };
  }

  async statImage(req: StatImageRequest): Promise<StatImageResponse> {
    const image = await this.resolveImage(req);
    checkRange('concurrentLayerCount', req.concurrentLayerCount);
    // v2.3.8's scope: the seed peers only, or every host (the default).
    if (req.scope !== '' && req.scope !== 'all_seed_peers' && req.scope !== 'all_peers') {
      throw invalidArgument(`unsupported stat scope: ${req.scope} (expected all_seed_peers, all_peers)`);
    }
    const hosts =
      req.scope === 'all_seed_peers' ? this.d.resources.seedHosts() : [...this.d.resources.hosts.values()];
    const peers = await this.stat(
      req,
      image.blobUrls,
      req.concurrentLayerCount ?? DEFAULT_CONCURRENT_LAYER_COUNT,
      hosts,
      req.enableTaskIdBasedBlobDigest,
    );
    const layers = image.blobUrls.map((url) => ({ url }));
    return {
      image: { layers },
      peers: peers.map((p): PeerImage => ({ ip: p.ip, hostname: p.hostname, cachedLayers: p.items })),
    };
  }

  /** Stops every background job from starting more downloads (running ones are cancelled by the trigger). */
  close(): void {
    for (const job of this.jobs) job.abort();
    this.jobs.clear();
  }

  private async checkSource(url: string): Promise<void> {
    try {
      await this.d.gate.checkUrl(url);
    } catch (e) {
      if (isDfError(e) && e.code === 'PERMISSION_DENIED') throw permissionDenied(e.message);
      throw e;
    }
  }

  /** The image's blob URLs; a registry that fails is INVALID_ARGUMENT as in Go, the address gate's refusal is kept. */
  private async resolveImage(req: PreheatImageRequest | StatImageRequest) {
    try {
      return await this.d.images.resolve({
        url: req.url,
        username: req.username,
        password: req.password,
        platform: req.platform,
        header: req.header,
        insecureSkipVerify: req.insecureSkipVerify,
        timeoutMs: req.timeout ? durationToMs(req.timeout) : DEFAULT_JOB_TIMEOUT_MS,
      });
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      if (isDfError(e) && e.code === 'PERMISSION_DENIED')
        throw permissionDenied(`failed to resolve manifests: ${message}`);
      throw invalidArgument(`failed to resolve manifests: ${message}`);
    }
  }

  private plan(
    req: PreheatFileRequest | PreheatImageRequest,
    scope: PreheatScope,
    urls: string[],
    header: Record<string, string>,
    extra: PreheatPlan['extra'],
    enableTaskIdBasedBlobDigest = false,
  ): PreheatPlan {
    checkRange('percentage', req.percentage);
    checkRange('count', req.count);
    checkRange('concurrentTaskCount', req.concurrentTaskCount);
    checkRange('concurrentPeerCount', req.concurrentPeerCount);
    const resources = this.d.resources;
    const pick = { ips: req.ips, count: req.count, percentage: req.percentage };
    let hosts: Host[] | undefined;
    if (scope === 'single_seed_peer') {
      if (resources.seedHosts().length === 0) {
        throw failedPrecondition(
          'no seed peer is announced to this scheduler (scope single_seed_peer needs one)',
        );
      }
    } else if (scope === 'all_seed_peers') {
      hosts = selectHosts(resources.seedHosts(), 'seed peer', pick);
    } else {
      const normals = [...resources.hosts.values()].filter((h) => h.type === HostType.NORMAL);
      hosts = selectHosts(normals, 'peer', pick);
    }
    return {
      urls,
      header,
      pieceLength: req.pieceLength,
      tag: req.tag ?? '',
      application: req.application ?? '',
      filteredQueryParams: req.filteredQueryParams,
      priority: req.priority,
      certificateChain: req.certificateChain,
      scope,
      hosts,
      concurrentTaskCount: req.concurrentTaskCount ?? DEFAULT_CONCURRENT_TASK_COUNT,
      concurrentPeerCount: req.concurrentPeerCount ?? DEFAULT_CONCURRENT_PEER_COUNT,
      timeoutMs: req.timeout ? durationToMs(req.timeout) : DEFAULT_JOB_TIMEOUT_MS,
      enableTaskIdBasedBlobDigest,
      extra,
    };
  }

  /** The id the peers derive from the Download (selectTaskId): a blob's digest when asked to, else the URL's. */
  private taskIdOf(plan: TaskIdParts, url: string) {
    return selectTaskId({ url, ...plan });
  }

  /** The background job: every URL (concurrentTaskCount at a time) on every host (concurrentPeerCount at a time). */
  private start(plan: PreheatPlan): void {
    const job = new AbortController();
    this.jobs.add(job);
    const timer = setTimeout(() => job.abort(), plan.timeoutMs);
    timer.unref();
    const log = this.d.log.child({ preheat: plan.scope, urls: plan.urls.length });
    log.info({ hosts: plan.hosts?.map((h) => h.id) }, 'preheat started');
    let ok = 0;
    let failed = 0;
    void forEachLimit(plan.urls, plan.concurrentTaskCount, async (url) => {
      const taskId = this.taskIdOf(plan, url);
      const seed = plan.scope === 'single_seed_peer' ? this.d.peers.pick(taskId) : undefined;
      const hosts = plan.hosts ?? (seed ? [seed] : []);
      await forEachLimit(hosts, plan.concurrentPeerCount, async (host) => {
        if (job.signal.aborted) return;
        try {
          await this.downloadOn(host, taskId, this.download(plan, url));
          ok++;
        } catch (e) {
          failed++;
          log.warn(
            { url, taskId, host: host.id, err: (e as Error).message },
            'preheat of a task on a host failed',
          );
        }
      });
    }).finally(() => {
      clearTimeout(timer);
      this.jobs.delete(job);
      log.info({ succeeded: ok, failed, stopped: job.signal.aborted }, 'preheat finished');
    });
  }

  private download(plan: PreheatPlan, url: string): Download {
    return {
      url,
      type: TaskType.STANDARD,
      tag: plan.tag,
      application: plan.application,
      priority: plan.priority,
      filteredQueryParams: plan.filteredQueryParams,
      requestHeader: plan.header,
      pieceLength: plan.pieceLength,
      timeout: msToDuration(plan.timeoutMs),
      disableBackToSource: false,
      needBackToSource: false,
      certificateChain: plan.certificateChain,
      prefetch: false,
      isPrefetch: false,
      needPieceContent: false,
      forceHardLink: false,
      overwrite: false,
      enableTaskIdBasedBlobDigest: plan.enableTaskIdBasedBlobDigest,
      metadataOnly: false,
      schedulingPolicy: SchedulingPolicy.AUTO,
      ...plan.extra,
    };
  }

  private downloadOn(host: Host, taskId: string, download: Download): Promise<void> {
    return new Promise((resolve, reject) => {
      const started = this.d.peers.triggerOn(host, taskId, download, (err) =>
        err ? reject(err) : resolve(),
      );
      if (!started) reject(new Error('the scheduler is stopping'));
    });
  }

  /** Per host that holds any of the URLs' tasks: which, and whether finished (hosts that hold none are left out). */
  private async stat(
    req: StatFileRequest | StatImageRequest,
    urls: string[],
    concurrentUrlCount: number,
    candidates: Host[],
    enableTaskIdBasedBlobDigest = false,
  ): Promise<{ ip: string; hostname: string; items: PeerFile['cachedFiles'] }[]> {
    checkRange('concurrentPeerCount', req.concurrentPeerCount);
    const plan: TaskIdParts = {
      pieceLength: req.pieceLength,
      tag: req.tag ?? '',
      application: req.application ?? '',
      filteredQueryParams: req.filteredQueryParams,
      enableTaskIdBasedBlobDigest,
    };
    const hosts = [...candidates].sort(byId);
    const clients = new Map(hosts.map((h) => [h.id, this.d.peers.uploadClient(h)]));
    const found = new Map<string, { ip: string; hostname: string; items: PeerFile['cachedFiles'] }>();
    const deadline = () => new Date(Date.now() + STAT_LOCAL_TASK_TIMEOUT_MS);
    try {
      await forEachLimit(urls, concurrentUrlCount, async (url) => {
        const taskId = this.taskIdOf(plan, url);
        await forEachLimit(hosts, req.concurrentPeerCount ?? DEFAULT_CONCURRENT_PEER_COUNT, async (host) => {
          const local = await new Promise<StatLocalTaskResponse | undefined>((resolve) =>
            clients
              .get(host.id)!
              .statLocalTask({ taskId }, new Metadata(), { deadline: deadline() }, (err, res) =>
                resolve(err ? undefined : res),
              ),
          );
          if (!local) return;
          let entry = found.get(host.id);
          if (!entry)
            found.set(host.id, (entry = { ip: host.info.ip, hostname: host.info.hostname, items: [] }));
          // Finished where the scheduler can offer it too: the host's peer of the task, if it announced one
          // (a one-piece task never does), must have told us it succeeded. A host's store says finished a moment
          // before its DownloadPeerFinished arrives, and a pull right after `--wait` went to the origin.
          const announced = [...host.peers.values()].filter((p) => p.task.id === taskId);
          const offered = announced.length === 0 || announced.some((p) => p.state === 'Succeeded');
          entry.items.push({ url, isFinished: local.finishedAt !== undefined && offered });
        });
      });
    } finally {
      for (const c of clients.values()) c.close();
    }
    // In the order of the URLs, whatever order the answers came in.
    for (const entry of found.values()) entry.items.sort((a, b) => urls.indexOf(a.url) - urls.indexOf(b.url));
    return [...found.values()];
  }
}
