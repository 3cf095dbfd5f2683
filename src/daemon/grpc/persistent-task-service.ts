// The persistent task RPCs (dfstore) of both dfdaemon services (grpc/dfdaemon_download.rs, dfdaemon_upload.rs):
// - DfdaemonDownload on the unix socket: UploadPersistentTask (dfstore import), DownloadPersistentTask (dfstore
//   export), StatPersistentTask, StatLocalPersistentTask, ListLocalPersistentTasks.
// - DfdaemonUpload on the upload port: DownloadPersistentTask (the scheduler placing a replica),
//   SyncPersistentPieces (a child learning our pieces), Update/Stat/DeletePersistentTask.
// Everything but the messages is shared with the persistent cache RPCs (PersistentServiceBase).

import type { ServerWritableStream, UntypedHandleCall } from '@grpc/grpc-js';
import { TaskType, type PersistentTask } from '../../gen/common.js';
import type {
  DownloadPersistentTaskRequest,
  DownloadPersistentTaskResponse,
  ListLocalPersistentTasksResponse,
  StatLocalPersistentTaskRequest,
  StatLocalPersistentTaskResponse,
  StatPersistentTaskRequest,
  UploadPersistentTaskRequest,
} from '../../gen/dfdaemon.js';
import { localTaskMessage, statLocalResponse } from '../persistent-cache/messages.js';
import type { PersistentTaskExporter } from '../persistent-task/export.js';
import { taskMessage, type PersistentTaskImporter } from '../persistent-task/import.js';
import { PersistentServiceBase, type PersistentServiceOptions } from './persistent-cache-service.js';
import { checkTaskId } from './status.js';

export interface PersistentTaskServiceOptions extends PersistentServiceOptions {
  importer: PersistentTaskImporter;
  exporter: PersistentTaskExporter;
}

export class PersistentTaskService extends PersistentServiceBase<PersistentTaskServiceOptions> {
  constructor(o: PersistentTaskServiceOptions) {
    super(o, TaskType.PERSISTENT, 'persistent task');
  }

  /** DfdaemonDownload handlers (the unix socket). */
  downloadHandlers(): Record<string, UntypedHandleCall> {
    return {
      uploadPersistentTask: this.unary<UploadPersistentTaskRequest, PersistentTask>(
        'upload_persistent_task',
        async (req, call) => this.o.importer.upload(req, await this.o.callerOf(call.getPeer())),
      ),
      downloadPersistentTask: (
        call: ServerWritableStream<DownloadPersistentTaskRequest, DownloadPersistentTaskResponse>,
      ) => void this.download(call, false),
      statPersistentTask: this.unary<StatPersistentTaskRequest, PersistentTask>(
        'stat_persistent_task',
        (req) => (checkTaskId(req.taskId), this.o.exporter.stat(req.taskId)),
      ),
      statLocalPersistentTask: this.unary<StatLocalPersistentTaskRequest, StatLocalPersistentTaskResponse>(
        'stat_local_persistent_task',
        async (req) => statLocalResponse(await this.local(req.taskId)),
      ),
      listLocalPersistentTasks: this.unary<unknown, ListLocalPersistentTasksResponse>(
        'list_local_persistent_tasks',
        async () => ({ tasks: this.o.store.list().map(statLocalResponse) }),
      ),
    };
  }

  /** DfdaemonUpload handlers (the upload port). */
  uploadHandlers(): Record<string, UntypedHandleCall> {
    return {
      downloadPersistentTask: (
        call: ServerWritableStream<DownloadPersistentTaskRequest, DownloadPersistentTaskResponse>,
      ) => {
        if (this.checkScheduler(call, 'DownloadPersistentTask')) void this.download(call, true);
      },
      ...this.replicaHandlers('PersistentTask', (t) =>
        taskMessage(localTaskMessage(t, { currentReplicas: 1 })),
      ),
    };
  }

  private download(
    call: ServerWritableStream<DownloadPersistentTaskRequest, DownloadPersistentTaskResponse>,
    fromScheduler: boolean,
  ): Promise<void> {
    return this.stream(call, fromScheduler, 'download_persistent_task', (req, caller, write, signal) =>
      this.o.exporter.download(req, caller, write, signal),
    );
  }
}
