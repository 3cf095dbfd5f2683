// A scheduler.v2 client harness for tests: announce hosts, and drive AnnouncePeer streams one reply at a time,
// as a peer would (without ever half-closing, like the Rust client).

import { credentials, type ClientDuplexStream, type ServiceError, type StatusObject } from '@grpc/grpc-js';
import { Download, Host, type Peer, type Task } from '../../src/gen/common.js';
import type { Empty } from '../../src/gen/google/protobuf/empty.js';
import {
  AnnouncePeerRequest,
  SchedulerClient,
  type AnnounceHostRequest,
  type AnnouncePeerResponse,
  type DeleteHostRequest,
  type DeletePeerRequest,
  type DeleteTaskRequest,
  type ListHostsRequest,
  type ListHostsResponse,
  type StatCacheTaskRequest,
  type StatPeerRequest,
  type StatTaskRequest,
} from '../../src/gen/scheduler.js';

export function schedulerClient(port: number): SchedulerClient {
  return new SchedulerClient(`127.0.0.1:${port}`, credentials.createInsecure());
}

function promise<Res>(f: (cb: (err: ServiceError | null, res: Res) => void) => unknown): Promise<Res> {
  return new Promise((resolve, reject) => f((err, res) => (err ? reject(err) : resolve(res))));
}

/** The unary RPCs of the generated client as promises. */
export function rpc(c: SchedulerClient) {
  return {
    announceHost: (r: AnnounceHostRequest) => promise<Empty>((cb) => c.announceHost(r, cb)),
    listHosts: (r: ListHostsRequest) => promise<ListHostsResponse>((cb) => c.listHosts(r, cb)),
    deleteHost: (r: DeleteHostRequest) => promise<Empty>((cb) => c.deleteHost(r, cb)),
    statPeer: (r: StatPeerRequest) => promise<Peer>((cb) => c.statPeer(r, cb)),
    deletePeer: (r: DeletePeerRequest) => promise<Empty>((cb) => c.deletePeer(r, cb)),
    statTask: (r: StatTaskRequest) => promise<Task>((cb) => c.statTask(r, cb)),
    deleteTask: (r: DeleteTaskRequest) => promise<Empty>((cb) => c.deleteTask(r, cb)),
    statCacheTask: (r: StatCacheTaskRequest) => promise<unknown>((cb) => c.statCacheTask(r, cb)),
  };
}

export function announceHost(
  client: SchedulerClient,
  host: Partial<Host> & { id: string },
  intervalMs?: number,
): Promise<unknown> {
  const full = Host.fromPartial({
    hostname: host.id,
    ip: '127.0.0.1',
    port: 4000,
    downloadPort: 4000,
    ...host,
  });
  const interval =
    intervalMs === undefined
      ? undefined
      : { seconds: Math.floor(intervalMs / 1000), nanos: (intervalMs % 1000) * 1e6 };
  return rpc(client).announceHost({ host: full, interval });
}

export function download(partial: Partial<Download> = {}): Download {
  return Download.fromPartial({
    url: 'http://origin.test/file.bin',
    actualContentLength: 3 * 4 * 1024 * 1024,
    actualPieceLength: 4 * 1024 * 1024,
    actualPieceCount: 3,
    ...partial,
  });
}

export function piece(number: number, parentId?: string) {
  const len = 4 * 1024 * 1024;
  return {
    number,
    parentId,
    offset: number * len,
    length: len,
    digest: 'crc32:12345',
    trafficType: parentId ? 1 : 0,
    cost: { seconds: 0, nanos: 5_000_000 },
    createdAt: new Date(),
  };
}

/** One AnnouncePeer stream of one peer: send requests, await replies, await the final status. */
export class PeerStream {
  readonly call: ClientDuplexStream<AnnouncePeerRequest, AnnouncePeerResponse>;
  private readonly replies: AnnouncePeerResponse[] = [];
  private waiting?: (r: AnnouncePeerResponse | undefined) => void;
  private ended = false;
  readonly status: Promise<StatusObject>;

  constructor(
    client: SchedulerClient,
    readonly hostId: string,
    readonly taskId: string,
    readonly peerId: string,
  ) {
    this.call = client.announcePeer();
    this.call.on('data', (r: AnnouncePeerResponse) => {
      if (this.waiting) {
        const w = this.waiting;
        this.waiting = undefined;
        w(r);
      } else this.replies.push(r);
    });
    this.status = new Promise((resolve) => {
      this.call.on('status', (s: StatusObject) => {
        this.ended = true;
        this.waiting?.(undefined);
        resolve(s);
      });
    });
    // Errors arrive as status too; keep 'error' from throwing.
    this.call.on('error', () => undefined);
  }

  send(partial: Partial<AnnouncePeerRequest>): void {
    this.call.write(
      AnnouncePeerRequest.fromPartial({
        hostId: this.hostId,
        taskId: this.taskId,
        peerId: this.peerId,
        ...partial,
      }),
    );
  }

  register(d: Download): void {
    this.send({ registerPeerRequest: { download: d } });
  }

  /** The next reply, or undefined if the stream ended first. */
  next(timeoutMs = 5000): Promise<AnnouncePeerResponse | undefined> {
    const r = this.replies.shift();
    if (r) return Promise.resolve(r);
    if (this.ended) return Promise.resolve(undefined);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting = undefined;
        reject(new Error(`no reply within ${timeoutMs}ms for ${this.peerId}`));
      }, timeoutMs);
      this.waiting = (x) => {
        clearTimeout(timer);
        resolve(x);
      };
    });
  }

  /** The final status, failing after `timeoutMs` (the server must end the call by itself). */
  async finalStatus(timeoutMs = 5000): Promise<StatusObject> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`stream of ${this.peerId} not ended within ${timeoutMs}ms`)),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([this.status, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  cancel(): void {
    this.call.cancel();
  }
}
