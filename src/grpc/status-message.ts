// The message of a gRPC status as our servers send it. grpc-message travels in the trailers: a message quoting a
// 3 MB task id exceeded the client's header list limit, so the client saw RESOURCE_EXHAUSTED instead of the real
// status; and an id holding a newline made dfget print two lines.

import { oneLine } from '../core/errors.js';

/** The longest status message sent. */
export const MAX_STATUS_MESSAGE = 1024;

/** The message on one line (control characters escaped), cut to MAX_STATUS_MESSAGE characters saying how long. */
export function statusMessage(message: string): string {
  const line = oneLine(message);
  if (line.length <= MAX_STATUS_MESSAGE) return line;
  return `${line.slice(0, MAX_STATUS_MESSAGE)}… (${line.length} characters in all)`;
}
