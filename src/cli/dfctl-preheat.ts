// `dfctl task preheat URL --scheduler-endpoint ADDR`: put a file (http(s)://…) or an image's blobs (oci://…) on
// the cluster's peers before anyone asks, as upstream's dfctl does in its default (scheduler gRPC) mode: one
// PreheatFile or PreheatImage call to the scheduler, which answers once the downloads are scheduled and runs them
// in the background (dragonfly-client/src/bin/dfctl/task.rs PreheatCommand). Works against our embedded scheduler,
// dfscheduler and Go's scheduler alike.
//
// Ours: `--wait` follows the downloads to the end through ListHosts and StatFile / StatImage
// (scheduler/preheat-progress.ts); `--plain-http` reaches a registry over http://, where upstream always names
// https://. Upstream's request-SDK mode and its object-storage and HDFS flags are not offered.

import { credentials, Metadata, status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { Command, InvalidArgumentError, Option } from 'commander';
import { DfError } from '../core/errors.js';
import { parseDuration } from '../core/humantime.js';
import { manifestUrl, OCI_SCHEME, parseImageReference } from '../core/oci-reference.js';
import { DEFAULT_FILTERED_QUERY_PARAMS } from '../core/filtered-query-params.js';
import type { Priority } from '../gen/common.js';
import type { Duration } from '../gen/google/protobuf/duration.js';
import {
  SchedulerClient,
  type ListHostsResponse,
  type StatFileResponse,
  type StatImageResponse,
} from '../gen/scheduler.js';
import {
  PREHEAT_SCOPES,
  preheatProgress,
  preheatTargets,
  type PeerHolding,
  type ScopeSelection,
} from '../scheduler/preheat-progress.js';
import { collect, describeError, parseHeaders, parsePieceLength } from './common.js';

/** How often --wait asks the scheduler. */
const WAIT_POLL_MS = 1000;

interface PreheatOptions {
  logLevel: string;
  console: boolean;
  schedulerEndpoint: string;
  scope: string;
  ip?: string[];
  percentage?: number;
  count?: number;
  concurrentTaskCount: number;
  concurrentPeerCount?: number;
  platform?: string;
  username?: string;
  password?: string;
  pieceLength?: string;
  tag: string;
  application: string;
  filteredQueryParam?: string[];
  header: string[];
  priority: number;
  insecureSkipVerify: boolean;
  timeout: string;
  plainHttp: boolean;
  enableTaskIdBasedBlobDigest: boolean;
  wait: boolean;
}

/** A commander parser for an integer in [lo, hi] (upstream's clap ranges). */
function intIn(lo: number, hi: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!/^\d+$/.test(v.trim()) || n < lo || n > hi)
      throw new InvalidArgumentError(`expected ${lo} to ${hi}`);
    return n;
  };
}

/** `http://host:port`, `https://host:port` or `host:port` → a grpc-js target and its credentials. */
export function schedulerTarget(endpoint: string) {
  const m = /^(?:(https?):\/\/)?([^/]+?)\/?$/.exec(endpoint.trim());
  if (!m || m[2] === '') {
    throw new DfError(
      'INVALID_ARGUMENT',
      `invalid --scheduler-endpoint "${endpoint}": expected http://HOST:PORT (e.g. http://127.0.0.1:8002)`,
    );
  }
  return {
    target: m[2]!,
    creds: m[1] === 'https' ? credentials.createSsl() : credentials.createInsecure(),
  };
}

function toDuration(ms: number): Duration {
  const seconds = Math.floor(ms / 1000);
  return { seconds, nanos: (ms - seconds * 1000) * 1e6 };
}

function call<Res>(fn: (cb: (err: ServiceError | null, res?: Res) => void) => unknown): Promise<Res> {
  return new Promise((resolve, reject) => fn((err, res) => (err ? reject(err) : resolve(res as Res))));
}

/** One line for the failure: where the scheduler could not be reached, else its answer. */
function preheatError(e: unknown, target: string): string {
  const se = e as Partial<ServiceError>;
  if (se.code === GrpcStatus.UNAVAILABLE) return `cannot reach the scheduler at ${target}: ${se.details}`;
  return describeError(e);
}

async function preheat(url: string, o: PreheatOptions): Promise<void> {
  const { target, creds } = schedulerTarget(o.schedulerEndpoint);
  const timeoutMs = parseDuration(o.timeout);
  const pieceLength = parsePieceLength(o.pieceLength);
  const image = url.startsWith(OCI_SCHEME);
  const requestUrl = image ? manifestUrl(parseImageReference(url, o.plainHttp)) : url;
  const common = {
    url: requestUrl,
    pieceLength,
    tag: o.tag,
    application: o.application,
    filteredQueryParams: o.filteredQueryParam ?? [...DEFAULT_FILTERED_QUERY_PARAMS],
    header: parseHeaders(o.header),
    scope: o.scope,
    ips: o.ip ?? [],
    percentage: o.percentage,
    count: o.count,
    concurrentTaskCount: o.concurrentTaskCount,
    concurrentPeerCount: o.concurrentPeerCount,
    timeout: toDuration(timeoutMs),
    priority: o.priority as Priority,
    certificateChain: [],
    insecureSkipVerify: o.insecureSkipVerify,
  };
  // Image-only fields. The blob-digest task id must match what the pulling peers use (their proxy's
  // registryMirror.enableTaskIDBasedBlobDigest, false by default), or the preheated tasks are not theirs.
  const imageFields = {
    username: o.username,
    password: o.password,
    platform: o.platform,
    enableTaskIdBasedBlobDigest: o.enableTaskIdBasedBlobDigest,
  };
  if (o.console) {
    // The request as sent, without the registry password.
    const { createLogger } = await import('./logging.js');
    createLogger({ name: 'dfctl', level: o.logLevel, console: true }).info(
      {
        target,
        image,
        ...common,
        header: Object.keys(common.header),
        username: o.username,
        platform: o.platform,
      },
      image ? 'PreheatImage' : 'PreheatFile',
    );
  }
  const client = new SchedulerClient(target, creds);
  const deadline = () => ({ deadline: new Date(Date.now() + timeoutMs) });
  try {
    try {
      if (image) {
        await call((cb) =>
          client.preheatImage({ ...common, ...imageFields }, new Metadata(), deadline(), cb),
        );
      } else {
        await call((cb) => client.preheatFile(common, new Metadata(), deadline(), cb));
      }
      if (o.wait) {
        const selection = { scope: o.scope, ips: common.ips, count: o.count, percentage: o.percentage };
        // StatImage's scope (v2.3.8) names which hosts the scheduler asks: the seeds, or every host.
        const statScope = o.scope === 'all_peers' ? 'all_peers' : 'all_seed_peers';
        await waitForPreheat(
          client,
          image,
          { ...common, ...imageFields, scope: statScope },
          selection,
          timeoutMs,
        );
      }
    } catch (e) {
      throw new Error(preheatError(e, target), { cause: e });
    }
  } finally {
    client.close();
  }
  process.stdout.write('Preheat Succeeded!\n');
}

type StatRequest = Parameters<SchedulerClient['statImage']>[0] & Parameters<SchedulerClient['statFile']>[0];

/** Polls until every URL is finished on the hosts the scope picks; prints progress lines to stderr as it moves. */
async function waitForPreheat(
  client: SchedulerClient,
  image: boolean,
  req: StatRequest,
  selection: ScopeSelection,
  timeoutMs: number,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  const opts = () => ({ deadline: new Date(Math.max(Date.now() + 1000, end)) });
  let last = '';
  for (;;) {
    const { hosts } = await call<ListHostsResponse>((cb) => client.listHosts({}, new Metadata(), opts(), cb));
    const targets = preheatTargets(hosts, selection);
    if (targets.needed === 0)
      throw new DfError('INVALID_ARGUMENT', `no host of scope ${selection.scope} to wait for`);
    let urls: string[];
    let peers: PeerHolding[];
    if (image) {
      const r = await call<StatImageResponse>((cb) => client.statImage(req, new Metadata(), opts(), cb));
      urls = r.image?.layers.map((l) => l.url) ?? [];
      peers = r.peers.map((p) => ({ ip: p.ip, hostname: p.hostname, items: p.cachedLayers }));
    } else {
      const r = await call<StatFileResponse>((cb) => client.statFile(req, new Metadata(), opts(), cb));
      urls = [req.url];
      peers = r.peers.map((p) => ({ ip: p.ip, hostname: p.hostname, items: p.cachedFiles }));
    }
    const p = preheatProgress(urls, peers, targets);
    const line = `preheat: ${p.done}/${p.total} finished (${urls.length} ${image ? 'blobs' : 'file'} on ${targets.needed} hosts)`;
    if (line !== last) process.stderr.write(`${line}\n`);
    last = line;
    if (p.done >= p.total) return;
    if (Date.now() + WAIT_POLL_MS > end) {
      throw new DfError('TIMEOUT', `preheat did not finish within --timeout: ${p.done}/${p.total} finished`);
    }
    await new Promise((r) => setTimeout(r, WAIT_POLL_MS));
  }
}

export function addPreheatCommand(task: Command): Command {
  const env = (name: string) => `DFCTL_TASK_PREHEAT_${name}`;
  return task
    .command('preheat')
    .description(
      'Preheat an OCI image (oci://REGISTRY/REPO:TAG) or a file (http(s)://…) onto the peers, through the scheduler',
    )
    .argument('<url>', 'oci:// image reference or http(s):// file URL')
    .addOption(
      new Option(
        '--scheduler-endpoint <endpoint>',
        "the scheduler's gRPC endpoint, e.g. http://127.0.0.1:8002",
      )
        .env(env('SCHEDULER_ENDPOINT'))
        .makeOptionMandatory(),
    )
    .addOption(
      new Option('--scope <scope>', 'which peers download')
        .choices(PREHEAT_SCOPES)
        .default('all_seed_peers')
        .env(env('SCOPE')),
    )
    .option(
      '--ip <ip>',
      'only the peers with this IP (repeatable; wins over --count and --percentage)',
      collect,
    )
    .addOption(
      new Option('--percentage <n>', "this share of the scope's peers, 1 to 100")
        .argParser(intIn(1, 100))
        .env(env('PERCENTAGE')),
    )
    .addOption(
      new Option('--count <n>', "this many of the scope's peers, 1 to 200")
        .argParser(intIn(1, 200))
        .env(env('COUNT')),
    )
    .addOption(
      new Option('--concurrent-task-count <n>', 'files or image blobs preheated at once, 1 to 100')
        .argParser(intIn(1, 100))
        .default(4)
        .env(env('CONCURRENT_TASK_COUNT')),
    )
    .addOption(
      new Option(
        '--concurrent-peer-count <n>',
        'peers downloading one file at once, 1 to 1000 (scheduler default 500)',
      )
        .argParser(intIn(1, 1000))
        .env(env('CONCURRENT_PEER_COUNT')),
    )
    .addOption(
      new Option('--platform <os/arch>', "image platform, e.g. linux/amd64 (default: the scheduler's)").env(
        env('PLATFORM'),
      ),
    )
    .addOption(new Option('--username <name>', 'registry user name').env(env('USERNAME')))
    .addOption(new Option('--password <password>', 'registry password').env(env('PASSWORD')))
    .addOption(
      new Option('--piece-length <size>', 'piece length, at least 4MiB (part of the task id)').env(
        env('PIECE_LENGTH'),
      ),
    )
    .addOption(new Option('--tag <tag>', 'task tag, part of the task id').default('').env(env('TAG')))
    .addOption(
      new Option('--application <name>', 'caller application, part of the task id')
        .default('')
        .env(env('APPLICATION')),
    )
    .option(
      '--filtered-query-param <param>',
      'query parameter left out of the task id (repeatable; default: the built-in signing parameters)',
      collect,
    )
    .option('-H, --header <header>', "request header 'Key: Value' for the source (repeatable)", collect, [])
    .addOption(
      new Option('-p, --priority <n>', 'task priority, 0 to 6')
        .argParser(intIn(0, 6))
        .default(6)
        .env(env('PRIORITY')),
    )
    .addOption(
      new Option('--insecure-skip-verify', "do not verify the origin's TLS certificate")
        .default(false)
        .env(env('INSECURE_SKIP_VERIFY')),
    )
    .addOption(
      new Option('--timeout <duration>', 'how long the preheat may take').default('2h').env(env('TIMEOUT')),
    )
    .addOption(
      new Option(
        '--enable-task-id-based-blob-digest',
        "images: blob tasks get the blob's digest as task id (must match the pulling peers' proxy.registryMirror.enableTaskIDBasedBlobDigest)",
      )
        .default(false)
        .env(env('ENABLE_TASK_ID_BASED_BLOB_DIGEST')),
    )
    .option('--plain-http', 'ours: reach the image registry over http:// instead of https://', false)
    .option('--wait', 'ours: follow the downloads until every peer of the scope has finished', false)
    .option('-l, --log-level <level>', 'log level [trace, debug, info, warn, error]', 'info')
    .option('--console', 'log to the console (stderr)', false)
    .action(async (url: string, o: PreheatOptions) => {
      try {
        await preheat(url, o);
      } catch (e) {
        process.stderr.write(`Error: ${describeError(e)}\n`);
        process.exitCode = 1;
      }
    });
}
