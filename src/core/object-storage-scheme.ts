// The object storage schemes (upstream `object_storage.rs` `Scheme`) and the opendal service serving each. Pure
// data in core: dfget needs to know a scheme is object storage (to send the --storage-* flags) without loading the
// backend.

export const OBJECT_STORAGE_SERVICES = {
  s3: 's3',
  gs: 'gcs',
  abs: 'azblob',
  oss: 'oss',
  obs: 'obs',
  cos: 'cos',
} as const;

export type ObjectStorageScheme = keyof typeof OBJECT_STORAGE_SERVICES;

export function isObjectStorageScheme(scheme: string): scheme is ObjectStorageScheme {
  return Object.hasOwn(OBJECT_STORAGE_SERVICES, scheme);
}
