// Who may ask this peer, over the upload port, to download (DownloadTask: a scheduler triggering a seed, a
// preheat) or to delete (DeleteTask) a task: the schedulers this daemon uses, the addresses in
// security.trustedSchedulers, and any caller that presented a client certificate the upload server verified
// (upload.server.caCert, mTLS). Upstream lets anyone do both; anyone else gets PERMISSION_DENIED here (issue 16
// item 6). SyncPieces, SyncHost and StatTask stay open to every peer: they are how P2P works.

import { AddressList, ipOfPeer, normalizeIp } from '../../core/addresses.js';
import { DfError } from '../../core/errors.js';

/** The parts of a grpc-js server call this needs. */
export interface CallerCall {
  getPeer(): string;
  getAuthContext?(): { sslPeerCertificate?: unknown };
}

export interface UploadCallersOptions {
  /** security.trustedSchedulers */
  trusted: AddressList;
  /** The schedulers this daemon uses, "ip:port" / "[v6]:port" (SchedulerSelector.knownAddresses). */
  schedulers: () => readonly string[];
  /** More addresses of ours that a scheduler calls from: this host's, when the embedded scheduler runs here. */
  local?: () => readonly string[];
}

export class UploadCallers {
  private readonly o: UploadCallersOptions;

  constructor(o: UploadCallersOptions) {
    this.o = o;
  }

  /** Why the caller is trusted ("scheduler 10.0.0.1", "mTLS client"), or undefined. */
  trustedAs(call: CallerCall): string | undefined {
    if (call.getAuthContext?.().sslPeerCertificate !== undefined) return 'mTLS client';
    const ip = ipOfPeer(call.getPeer());
    if (ip === undefined) return undefined;
    if (this.o.trusted.hasIp(ip)) return `${ip} (security.trustedSchedulers)`;
    if (this.o.schedulers().some((addr) => ipOfPeer(addr) === ip)) return `scheduler ${ip}`;
    if (this.o.local?.().some((addr) => normalizeIp(addr)?.ip === ip)) return `embedded scheduler ${ip}`;
    return undefined;
  }

  /** Throws PERMISSION_DENIED naming the caller and how to allow it, unless it is trusted. */
  check(call: CallerCall, rpc: string): void {
    if (this.trustedAs(call) !== undefined) return;
    const ip = ipOfPeer(call.getPeer()) ?? call.getPeer();
    const schedulers = this.o.schedulers();
    throw new DfError(
      'PERMISSION_DENIED',
      `${rpc} on the upload port is accepted only from this dfdaemon's schedulers` +
        `${schedulers.length > 0 ? ` (${schedulers.join(', ')})` : ''}, from security.trustedSchedulers, or ` +
        `from a client certificate (upload.server.caCert); ${ip} is none of them`,
    );
  }
}
