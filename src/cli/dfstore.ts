#!/usr/bin/env node
// dfstore: persistent tasks backed by object storage (dragonfly-client/src/bin/dfstore). `import PATH --url URL`
// writes the file as the object (dfdaemon puts it in concurrent parts) and keeps it in the P2P cluster (the
// scheduler places replicas on other peers); `export URL -O OUT` fetches it from the peers holding it, taking what
// no peer has from the object store. The task is named by the object: its URL, --storage-region and
// --storage-endpoint (both required, as upstream's dfdaemon requires them). Everything goes over the local
// dfdaemon's socket; flags, defaults and environment variables are upstream's.

import { Command } from 'commander';
import { Metadata } from '@grpc/grpc-js';
import { msToDuration } from '../core/duration.js';
import { DfError } from '../core/errors.js';
import { persistentTaskIdOf } from '../core/persistent-task.js';
import type { ObjectStorage, PersistentTask } from '../gen/common.js';
import type { DfdaemonDownloadClient, DownloadPersistentTaskResponse } from '../gen/dfdaemon.js';
import { unary, withDaemon as withConnectedDaemon } from './daemon-client.js';
import { objectStorageFrom } from './object-storage-flags.js';
import {
  addExportOptions,
  addImportOptions,
  checkExport,
  checkImport,
  exportRequestFields,
  receiveExport,
  refuse,
  withCommon,
  withSpinner,
  type CommonOptions,
  type ExportFlags,
  type ImportFlags,
} from './persistent-cli.js';
import { addOptionSpecs } from './commander-options.js';
import { storageOptionSpecs, type StorageFlags } from './storage-options.js';
import { packageVersion } from './version.js';

interface ImportOptions extends CommonOptions, StorageFlags, ImportFlags {
  url: string;
}

type ExportOptions = CommonOptions & StorageFlags & ExportFlags;

function withDaemon(
  o: CommonOptions,
  fn: (client: DfdaemonDownloadClient, socket: string) => Promise<void>,
): Promise<void> {
  return withConnectedDaemon(o, 'dfstore', fn);
}

/**
 * The object's URL as upstream sends it (Rust's Url::to_string, which Node's URL matches for these schemes), and
 * its storage settings; the task id is checked here so that a missing region or endpoint is told before dfdaemon
 * is asked.
 */
function objectOf(url: string, o: StorageFlags): { url: string; objectStorage: ObjectStorage } {
  let normalized: string;
  try {
    normalized = new URL(url).toString();
  } catch {
    throw new DfError('INVALID_ARGUMENT', `url ${JSON.stringify(url.slice(0, 200))} is not a URL`);
  }
  const objectStorage = objectStorageFrom(o);
  persistentTaskIdOf(normalized, objectStorage);
  return { url: normalized, objectStorage };
}

async function importFile(path: string, o: ImportOptions): Promise<void> {
  let v;
  try {
    v = { ...(await checkImport(path, o)), ...objectOf(o.url, o) };
  } catch (e) {
    return refuse(e);
  }
  const { url, objectStorage, abs, replicas, ttlMs, timeoutMs } = v;
  await withDaemon(o, async (client) => {
    const task = await withSpinner(o.progress, () =>
      unary<PersistentTask>((cb) =>
        client.uploadPersistentTask(
          {
            url,
            objectStorage,
            path: abs,
            persistentReplicaCount: replicas,
            ttl: msToDuration(ttlMs),
            timeout: msToDuration(timeoutMs),
          },
          new Metadata(),
          { deadline: Date.now() + timeoutMs },
          cb,
        ),
      ),
    );
    if (o.progress) process.stderr.write(`Done: ${url}\n`);
    process.stdout.write(`${task.id}\n`);
  });
}

async function exportFile(rawUrl: string, o: ExportOptions): Promise<void> {
  let checked;
  try {
    checked = { object: objectOf(rawUrl, o), ...(await checkExport(o)) };
  } catch (e) {
    return refuse(e);
  }
  const { object, output, timeoutMs } = checked;
  await withDaemon(o, async (client) => {
    const transfer = o.transferFromDfdaemon;
    const stream = client.downloadPersistentTask(
      {
        url: object.url,
        objectStorage: object.objectStorage,
        ...exportRequestFields(o, output, timeoutMs),
      },
      new Metadata(),
      { deadline: Date.now() + timeoutMs },
    );
    await receiveExport(stream, {
      output,
      overwrite: o.overwrite,
      transfer,
      digest: o.digest,
      progress: o.progress,
      label: object.url,
      started: (res: DownloadPersistentTaskResponse) =>
        res.downloadPersistentTaskStartedResponse?.contentLength,
    });
  });
}

export function dfstoreCommand(): Command {
  const root = new Command('dfstore')
    .description(
      'Import files into the P2P cluster as persistent tasks backed by object storage, and export them by URL.',
    )
    .version(`dfstore ${packageVersion()}`, '-V, --version');
  const importCommand = addImportOptions(
    withCommon(
      root
        .command('import')
        .description(
          'Import a local file: write it to object storage and keep replicas on peers; prints its task id',
        ),
      'DFSTORE_IMPORT',
    ),
    'DFSTORE_IMPORT',
  )
    .argument('<path>', 'the file to import')
    .requiredOption(
      '--url <url>',
      'the object to write, scheme://<bucket>/<path> (s3, gs, abs, oss, obs, cos)',
    );
  addOptionSpecs(importCommand, storageOptionSpecs('DFSTORE_IMPORT')).action(
    (path: string, o: ImportOptions) => importFile(path, o),
  );
  const exportCommand = addExportOptions(
    withCommon(
      root
        .command('export')
        .description('Export an object to a file, from peers first, else from object storage'),
      'DFSTORE_EXPORT',
    ),
    'DFSTORE_EXPORT',
  ).argument('<url>', 'the object, scheme://<bucket>/<path>');
  addOptionSpecs(exportCommand, storageOptionSpecs('DFSTORE_EXPORT')).action(
    (url: string, o: ExportOptions) => exportFile(url, o),
  );
  return root;
}

await dfstoreCommand().parseAsync(process.argv);
