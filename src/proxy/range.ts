// The request's `Range` header against the task's length (upstream parse_range_header: one range only).

export type RangeAnswer =
  /** No Range header: the whole content. */
  | { kind: 'none' }
  /** One satisfiable range: [start, start + length). */
  | { kind: 'range'; start: number; length: number }
  /** A single range outside the content: 416 with `Content-Range: bytes *\/total`. */
  | { kind: 'unsatisfiable' }
  /** Several ranges, or a unit other than bytes: not served from P2P (the origin answers it directly). */
  | { kind: 'unsupported' };

/** Parses `bytes=a-b`, `bytes=a-`, `bytes=-n` for content of `total` bytes (RFC 9110 §14.1.2). */
export function parseRange(header: string | undefined, total: number): RangeAnswer {
  if (header === undefined) return { kind: 'none' };
  const m = /^\s*bytes\s*=\s*(.*)$/i.exec(header);
  if (!m) return { kind: 'unsupported' };
  const specs = m[1]!.split(',').map((s) => s.trim());
  if (specs.length !== 1) return { kind: 'unsupported' };
  const one = /^(\d*)\s*-\s*(\d*)$/.exec(specs[0]!);
  if (!one || (one[1] === '' && one[2] === '')) return { kind: 'unsatisfiable' };
  let start: number;
  let end: number;
  if (one[1] === '') {
    const suffix = Number(one[2]);
    if (suffix === 0 || total === 0) return { kind: 'unsatisfiable' };
    start = Math.max(0, total - suffix);
    end = total - 1;
  } else {
    start = Number(one[1]);
    end = one[2] === '' ? total - 1 : Math.min(Number(one[2]), total - 1);
    if (one[2] !== '' && Number(one[2]) < start) return { kind: 'unsatisfiable' };
  }
  if (!Number.isSafeInteger(start) || start >= total) return { kind: 'unsatisfiable' };
  return { kind: 'range', start, length: end - start + 1 };
}

/**
 * RFC 9110 §13.1.5: whether the Range of a request with `If-Range` applies to the stored representation. An entity
 * tag must be strong and equal to the stored ETag; a date must equal the stored Last-Modified. Otherwise the whole
 * content is sent: a client resuming a download must not get bytes of another version glued to its own.
 */
export function ifRangeMatches(ifRange: string, responseHeader: Record<string, string>): boolean {
  const stored = (name: string) =>
    Object.entries(responseHeader)
      .find(([k]) => k.toLowerCase() === name)?.[1]
      ?.trim();
  const v = ifRange.trim();
  if (v.startsWith('W/')) return false;
  if (v.startsWith('"')) {
    const etag = stored('etag');
    return etag !== undefined && !etag.startsWith('W/') && etag === v;
  }
  const lastModified = stored('last-modified');
  if (lastModified === undefined) return false;
  const a = Date.parse(v);
  return !Number.isNaN(a) && a === Date.parse(lastModified);
}
