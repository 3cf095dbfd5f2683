// The --storage-* flags of dfget and dfstore (upstream's, each with its command's environment variable), as an
// option table: dfget parses it with argv.ts, dfstore's commander commands take it through commander-options.ts.
// Their value as common.v2.ObjectStorage is object-storage-flags.ts: dfget --version loads this file, and nothing
// more.

import type { OptionSpec } from './argv.js';

export interface StorageFlags {
  storageRegion?: string;
  storageEndpoint?: string;
  storageAccessKeyId?: string;
  storageAccessKeySecret?: string;
  storageSecurityToken?: string;
  storageSessionToken?: string;
  storageCredentialPath?: string;
  storagePredefinedAcl?: string;
  storageInsecureSkipVerify?: boolean | string;
}

/** The flags; `env` is the variables' prefix (DFGET, DFSTORE_IMPORT, DFSTORE_EXPORT). */
export function storageOptionSpecs(env: string): OptionSpec[] {
  return [
    {
      flags: '--storage-region <region>',
      description: 'object storage region (s3)',
      env: `${env}_STORAGE_REGION`,
    },
    {
      flags: '--storage-endpoint <url>',
      description: 'object storage endpoint URL',
      env: `${env}_STORAGE_ENDPOINT`,
    },
    {
      flags: '--storage-access-key-id <id>',
      description: 'object storage access key id (abs: the account name)',
      env: `${env}_STORAGE_ACCESS_KEY_ID`,
    },
    {
      flags: '--storage-access-key-secret <secret>',
      description: 'object storage secret access key (abs: the account key)',
      env: `${env}_STORAGE_ACCESS_KEY_SECRET`,
    },
    {
      flags: '--storage-security-token <token>',
      description: 'object storage security token (oss)',
      env: `${env}_STORAGE_SECURITY_TOKEN`,
    },
    {
      flags: '--storage-session-token <token>',
      description: 'object storage session token (s3)',
      env: `${env}_STORAGE_SESSION_TOKEN`,
    },
    {
      flags: '--storage-credential-path <path>',
      description: 'service account credential file (gs)',
      env: `${env}_STORAGE_CREDENTIAL_PATH`,
    },
    {
      flags: '--storage-predefined-acl <acl>',
      description: 'predefined ACL (gs)',
      default: 'publicRead',
      env: `${env}_STORAGE_PREDEFINED_ACL`,
    },
    {
      flags: '--storage-insecure-skip-verify [bool]',
      description: 'skip TLS verification of the object store',
      env: `${env}_STORAGE_INSECURE_SKIP_VERIFY`,
    },
  ];
}
