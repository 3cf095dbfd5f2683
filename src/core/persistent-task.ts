// A persistent task (dfstore) is named by its object: sha256(url ‖ region ‖ endpoint ‖ "PERSISTENT"). Upstream's
// dfdaemon (grpc/dfdaemon_download.rs upload_persistent_task, download_persistent_task) refuses a request without a
// region or an endpoint, as neither could name the object unambiguously; so do we, with the flag to set.

import { DfError } from './errors.js';
import { isObjectStorageScheme } from './object-storage-scheme.js';
import { persistentTaskId } from './task-id.js';

export function persistentTaskIdOf(
  url: string,
  objectStorage: { region?: string; endpoint?: string } | undefined,
): string {
  let scheme: string;
  try {
    scheme = new URL(url).protocol.replace(/:$/, '');
  } catch {
    throw new DfError('INVALID_ARGUMENT', `url ${JSON.stringify(url.slice(0, 200))} is not a URL`);
  }
  if (!isObjectStorageScheme(scheme)) {
    throw new DfError(
      'INVALID_ARGUMENT',
      `url ${url} is not an object storage URL: persistent tasks live in s3, gs, abs, oss, obs or cos`,
    );
  }
  if (!objectStorage) throw new DfError('INVALID_ARGUMENT', 'missing object storage');
  if (!objectStorage.region) {
    throw new DfError('INVALID_ARGUMENT', 'missing object storage region: set --storage-region');
  }
  if (!objectStorage.endpoint) {
    throw new DfError('INVALID_ARGUMENT', 'missing object storage endpoint: set --storage-endpoint');
  }
  return persistentTaskId({ url, region: objectStorage.region, endpoint: objectStorage.endpoint });
}
