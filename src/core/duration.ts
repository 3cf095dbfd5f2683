// google.protobuf.Duration ⇄ milliseconds. Structural, so core needs no generated code: a generated Duration
// passes as it is.

export interface DurationFields {
  seconds: number;
  nanos: number;
}

/** Whole seconds and the rest in nanoseconds; negative spans become 0. */
export function msToDuration(ms: number): DurationFields {
  const whole = Math.max(0, ms);
  const seconds = Math.floor(whole / 1000);
  return { seconds, nanos: Math.round((whole - seconds * 1000) * 1e6) };
}

/** Milliseconds of a Duration; an absent one is 0. */
export function durationToMs(d: DurationFields | undefined): number {
  if (!d) return 0;
  return d.seconds * 1000 + d.nanos / 1e6;
}
