// The parent selector (resource/parent_selector.rs): among the parents that hold a piece, pick one at random,
// weighted by its idle upload bandwidth as reported by DfdaemonUpload.SyncHost:
// weight = max(maxTx − tx, 10 % of maxTx), and 10 Gbps for a parent that has not reported yet.

import type { ClientReadableStream } from '@grpc/grpc-js';
import type { Host } from '../gen/common.js';
import type { DfdaemonUploadClient } from '../gen/dfdaemon.js';
import type { PieceHolder } from './piece-collector.js';

/** Assumed max upload bandwidth of a parent we have no report from (upstream's default), bits per second. */
const DEFAULT_MAX_TX_BPS = 10_000_000_000;

export class ParentSelector {
  private readonly weights = new Map<string, number>();
  private readonly streams = new Map<string, ClientReadableStream<Host>>();
  private readonly random: () => number;

  constructor(
    private readonly hostId: string,
    private readonly peerId: string,
    private readonly uploadClient: (ip: string, port: number) => DfdaemonUploadClient,
    random: () => number = Math.random,
  ) {
    this.random = random;
  }

  /** Starts following a parent host's upload load (once per host). */
  watch(hostId: string, ip: string, port: number): void {
    if (this.streams.has(hostId)) return;
    const stream = this.uploadClient(ip, port).syncHost({ hostId: this.hostId, peerId: this.peerId });
    this.streams.set(hostId, stream);
    stream.on('data', (h: Host) => {
      const max = h.network?.maxTxBandwidth || DEFAULT_MAX_TX_BPS;
      const tx = h.network?.txBandwidth ?? 0;
      this.weights.set(hostId, Math.max(max - tx, max * 0.1));
    });
    // A parent that stops reporting keeps its last weight; its failures are handled per piece.
    stream.on('error', () => undefined);
  }

  weight(hostId: string): number {
    return this.weights.get(hostId) ?? DEFAULT_MAX_TX_BPS;
  }

  pick(holders: PieceHolder[]): PieceHolder {
    if (holders.length === 1) return holders[0]!;
    const ws = holders.map((h) => this.weight(h.hostId));
    let r = this.random() * ws.reduce((a, b) => a + b, 0);
    for (let i = 0; i < holders.length; i++) {
      r -= ws[i]!;
      if (r < 0) return holders[i]!;
    }
    return holders[holders.length - 1]!;
  }

  close(): void {
    for (const s of this.streams.values()) s.cancel();
    this.streams.clear();
  }
}
