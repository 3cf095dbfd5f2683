// The --storage-* flags (storage-options.ts) as common.v2.ObjectStorage, for dfget and dfstore.

import { DfError } from '../core/errors.js';
import type { ObjectStorage } from '../gen/common.js';
import type { StorageFlags } from './storage-options.js';

export function objectStorageFrom(o: StorageFlags): ObjectStorage {
  return {
    region: o.storageRegion,
    endpoint: o.storageEndpoint,
    accessKeyId: o.storageAccessKeyId,
    accessKeySecret: o.storageAccessKeySecret,
    securityToken: o.storageSecurityToken,
    sessionToken: o.storageSessionToken,
    credentialPath: o.storageCredentialPath,
    predefinedAcl: o.storagePredefinedAcl,
    insecureSkipVerify:
      o.storageInsecureSkipVerify === undefined ? undefined : parseBool(o.storageInsecureSkipVerify),
  };
}

function parseBool(v: boolean | string): boolean {
  if (typeof v === 'boolean') return v;
  if (v === 'true') return true;
  if (v === 'false') return false;
  throw new DfError(
    'INVALID_ARGUMENT',
    `invalid --storage-insecure-skip-verify "${v}": expected true or false`,
  );
}
