// Seed peers (spec/scheduler.md §4): hosts announced with type 1. When a normal peer registers for a task nobody
// serves yet, the scheduler asks one seed, picked by task id, to fetch the task from the source with
// `DfdaemonUpload.DownloadTask`, so the peer (after a few scheduling rounds) gets the seed as its parent.
// Go health-checks seeds every 30s and keeps a consistent-hash ring; we take every announced type-1 host (host GC
// drops the dead ones) and pick by CRC-32 of the task id modulo the sorted seed list.

import { crc32 } from 'node:zlib';
import { credentials, type ChannelCredentials, type ClientReadableStream } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { Download } from '../../gen/common.js';
import { DfdaemonUploadClient, type DownloadTaskResponse } from '../../gen/dfdaemon.js';
import type { Host, Resources } from './resources.js';

/** `ip:port` as a grpc-js target (IPv6 in brackets). */
export function hostTarget(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

export class SeedPeerTrigger {
  private readonly inflight = new Set<{
    call: ClientReadableStream<DownloadTaskResponse>;
    client: DfdaemonUploadClient;
  }>();
  private closed = false;

  /**
   * `creds`: how to reach seeds' upload ports; with a client certificate when they require one (mTLS,
   * upload.server.caCert): dfdaemon's upload.client, dfscheduler's seedPeer.tls (`tlsKey` names it in logs).
   */
  constructor(
    private readonly resources: Resources,
    private readonly log: Logger,
    private readonly creds: ChannelCredentials = credentials.createInsecure(),
    private readonly tlsKey?: string,
  ) {}

  hasAvailable(): boolean {
    return this.resources.seedHosts().length > 0;
  }

  pick(taskId: string): Host | undefined {
    const seeds = this.resources.seedHosts().sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    if (seeds.length === 0) return undefined;
    return seeds[crc32(taskId) % seeds.length];
  }

  /**
   * Starts `DownloadTask` on the seed in the background: no deadline, the reply stream drained and discarded,
   * errors only logged (children go back to source after their scheduling rounds). `download` must already carry
   * need_back_to_source and no output path. `onEnd` runs once when the call ends (also when it is cancelled).
   */
  trigger(taskId: string, download: Download, onEnd?: (err?: Error) => void): boolean {
    if (this.closed) return false;
    const seed = this.pick(taskId);
    if (!seed) return false;
    return this.triggerOn(seed, taskId, download, onEnd);
  }

  /**
   * `DownloadTask` on the given host (a seed, or any peer for a preheat of all peers), as trigger() does; false
   * once closed.
   */
  triggerOn(host: Host, taskId: string, download: Download, onEnd?: (err?: Error) => void): boolean {
    if (this.closed) return false;
    const client = this.uploadClient(host);
    const call = client.downloadTask({ download });
    const entry = { call, client };
    this.inflight.add(entry);
    const target = hostTarget(host.info.ip, host.info.port);
    const log = this.log.child({ taskId, seedHost: host.id, target, tls: this.tlsKey ?? 'off' });
    log.info({}, 'seed peer triggers download task');
    let done = false;
    const finish = (err?: Error) => {
      if (done) return;
      done = true;
      this.inflight.delete(entry);
      client.close();
      onEnd?.(err);
      if (err) log.warn({ err: err.message }, 'seed peer download task failed');
      else log.info({}, 'seed peer download task finished');
    };
    call.on('data', () => undefined);
    call.on('end', () => finish());
    call.on('error', (err) => finish(err));
    return true;
  }

  /** A client of the host's upload port, with the credentials seed triggers use; the caller closes it. */
  uploadClient(host: Host): DfdaemonUploadClient {
    return new DfdaemonUploadClient(hostTarget(host.info.ip, host.info.port), this.creds, {
      'grpc.max_receive_message_length': -1,
    });
  }

  /** Cancels the calls still running. */
  close(): void {
    this.closed = true;
    for (const { call, client } of this.inflight) {
      call.cancel();
      client.close();
    }
    this.inflight.clear();
  }
}
