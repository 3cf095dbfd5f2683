// Object storage URLs, `<scheme>://<bucket>/<key>` (upstream `object_storage.rs` `ParsedURL`): the bucket (an Azure
// container for abs) is the URL's host, the key its percent-decoded path without the leading `/`. A key ending in
// `/` names a "directory": a prefix that is listed, never read.

import { DfError } from '../core/errors.js';
import { isObjectStorageScheme, type ObjectStorageScheme } from '../core/object-storage-scheme.js';

export interface ObjectStorageUrl {
  scheme: ObjectStorageScheme;
  bucket: string;
  /** The decoded key; '' for the bucket's root. */
  key: string;
  /** The key ends in `/` (or is the root): a prefix to list. */
  isDir: boolean;
}

export function parseObjectStorageUrl(url: string): ObjectStorageUrl {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new DfError('INVALID_ARGUMENT', `invalid object storage URL "${url}"`);
  }
  const scheme = u.protocol.slice(0, -1);
  if (!isObjectStorageScheme(scheme)) {
    throw new DfError('INVALID_ARGUMENT', `"${scheme}" is not an object storage scheme in ${url}`);
  }
  if (!u.hostname) {
    throw new DfError(
      'INVALID_ARGUMENT',
      `object storage URL ${url} names no bucket: expected ${scheme}://BUCKET/KEY`,
    );
  }
  // A URL without a path (`s3://bucket`) has pathname '' for non-special schemes.
  const path = u.pathname.startsWith('/') ? u.pathname.slice(1) : u.pathname;
  let key: string;
  try {
    key = decodeURIComponent(path);
  } catch {
    throw new DfError(
      'INVALID_ARGUMENT',
      `object storage URL ${url} has an invalid percent-encoding in its key`,
    );
  }
  return { scheme, bucket: u.hostname, key, isDir: key === '' || key.endsWith('/') };
}

/** The URL of an entry listed under a bucket: same scheme and bucket, the entry's key as the path (encoded). */
export function entryUrl(parsed: ObjectStorageUrl, key: string): string {
  const encoded = key
    .split('/')
    .map((segment) => encodeURIComponent(segment))
    .join('/');
  return `${parsed.scheme}://${parsed.bucket}/${encoded}`;
}

/** `scheme://bucket/key` for messages: never a query (it could carry a signature). */
export function describeObject(parsed: ObjectStorageUrl): string {
  return `${parsed.scheme}://${parsed.bucket}/${parsed.key}`;
}
