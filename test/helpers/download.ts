// A common.v2.Download for tests: a standard task of `url` with every field at its proto default but `extra`.

import { Priority, SchedulingPolicy, TaskType, type Download } from '../../src/gen/common.js';

export function testDownload(url: string, extra: Partial<Download> = {}): Download {
  return {
    url,
    type: TaskType.STANDARD,
    priority: Priority.LEVEL6,
    filteredQueryParams: [],
    requestHeader: {},
    disableBackToSource: false,
    needBackToSource: false,
    certificateChain: [],
    prefetch: false,
    isPrefetch: false,
    needPieceContent: false,
    forceHardLink: false,
    overwrite: false,
    enableTaskIdBasedBlobDigest: false,
    metadataOnly: false,
    schedulingPolicy: SchedulingPolicy.AUTO,
    ...extra,
  };
}
