// The local-task RPCs of DfdaemonDownload (StatLocalTask, ListLocalTasks, DeleteLocalTask): what this peer
// holds in its own storage, for dfctl. Upstream answers them from the metadata store alone
// (resource/task.rs stat_local/list_local/delete_local); so do we.

import { DfError } from '../../core/errors.js';
import type {
  DeleteLocalTaskRequest,
  ListLocalTasksResponse,
  StatLocalTaskRequest,
  StatLocalTaskResponse,
} from '../../gen/dfdaemon.js';
import type { Empty } from '../../gen/google/protobuf/empty.js';
import type { TaskRecord } from '../../storage/storage.js';
import type { TaskManager } from '../task-manager.js';

/**
 * A stored task's state as common.v2.Task.state spells it: Succeeded once finished; Running while a download
 * holds it in this daemon; Failed when its last download failed; Pending when it is partial and idle.
 */
export function localTaskState(task: TaskRecord, active: boolean): string {
  if (task.finishedAt) return 'Succeeded';
  if (active) return 'Running';
  if (task.failedAt) return 'Failed';
  return 'Pending';
}

export function statLocalTaskResponse(task: TaskRecord): StatLocalTaskResponse {
  return {
    taskId: task.id,
    pieceLength: task.pieceLength,
    contentLength: task.contentLength,
    responseHeader: task.responseHeader,
    uploadingCount: task.uploadingCount,
    uploadedCount: task.uploadedCount,
    createdAt: task.createdAt,
    updatedAt: task.updatedAt,
    prefetchedAt: task.prefetchedAt,
    failedAt: task.failedAt,
    finishedAt: task.finishedAt,
  };
}

export class LocalTasks {
  constructor(
    private readonly taskManager: TaskManager,
    private readonly log: { info(o: object, m: string): void },
  ) {}

  async stat(req: StatLocalTaskRequest): Promise<StatLocalTaskResponse> {
    const task = this.taskManager.storage.getTask(req.taskId);
    if (!task) throw new DfError('TASK_NOT_FOUND', `local task not found: ${req.taskId}`);
    return statLocalTaskResponse(task);
  }

  async list(): Promise<ListLocalTasksResponse> {
    return { tasks: this.taskManager.storage.listTasks().map(statLocalTaskResponse) };
  }

  /** Deletes the content and metadata (a download holding the task is cancelled first). */
  async delete(req: DeleteLocalTaskRequest): Promise<Empty> {
    if (!req.taskId) throw new DfError('INVALID_ARGUMENT', 'task_id is empty');
    if (!this.taskManager.storage.getTask(req.taskId)) {
      throw new DfError('TASK_NOT_FOUND', `local task not found: ${req.taskId}`);
    }
    await this.taskManager.deleteTask(req.taskId);
    this.log.info({ taskId: req.taskId, remoteIp: req.remoteIp }, 'local task deleted');
    return {};
  }
}
