// The opendal operator for an object storage URL: dfget's `--storage-*` options (common.v2.ObjectStorage) mapped to
// the service's settings as upstream's `object_storage.rs` does (same defaults, same required fields), and the
// operators kept per bucket and credentials so that their connections are reused across pieces. opendal (a native
// binding) is loaded on the first object storage request: a daemon serving http only never loads it, and a
// platform without a usable binding gets one clear error on that request instead of a daemon that cannot start.

import type { Operator } from 'opendal';
import { DfError } from '../core/errors.js';
import type { ObjectStorageOptions } from './backend.js';
import { OBJECT_STORAGE_SERVICES, type ObjectStorageScheme } from '../core/object-storage-scheme.js';
import type { ObjectStorageUrl } from './object-storage-url.js';

/** S3's region when none is given (upstream DEFAULT_REGION). */
export const DEFAULT_S3_REGION = 'us-east-1';

/** Operators kept; past this the least recently used is dropped (each holds a connection pool). */
const MAX_OPERATORS = 64;

/** The flag a user sets for each option, for messages that say what is missing. */
const FLAG_OF: Record<'endpoint', string> = { endpoint: '--storage-endpoint' };

/** The schemes whose service has no usable default endpoint: upstream refuses them without one. */
const ENDPOINT_REQUIRED: ReadonlySet<ObjectStorageScheme> = new Set(['abs', 'oss', 'obs', 'cos']);

/** The service settings (opendal's snake_case keys) for a bucket and the request's options. */
export function operatorSettings(parsed: ObjectStorageUrl, o: ObjectStorageOptions): Record<string, string> {
  if (ENDPOINT_REQUIRED.has(parsed.scheme) && !o.endpoint) {
    throw new DfError('INVALID_ARGUMENT', `${parsed.scheme} needs an endpoint: set ${FLAG_OF.endpoint}`);
  }
  const settings: Record<string, string | undefined> = {};
  switch (parsed.scheme) {
    case 's3':
      Object.assign(settings, {
        bucket: parsed.bucket,
        region: o.region || DEFAULT_S3_REGION,
        endpoint: o.endpoint,
        access_key_id: o.accessKeyId,
        secret_access_key: o.accessKeySecret,
        session_token: o.sessionToken,
      });
      break;
    case 'gs':
      Object.assign(settings, {
        bucket: parsed.bucket,
        endpoint: o.endpoint,
        credential_path: o.credentialPath,
        predefined_acl: o.predefinedAcl,
      });
      // Without a credential file, requests go unsigned (a public bucket, a local emulator) rather than failing
      // on a missing service account; and the instance metadata server is not asked (off a cloud VM, it is a
      // connection that waits for its timeout).
      if (!o.credentialPath)
        Object.assign(settings, { allow_anonymous: 'true', disable_vm_metadata: 'true' });
      // A credential file that cannot be used must fail as that, not fall back to the metadata server.
      else settings.disable_vm_metadata = 'true';
      break;
    case 'abs':
      Object.assign(settings, {
        container: parsed.bucket,
        endpoint: o.endpoint,
        account_name: o.accessKeyId,
        account_key: o.accessKeySecret,
      });
      break;
    case 'oss':
      Object.assign(settings, {
        bucket: parsed.bucket,
        endpoint: o.endpoint,
        root: '/',
        access_key_id: o.accessKeyId,
        access_key_secret: o.accessKeySecret,
        security_token: o.securityToken,
      });
      break;
    case 'obs':
      Object.assign(settings, {
        bucket: parsed.bucket,
        endpoint: o.endpoint,
        access_key_id: o.accessKeyId,
        secret_access_key: o.accessKeySecret,
      });
      break;
    case 'cos':
      Object.assign(settings, {
        bucket: parsed.bucket,
        endpoint: o.endpoint,
        secret_id: o.accessKeyId,
        secret_key: o.accessKeySecret,
      });
      break;
  }
  return Object.fromEntries(
    Object.entries(settings).filter((e): e is [string, string] => e[1] !== undefined && e[1] !== ''),
  );
}

/** Operators by service and settings, least recently used first. */
export class OperatorCache {
  private readonly operators = new Map<string, Operator>();
  private opendal?: Promise<typeof import('opendal')>;

  async get(parsed: ObjectStorageUrl, options: ObjectStorageOptions): Promise<Operator> {
    const service = OBJECT_STORAGE_SERVICES[parsed.scheme];
    const settings = operatorSettings(parsed, options);
    const { Operator } = await this.load(parsed.scheme);
    const key = JSON.stringify([service, settings]);
    let op = this.operators.get(key);
    if (op !== undefined) {
      this.operators.delete(key);
    } else {
      try {
        op = new Operator(service, settings);
      } catch (cause) {
        // opendal validates the settings here (an endpoint that is not a URL, ...); its message names the field.
        throw new DfError('INVALID_ARGUMENT', `${parsed.scheme} settings are invalid: ${firstLine(cause)}`);
      }
      if (this.operators.size >= MAX_OPERATORS) {
        this.operators.delete(this.operators.keys().next().value!);
      }
    }
    this.operators.set(key, op);
    return op;
  }

  clear(): void {
    this.operators.clear();
  }

  private load(scheme: string): Promise<typeof import('opendal')> {
    this.opendal ??= import('opendal').catch((cause: unknown) => {
      this.opendal = undefined;
      throw new DfError(
        'BACKEND_UNSUPPORTED',
        `${scheme} needs the opendal package's native binding, which did not load here: ${firstLine(cause)}`,
      );
    });
    return this.opendal;
  }
}

function firstLine(e: unknown): string {
  return String((e as Error)?.message ?? e).split('\n')[0]!;
}
