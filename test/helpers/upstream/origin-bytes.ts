// How many bytes of one file the test origin sent, from the requests it recorded: a ranged GET counts its range
// (clamped to the file), a GET without Range the whole file, HEAD nothing. The interop suites use it for "the
// origin served the file about once".

import type { Origin } from '../origin.js';

export function originBytes(origin: Origin, path: string, size: number): number {
  let sum = 0;
  for (const r of origin.requests) {
    if (r.path !== path || r.method !== 'GET') continue;
    const m = r.range ? /^bytes=(\d+)-(\d*)$/.exec(r.range) : null;
    if (!r.range) sum += size;
    else if (m) {
      const start = Number(m[1]);
      const end = m[2] ? Math.min(Number(m[2]), size - 1) : size - 1;
      if (start < size) sum += end - start + 1;
    }
  }
  return sum;
}
