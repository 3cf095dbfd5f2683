// The --storage-* flags of dfget and dfstore (upstream's, each with its command's environment variable). Their
// value as common.v2.ObjectStorage is object-storage-flags.ts: dfget --version loads this file, and nothing more.

import { Option, type Command } from 'commander';

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

/** Adds the flags; `env` is the variables' prefix (DFGET, DFSTORE_IMPORT, DFSTORE_EXPORT). */
export function addStorageOptions(c: Command, env: string): Command {
  return c
    .addOption(
      new Option('--storage-region <region>', 'object storage region (s3)').env(`${env}_STORAGE_REGION`),
    )
    .addOption(
      new Option('--storage-endpoint <url>', 'object storage endpoint URL').env(`${env}_STORAGE_ENDPOINT`),
    )
    .addOption(
      new Option('--storage-access-key-id <id>', 'object storage access key id (abs: the account name)').env(
        `${env}_STORAGE_ACCESS_KEY_ID`,
      ),
    )
    .addOption(
      new Option(
        '--storage-access-key-secret <secret>',
        'object storage secret access key (abs: the account key)',
      ).env(`${env}_STORAGE_ACCESS_KEY_SECRET`),
    )
    .addOption(
      new Option('--storage-security-token <token>', 'object storage security token (oss)').env(
        `${env}_STORAGE_SECURITY_TOKEN`,
      ),
    )
    .addOption(
      new Option('--storage-session-token <token>', 'object storage session token (s3)').env(
        `${env}_STORAGE_SESSION_TOKEN`,
      ),
    )
    .addOption(
      new Option('--storage-credential-path <path>', 'service account credential file (gs)').env(
        `${env}_STORAGE_CREDENTIAL_PATH`,
      ),
    )
    .addOption(
      new Option('--storage-predefined-acl <acl>', 'predefined ACL (gs)')
        .env(`${env}_STORAGE_PREDEFINED_ACL`)
        .default('publicRead'),
    )
    .addOption(
      new Option('--storage-insecure-skip-verify [bool]', 'skip TLS verification of the object store').env(
        `${env}_STORAGE_INSECURE_SKIP_VERIFY`,
      ),
    );
}
