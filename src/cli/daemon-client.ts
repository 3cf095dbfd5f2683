// The grpc-js clients of dfdaemon's unix socket, for the binaries that make many kinds of calls (dfctl, dfcache,
// dfget's directory listing) and for tests. A plain dfget download does not load this module: it uses the small
// client of grpc/http2-client.ts (see dfget-download.ts).

import { existsSync } from 'node:fs';
import { createConnection } from 'node:net';
import { credentials, type ServiceError } from '@grpc/grpc-js';
import { DfdaemonDownloadClient, DfdaemonUploadClient } from '../gen/dfdaemon.js';
import {
  CLOSED_AT_ONCE,
  CONNECT_TIMEOUT_MS,
  connectFailure,
  DAEMON_WINDOW_BYTES,
  defaultSocketPath,
  describeError,
  NO_ANSWER,
} from './common.js';

/** A DfdaemonDownload client on the unix socket, with unlimited message sizes (pieces travel in messages). */
export function downloadClient(socketPath: string): DfdaemonDownloadClient {
  return new DfdaemonDownloadClient(`unix:${socketPath}`, credentials.createInsecure(), {
    'grpc.max_receive_message_length': -1,
    'grpc.max_send_message_length': -1,
    'grpc-node.flow_control_window': DAEMON_WINDOW_BYTES,
  });
}

/**
 * Waits until the channel is connected. A missing socket, or one nobody listens on, fails at once with the hint
 * upstream's dfget prints ("Is dfdaemon running?"); a dfdaemon that accepts the connection but does not answer in
 * time is reported as busy, not as absent.
 */
export async function connectDaemon(
  client: DfdaemonDownloadClient,
  socketPath: string,
  timeoutMs = CONNECT_TIMEOUT_MS,
) {
  if (!existsSync(socketPath)) throw connectFailure(socketPath, 'socket does not exist', timeoutMs);
  const refused = await probeSocket(socketPath, timeoutMs);
  if (refused) throw connectFailure(socketPath, refused, timeoutMs);
  await new Promise<void>((resolve, reject) =>
    client.waitForReady(Date.now() + timeoutMs, (err) =>
      err ? reject(connectFailure(socketPath, NO_ANSWER, timeoutMs, err.message)) : resolve(),
    ),
  );
}

/** How long the probe waits for dfdaemon's first bytes once connected. */
const FIRST_BYTES_MS = 1_000;

/**
 * Connects to the socket once: undefined when something accepts, else why not (ECONNREFUSED: nobody listens;
 * CLOSED_AT_ONCE: accepted and closed before a byte, as dfdaemon does beyond download.server.maxConnections). An
 * HTTP/2 server speaks first (its SETTINGS), so a live dfdaemon sends bytes at once; one too busy to within
 * FIRST_BYTES_MS is left to waitForReady.
 */
function probeSocket(socketPath: string, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = createConnection(socketPath);
    let settled = false;
    const done = (why: string | undefined) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(why);
    };
    // A full accept queue: let waitForReady wait and report it.
    let timer = setTimeout(() => done(undefined), timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      timer = setTimeout(() => done(undefined), FIRST_BYTES_MS);
    });
    socket.once('data', () => done(undefined));
    socket.once('end', () => done(CLOSED_AT_ONCE));
    socket.once('close', () => done(CLOSED_AT_ONCE));
    socket.once('error', (e: NodeJS.ErrnoException) =>
      done(
        e.code === 'EAGAIN' ? undefined : e.code === 'ECONNRESET' ? CLOSED_AT_ONCE : `${e.code ?? e.message}`,
      ),
    );
  });
}

/** A unary call of a generated client (`(req, cb)` bound by the caller) as a promise. */
export function unary<Res>(f: (cb: (err: ServiceError | null, res?: Res) => void) => unknown): Promise<Res> {
  return new Promise((resolve, reject) => f((err, res) => (err ? reject(err) : resolve(res as Res))));
}

/**
 * Deletes a persistent cache task from every peer holding it: DfdaemonUpload.DeletePersistentCacheTask, which our
 * dfdaemon serves on its download socket too (`dfcache rm`, `dfctl persistent-cache-task rm`).
 */
export async function removePersistentCacheTask(socketPath: string, taskId: string): Promise<void> {
  const upload = new DfdaemonUploadClient(`unix:${socketPath}`, credentials.createInsecure());
  try {
    await unary((cb) => upload.deletePersistentCacheTask({ taskId }, cb));
  } finally {
    upload.close();
  }
}

/**
 * Runs `fn` with a client connected to dfdaemon's socket (-e, else the default one); any failure becomes one
 * `Error:` line on stderr and exit code 1 (dfctl, dfcache).
 */
export async function withDaemon(
  o: { endpoint?: string; console?: boolean; logLevel?: string },
  name: string,
  fn: (client: DfdaemonDownloadClient, socket: string) => Promise<void>,
): Promise<void> {
  const socket = o.endpoint ?? (await defaultSocketPath());
  const client = downloadClient(socket);
  try {
    if (o.console) {
      const { createLogger } = await import('./logging.js');
      createLogger({ name, level: o.logLevel ?? 'info', console: true }).debug({ socket }, 'connecting');
    }
    await connectDaemon(client, socket);
    await fn(client, socket);
  } catch (e) {
    process.stderr.write(`Error: ${describeError(e)}\n`);
    process.exitCode = 1;
  } finally {
    client.close();
  }
}
