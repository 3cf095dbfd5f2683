// dfget's connection to dfdaemon's download socket over the small HTTP/2 gRPC client (grpc/http2-client.ts),
// with the same one-line failures as the grpc-js clients (common.ts connectFailure). Connecting is the probe:
// dfdaemon's HTTP/2 SETTINGS arrive first, so "nobody listens", "closed at once" and "busy" are told apart on the
// one connection the download then uses.

import { existsSync } from 'node:fs';
import { ConnectFailure, connectUnix, type GrpcHttp2Client } from '../grpc/http2-client.js';
import type { PendingConnection } from '../grpc/pending-connection.js';
import { CLOSED_AT_ONCE, connectFailure, DAEMON_WINDOW_BYTES, NO_ANSWER } from './common.js';

/** What a ConnectFailure's reason means for the person at the terminal. */
function reasonOf(f: ConnectFailure): string {
  if (f.reason === 'TIMEOUT' || f.reason === 'EAGAIN') return NO_ANSWER;
  if (f.reason === 'ECONNRESET' || f.reason === 'CLOSED_AT_ONCE') return CLOSED_AT_ONCE;
  return f.reason;
}

/** A channel to dfdaemon's socket, on `pending` when dfget connected early. */
export async function openDaemonChannel(
  socketPath: string,
  timeoutMs: number,
  pending?: PendingConnection,
): Promise<GrpcHttp2Client> {
  if (!existsSync(socketPath)) {
    pending?.destroy();
    throw connectFailure(socketPath, 'socket does not exist', timeoutMs);
  }
  try {
    return await connectUnix(socketPath, { timeoutMs, windowBytes: DAEMON_WINDOW_BYTES, pending });
  } catch (e) {
    if (e instanceof ConnectFailure) throw connectFailure(socketPath, reasonOf(e), timeoutMs, e.message);
    throw e;
  }
}
