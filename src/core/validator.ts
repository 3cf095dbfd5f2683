// The validator of a source object (RFC 9110 §8.8): its ETag and Last-Modified as the stat saw them. A task keeps
// the stat's response header, so its validator is read from there (no column of its own); every piece fetched from
// the source must belong to that same version, and a stored task that is not finished is resumed only if a new
// stat still names it. Pure: headers in, answers out.

export interface SourceValidator {
  /** The ETag as the origin sent it (`"abc"` or weak `W/"abc"`). */
  etag?: string;
  /** The Last-Modified HTTP-date as the origin sent it. */
  lastModified?: string;
}

/** The validator in a response header (names in any case); empty when the origin sent neither. */
export function validatorOf(header: Record<string, string>): SourceValidator {
  const v: SourceValidator = {};
  for (const [name, value] of Object.entries(header)) {
    const n = name.toLowerCase();
    const trimmed = value.trim();
    if (!trimmed) continue;
    if (n === 'etag') v.etag = trimmed;
    else if (n === 'last-modified') v.lastModified = trimmed;
  }
  return v;
}

export function hasValidator(v: SourceValidator): boolean {
  return v.etag !== undefined || v.lastModified !== undefined;
}

export function isWeakEtag(etag: string): boolean {
  return etag.startsWith('W/');
}

/** Weak comparison (RFC 9110 §8.8.3.2): the opaque tags are equal, W/ or not. */
function sameEtag(a: string, b: string): boolean {
  return opaqueTag(a) === opaqueTag(b);
}

function opaqueTag(etag: string): string {
  return isWeakEtag(etag) ? etag.slice(2) : etag;
}

function sameDate(a: string, b: string): boolean {
  if (a === b) return true;
  const x = Date.parse(a);
  const y = Date.parse(b);
  return !Number.isNaN(x) && x === y;
}

/**
 * The precondition for a ranged GET of a piece, so that an origin that changed answers 412 instead of bytes of
 * the new version: `If-Match` with a strong ETag, else `If-Unmodified-Since` with Last-Modified. A weak ETag never
 * matches If-Match (strong comparison, RFC 9110 §13.1.1), so it is not sent; its Last-Modified is, if any.
 * Empty when the origin gave no usable validator.
 */
export function preconditionHeaders(v: SourceValidator): Record<string, string> {
  if (v.etag !== undefined && !isWeakEtag(v.etag)) return { 'if-match': v.etag };
  if (v.lastModified !== undefined) return { 'if-unmodified-since': v.lastModified };
  return {};
}

/**
 * How a piece's answer shows that the object is not the recorded version, or undefined when it does not. Only what
 * the answer carries is compared (an origin may leave validators out of a 206): the ETag when both have one (it
 * decides: equal tags mean the same bytes even if Last-Modified moved), else Last-Modified.
 */
export function answerChanged(recorded: SourceValidator, answer: SourceValidator): string | undefined {
  if (recorded.etag !== undefined && answer.etag !== undefined) {
    return sameEtag(recorded.etag, answer.etag) ? undefined : `ETag ${recorded.etag} → ${answer.etag}`;
  }
  if (recorded.lastModified !== undefined && answer.lastModified !== undefined) {
    return sameDate(recorded.lastModified, answer.lastModified)
      ? undefined
      : `Last-Modified ${recorded.lastModified} → ${answer.lastModified}`;
  }
  return undefined;
}

/**
 * Whether a new stat describes the same object as the stored one, so that stored pieces may be kept. Stricter
 * than answerChanged: a validator that appeared or disappeared counts as a change (the pieces cannot be tied to
 * the new answer). Two stats without any validator are "the same" because nothing can tell them apart.
 */
export function statChanged(stored: SourceValidator, now: SourceValidator): string | undefined {
  if (stored.etag !== undefined || now.etag !== undefined) {
    if (stored.etag === undefined || now.etag === undefined || !sameEtag(stored.etag, now.etag)) {
      return `ETag ${stored.etag ?? '(none)'} → ${now.etag ?? '(none)'}`;
    }
    return undefined;
  }
  if (stored.lastModified !== undefined || now.lastModified !== undefined) {
    if (
      stored.lastModified === undefined ||
      now.lastModified === undefined ||
      !sameDate(stored.lastModified, now.lastModified)
    ) {
      return `Last-Modified ${stored.lastModified ?? '(none)'} → ${now.lastModified ?? '(none)'}`;
    }
  }
  return undefined;
}
