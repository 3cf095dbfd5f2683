// The query parameters left out of a task id by default (dfget, dfctl, proxy rules), apart from task-id.ts so that
// a CLI can name them without loading the hashing.

/**
 * Query parameters that carry request signatures rather than identify content (S3, GCS, OSS, OBS, COS,
 * containerd), in upstream order with duplicates removed (util/src/http/query_params.rs). Upstream applies this
 * list in dfget/dfctl when --filtered-query-params is not given and in proxy rules; the daemon itself uses
 * exactly the list the request carries.
 */
export const DEFAULT_FILTERED_QUERY_PARAMS: readonly string[] = Object.freeze([
  // S3
  'X-Amz-Algorithm',
  'X-Amz-Credential',
  'X-Amz-Date',
  'X-Amz-Expires',
  'X-Amz-SignedHeaders',
  'X-Amz-Signature',
  'X-Amz-Security-Token',
  'X-Amz-User-Agent',
  // GCS
  'X-Goog-Algorithm',
  'X-Goog-Credential',
  'X-Goog-Date',
  'X-Goog-Expires',
  'X-Goog-SignedHeaders',
  'X-Goog-Signature',
  // OSS
  'OSSAccessKeyId',
  'Expires',
  'Signature',
  'SecurityToken',
  // OBS (its Signature and Expires already came from OSS)
  'AccessKeyId',
  'X-Obs-Date',
  'X-Obs-Security-Token',
  // COS
  'q-sign-algorithm',
  'q-ak',
  'q-sign-time',
  'q-key-time',
  'q-header-list',
  'q-url-param-list',
  'q-signature',
  'x-cos-security-token',
  // containerd adds ?ns=<namespace> to registry requests.
  'ns',
]);
