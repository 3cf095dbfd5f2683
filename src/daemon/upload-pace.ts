// How many piece bodies the piece server sends at once, from how fast this host's uplink turned out to be. Without
// cut-through (storage.server.cutThrough) a piece is relayed only once it is whole, so a swarm spreads a fresh
// piece one hop per time its holder takes to send it: on a slow uplink, four bodies at once make every hop four
// times as long (with cut-through, a relayed body still moves at a quarter of the rate). Relayed bodies give no
// sample: their pace is their parent's. Measured
// at 10 Mbit/s with 4 MiB pieces in a 32-peer swarm: four at once, no download finished in 120 s; one at a time,
// all in 101 s. On a fast uplink a piece takes a fraction of a second and Vortex opens one connection per piece,
// so several at once keep the link busy between pieces.

import { ewma } from '../core/ewma.js';

/** Bodies at once before anything was measured. */
const INITIAL_SLOTS = 2;
/** A piece taking at least this long alone is sent one at a time … */
const ONE_AT_A_TIME_S = 2;
/** … at least this long, two at a time; shorter, four. */
const TWO_AT_A_TIME_S = 0.8;
const EWMA_ALPHA = 0.3;

export class UploadPace {
  /** Smoothed seconds the uplink needs per byte of one body sent alone. */
  private secondsPerByte?: number;

  /** A body of `bytes` took `ms` to send while `concurrent` bodies (itself included) were being sent. */
  observe(bytes: number, ms: number, concurrent: number): void {
    if (bytes <= 0 || ms <= 0) return;
    const sample = ms / 1000 / bytes / Math.max(1, concurrent);
    this.secondsPerByte = ewma(this.secondsPerByte, sample, EWMA_ALPHA);
  }

  /** Bodies to send at once when the next piece has `pieceLength` bytes. */
  slots(pieceLength: number): number {
    if (this.secondsPerByte === undefined) return INITIAL_SLOTS;
    const alone = this.secondsPerByte * pieceLength;
    if (alone >= ONE_AT_A_TIME_S) return 1;
    if (alone >= TWO_AT_A_TIME_S) return 2;
    return 4;
  }
}
