// An exponentially weighted moving average step: the smoothed value after one more sample. Rates and times the
// daemon follows (a parent's throughput, the time to serve a piece, the uplink's pace) each keep one.

/** `previous` moved `alpha` of the way toward `sample`; the first sample stands alone. */
export function ewma(previous: number | undefined, sample: number, alpha: number): number {
  return previous === undefined ? sample : previous * (1 - alpha) + sample * alpha;
}
