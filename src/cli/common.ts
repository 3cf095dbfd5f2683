// What every binary shares: the daemon's socket, the gRPC client to it, and one-line errors.

import { existsSync } from 'node:fs';
import { createConnection } from 'node:net';
import { stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { credentials, Metadata, status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import {
  defaultSocketPath as daemonSocketPath,
  homeDirs,
  resolveDirs,
  resolveHome,
  SYSTEM_DIRS,
} from '../config/dirs.js';
import { parseByteSize } from '../core/bytesize.js';
import { DfError, isDfError } from '../core/errors.js';
import { validatePieceLength } from '../core/piece.js';
import { DfdaemonDownloadClient, DfdaemonUploadClient } from '../gen/dfdaemon.js';

/**
 * The download socket to use when `-e` is not given: the system one if it exists (a root dfdaemon), else the
 * ~/.dragonfly one (a dfdaemon started without root falls back there), else the one a dfdaemon started by this
 * user with its default config would use, so that "is dfdaemon running?" names the socket this user's dfdaemon
 * would create (`~/.dragonfly/dfdaemon.sock` without root), not a system path it could never write.
 */
export async function defaultSocketPath(): Promise<string> {
  const system = join(SYSTEM_DIRS.runDir, 'dfdaemon.sock');
  if (existsSync(system)) return system;
  const home = join(homeDirs(resolveHome()).runDir, 'dfdaemon.sock');
  if (existsSync(home)) return home;
  return configuredSocketPath();
}

/**
 * `download.server.socketPath` of the dfdaemon.yaml dfdaemon reads by default, or its default for this user.
 * Only when neither default socket exists: loading yaml and zod costs tens of milliseconds.
 */
async function configuredSocketPath(): Promise<string> {
  try {
    const { loadDfdaemonConfig } = await import('../config/load.js');
    return loadDfdaemonConfig(undefined).config.download.server.socketPath;
  } catch {
    return daemonSocketPath(resolveDirs().dirs);
  }
}

/**
 * A DfdaemonDownload client on the unix socket, with unlimited message sizes (pieces travel in messages) and
 * upstream dfget's 4 MiB HTTP/2 window (Node's default, 64 KiB, makes transfer mode ack every few frames).
 */
export function downloadClient(socketPath: string): DfdaemonDownloadClient {
  return new DfdaemonDownloadClient(`unix:${socketPath}`, credentials.createInsecure(), {
    'grpc.max_receive_message_length': -1,
    'grpc.max_send_message_length': -1,
    'grpc-node.flow_control_window': 4 * 1024 * 1024,
  });
}

/**
 * How long a client waits for dfdaemon to answer on a socket that someone listens on. A busy machine (a hundred
 * dfget starting at once on two cores) can take seconds; a socket nobody listens on fails at once instead.
 */
export const CONNECT_TIMEOUT_MS = 30_000;

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
  if (!existsSync(socketPath)) throw notRunning(socketPath, 'socket does not exist');
  const refused = await probeSocket(socketPath, timeoutMs);
  if (refused === CLOSED_AT_ONCE) {
    throw new DfError(
      'UNAVAILABLE',
      `Connect Dfdaemon Failed! ${socketPath}: dfdaemon closed the connection at once: it holds as many ` +
        `connections as download.server.maxConnections allows; try again, or raise it in dfdaemon.yaml`,
    );
  }
  if (refused) throw notRunning(socketPath, refused);
  await new Promise<void>((resolve, reject) =>
    client.waitForReady(Date.now() + timeoutMs, (err) =>
      err
        ? reject(
            new DfError(
              'UNAVAILABLE',
              `Connect Dfdaemon Failed! ${socketPath}: dfdaemon accepted the connection but did not answer ` +
                `within ${timeoutMs / 1000}s (${err.message}); it may be overloaded, try again`,
            ),
          )
        : resolve(),
    ),
  );
}

/** probeSocket's answer for a connection accepted and closed before dfdaemon said anything (its cap). */
const CLOSED_AT_ONCE = 'closed at once';
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

function notRunning(socketPath: string, why: string): DfError {
  return new DfError(
    'UNAVAILABLE',
    `Connect Dfdaemon Failed! ${socketPath}: ${why}. Is dfdaemon running? Start it with \`dfdaemon\` ` +
      `(or point -e at its socket, download.server.socketPath in dfdaemon.yaml)`,
  );
}

const STATUS_NAMES = Object.fromEntries(Object.entries(GrpcStatus).map(([k, v]) => [v, k])) as Record<
  number,
  string
>;

/**
 * Whether a gRPC error is grpc-js's own word that the connection to dfdaemon failed or broke (the daemon stopped,
 * crashed or never listened), rather than a status dfdaemon sent (which may be UNAVAILABLE too: an origin that
 * cannot be reached).
 */
export function isTransportFailure(e: unknown): boolean {
  const se = e as Partial<ServiceError>;
  return (
    se.code === GrpcStatus.UNAVAILABLE &&
    /^(Connection dropped|No connection established|Stream refused by server|Subchannel not ready|Write failed|Channel closed)/.test(
      se.details ?? '',
    )
  );
}

/**
 * An origin's answer in one line that says "backend error" once. Our dfdaemon's message already starts with it
 * and names the status ("backend error: 404 Not Found for URL"); an upstream dfdaemon's may say neither.
 */
export function backendLine(status: number, message: string): string {
  const m = message.replace(/^backend error:\s*/i, '').trim();
  if (m === '') return `backend error: origin answered ${status}`;
  if (m.startsWith(`${status} `) || m === String(status)) return `backend error: origin answered ${m}`;
  return `backend error: origin answered ${status}: ${m}`;
}

/** One line for a person: no stack, no byte arrays; an origin's status is spelled out (errordetails.v2.Backend). */
export function describeError(e: unknown): string {
  const se = e as Partial<ServiceError>;
  if (typeof se.code === 'number' && se.metadata instanceof Metadata) {
    const raw = se.metadata.get('grpc-status-details-bin')[0];
    if (raw) {
      try {
        const b = JSON.parse(Buffer.from(raw as Buffer).toString('utf8')) as {
          message?: string;
          status_code?: number;
        };
        if (b.status_code) return backendLine(b.status_code, b.message ?? se.details ?? '');
      } catch {
        // Not JSON: fall through to the status message.
      }
    }
    if (se.code === GrpcStatus.DEADLINE_EXCEEDED) return 'timed out (see --timeout)';
    if (se.code === GrpcStatus.UNAVAILABLE && isTransportFailure(e)) {
      return `Connect Dfdaemon Failed! ${se.details}`;
    }
    return `${se.details || STATUS_NAMES[se.code] || 'error'}`;
  }
  if (isDfError(e)) return e.message;
  return e instanceof Error ? e.message : String(e);
}

/** Stops a long-running binary gracefully on SIGINT/SIGTERM (once), flushing the log before exiting. */
export function stopOnSignals(
  log: { info(o: object, m: string): void; flush(): void },
  stop: () => Promise<void>,
): void {
  let stopping = false;
  const onSignal = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'signal received');
    stop().then(
      () => {
        log.flush();
        process.exit(0);
      },
      () => process.exit(1),
    );
  };
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));
}

/** commander's accumulator for a repeatable option. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** `-H 'Key: Value'` lines into a header map; a line without a key is INVALID_ARGUMENT naming it. */
export function parseHeaders(lines: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of lines) {
    const at = line.indexOf(':');
    if (at <= 0) throw new DfError('INVALID_ARGUMENT', `invalid header "${line}": expected "Key: Value"`);
    out[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return out;
}

/** `--piece-length`: a byte size of at least MIN_PIECE_LENGTH (upstream's floor), or undefined when not given. */
export function parsePieceLength(text: string | undefined): number | undefined {
  return text === undefined ? undefined : validatePieceLength(parseByteSize(text));
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

/** The output's directory must exist (dfget does not create it, as upstream): say which way it is wrong. */
async function checkOutputDirectory(dir: string): Promise<void> {
  let st: Awaited<ReturnType<typeof stat>>;
  try {
    st = await stat(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT')
      throw new DfError('INVALID_ARGUMENT', `output directory ${dir} does not exist (create it first)`);
    if (code === 'ENOTDIR')
      throw new DfError('INVALID_ARGUMENT', `output directory ${dir}: a part of the path is not a directory`);
    if (code === 'EACCES')
      throw new DfError('PERMISSION_DENIED', `output directory ${dir}: permission denied`);
    throw new DfError('INVALID_ARGUMENT', `output directory ${dir}: ${(e as Error).message}`);
  }
  if (!st.isDirectory()) throw new DfError('INVALID_ARGUMENT', `output path ${dir} is not a directory`);
}

/**
 * An output path checked before dfdaemon is asked (dfget, dfcache export): its directory exists, it is no
 * directory, and it exists only with --overwrite. Returns it absolute.
 */
export async function checkOutputPath(path: string, overwrite: boolean): Promise<string> {
  const output = resolve(path);
  await checkOutputDirectory(dirname(output));
  const existing = await stat(output).catch(() => undefined);
  if (existing?.isDirectory()) throw new DfError('INVALID_ARGUMENT', `output path ${path} is a directory`);
  if (existing && !overwrite) {
    throw new DfError('ALREADY_EXISTS', `output path ${path} already exists (use --overwrite to replace it)`);
  }
  return output;
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
