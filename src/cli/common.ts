// What every binary shares: the daemon's socket, why it cannot be reached, and one-line errors. No gRPC library
// here: dfget talks to dfdaemon through grpc/http2-client.ts, the other binaries through grpc-js
// (daemon-client.ts), and both report failures with these functions.

import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import {
  defaultSocketPath as daemonSocketPath,
  homeDirs,
  resolveDirs,
  resolveHome,
  SYSTEM_DIRS,
} from '../config/dirs.js';
import { parseByteSize } from '../core/bytesize.js';
import { DfError, GrpcCode, grpcCodeName, isDfError } from '../core/errors.js';
import { validatePieceLength } from '../core/piece.js';

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
 * How long a client waits for dfdaemon to answer on a socket that someone listens on. A busy machine (a hundred
 * dfget starting at once on two cores) can take seconds; a socket nobody listens on fails at once instead.
 */
export const CONNECT_TIMEOUT_MS = 30_000;

/** Upstream dfget's HTTP/2 window (Node's default, 64 KiB, makes transfer mode ack every few frames). */
export const DAEMON_WINDOW_BYTES = 4 * 1024 * 1024;

/** Why dfdaemon's socket could not be reached for a connection that was accepted and closed before a byte. */
export const CLOSED_AT_ONCE = 'CLOSED_AT_ONCE';
/** Why, for a dfdaemon that accepted the connection but did not answer in time. */
export const NO_ANSWER = 'NO_ANSWER';

/**
 * The one-line error for a socket that cannot be reached: `reason` is an errno (ENOENT, ECONNREFUSED: nobody
 * listens), CLOSED_AT_ONCE (dfdaemon's connection cap) or NO_ANSWER (busy), with upstream dfget's hint.
 */
export function connectFailure(socketPath: string, reason: string, timeoutMs: number, detail = ''): DfError {
  if (reason === CLOSED_AT_ONCE) {
    return new DfError(
      'UNAVAILABLE',
      `Connect Dfdaemon Failed! ${socketPath}: dfdaemon closed the connection at once: it holds as many ` +
        `connections as download.server.maxConnections allows; try again, or raise it in dfdaemon.yaml`,
    );
  }
  if (reason === NO_ANSWER) {
    return new DfError(
      'UNAVAILABLE',
      `Connect Dfdaemon Failed! ${socketPath}: dfdaemon accepted the connection but did not answer ` +
        `within ${timeoutMs / 1000}s${detail ? ` (${detail})` : ''}; it may be overloaded, try again`,
    );
  }
  return new DfError(
    'UNAVAILABLE',
    `Connect Dfdaemon Failed! ${socketPath}: ${reason}. Is dfdaemon running? Start it with \`dfdaemon\` ` +
      `(or point -e at its socket, download.server.socketPath in dfdaemon.yaml)`,
  );
}

/** What both gRPC clients' errors have: grpc-js's ServiceError and http2-client's GrpcCallError. */
interface CallError {
  code: number;
  details: string;
  metadata: { get(key: string): unknown[] };
  transport?: boolean;
}

function isCallError(e: unknown): e is CallError {
  const c = e as Partial<CallError> | null;
  return typeof c?.code === 'number' && typeof c.metadata?.get === 'function';
}

/**
 * Whether a gRPC error is the client's own word that the connection to dfdaemon failed or broke (the daemon
 * stopped, crashed or never listened), rather than a status dfdaemon sent (which may be UNAVAILABLE too: an
 * origin that cannot be reached). http2-client says so with `transport`; grpc-js only in its message.
 */
export function isTransportFailure(e: unknown): boolean {
  if (!isCallError(e) || e.code !== GrpcCode.UNAVAILABLE) return false;
  return (
    e.transport === true ||
    /^(Connection dropped|No connection established|Stream refused by server|Subchannel not ready|Write failed|Channel closed)/.test(
      e.details ?? '',
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
  if (isCallError(e)) {
    const raw = e.metadata.get('grpc-status-details-bin')[0];
    if (raw) {
      try {
        const b = JSON.parse(Buffer.from(raw as Buffer).toString('utf8')) as {
          message?: string;
          status_code?: number;
        };
        if (b.status_code) return backendLine(b.status_code, b.message ?? e.details ?? '');
      } catch {
        // Not JSON: fall through to the status message.
      }
    }
    if (e.code === GrpcCode.DEADLINE_EXCEEDED) return 'timed out (see --timeout)';
    if (e.code === GrpcCode.UNAVAILABLE && isTransportFailure(e)) {
      return `Connect Dfdaemon Failed! ${e.details}`;
    }
    return `${e.details || grpcCodeName(e.code) || 'error'}`;
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
