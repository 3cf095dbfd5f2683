// Serving a proxied GET through the task manager (upstream proxy_via_dfdaemon). The answer's headers go out once
// the first piece of the request is stored; the body follows strictly in order, each piece read back from the task's
// content file as soon as it and every piece before it are stored, so memory does not grow with the file.

import type { ServerResponse } from 'node:http';
import type { Writable } from 'node:stream';
import type { Download } from '../gen/common.js';
import type { Caller } from '../core/caller.js';
import { toDfError, type DfError } from '../core/errors.js';
import { H, endToEnd, omitHeaders, type ErrorType } from './headers.js';

export interface P2PPiece {
  number: number;
  offset: number;
  length: number;
}

/** One download of the task manager as the proxy sees it; the daemon implements it. */
export interface P2PSession {
  readonly taskId: string;
  readonly contentLength: number;
  readonly pieceLength: number;
  /** The origin's response headers, stored with the task. */
  readonly responseHeader: Record<string, string>;
  /** The whole task was already stored when the request came. */
  readonly isFinished: boolean;
  /** Narrows the pieces to those overlapping [start, start + length). */
  selectRange(range: { start: number; length: number }): void;
  /** The selected pieces as they are stored (stored ones first, then in completion order). */
  pieces(): AsyncIterable<P2PPiece>;
  /**
   * Writes `length` stored bytes of the task from `offset` to `out` with backpressure, leaving `out` open; returns
   * the bytes written (fewer when the stored content is shorter).
   */
  send(offset: number, length: number, out: Writable): Promise<number>;
  /**
   * Writes the whole task to the Download's output path (X-Dragonfly-Output-Path), before any byte of the answer:
   * every piece is stored, the output linked or copied, the digest checked. A failure is the answer's status.
   */
  writeOutput(): Promise<void>;
  /** The request got every byte (not called after writeOutput). */
  finish(): Promise<void>;
  /** The download failed (not called when the client went away). */
  fail(err: DfError): void;
  /** Ends the session; called exactly once. */
  release(): void;
}

export interface P2PDownloader {
  /**
   * `caller`: who asked, for the output path (only where that local user could write it). `remoteCaller`: the
   * client is not on this host (its source must be an address remote callers may reach).
   */
  open(
    download: Download,
    signal: AbortSignal,
    caller: Caller,
    opts?: { remoteCaller?: boolean },
  ): Promise<P2PSession>;
  /** Downloads the whole task in the background at proxy.prefetchBandwidthLimit (once per task at a time). */
  prefetch(download: Download): void;
}

/** An error answer: status, X-Dragonfly-Error-Type, and a one-line text body naming the cause. */
export function sendError(
  res: ServerResponse,
  type: ErrorType,
  status: number,
  message: string,
  extraHeaders: Record<string, string | string[]> = {},
): void {
  if (res.headersSent) {
    // The bytes already written go out before the cut: http corks the socket until the next tick, and destroy()
    // drops what is still corked.
    res.socket?.uncork();
    res.destroy();
    return;
  }
  const body = Buffer.from(`${message}\n`);
  const headers = omitHeaders(endToEnd(extraHeaders), ['content-length', 'content-encoding', 'content-type']);
  res.writeHead(status, {
    ...headers,
    [H.errorType]: type,
    'content-type': 'text/plain; charset=utf-8',
    'content-length': body.length,
  });
  res.end(body);
}

/** The status and error type for a failed download (upstream: blocklist 403, backend = origin status, else 500). */
export function downloadErrorAnswer(e: DfError): {
  type: ErrorType;
  status: number;
  headers: Record<string, string>;
} {
  if (e.code === 'PERMISSION_DENIED') return { type: 'proxy', status: 403, headers: {} };
  // X-Dragonfly-Output-Path names an existing file (the proxy never overwrites).
  if (e.code === 'ALREADY_EXISTS') return { type: 'proxy', status: 409, headers: {} };
  // The origin answered our precondition, not the client's request: its 412 is not relayed.
  if (e.code === 'SOURCE_CHANGED') return { type: 'dfdaemon', status: 502, headers: {} };
  // A Download the request's headers made invalid (e.g. a relative X-Dragonfly-Output-Path): the request is wrong.
  if (e.code === 'INVALID_ARGUMENT') return { type: 'proxy', status: 400, headers: {} };
  if (e.backend) {
    const status = e.backend.statusCode;
    // The origin's body is not relayed (the one-line message replaces it), so its framing headers go.
    const headers = omitHeaders(e.backend.header, ['content-range', 'content-length', 'content-encoding']);
    return {
      type: 'backend',
      // 3xx too: a 304 answers a conditional request the client passed on (upstream keeps any origin status).
      status: status !== undefined && status >= 300 && status <= 599 ? status : 500,
      headers,
    };
  }
  return { type: 'dfdaemon', status: 500, headers: {} };
}

export interface ServeOptions {
  serverIp: string;
  /** The selected byte range, or undefined for the whole content. */
  range?: { start: number; length: number };
  /**
   * Called once, with every byte of the answer stored, before the last piece's bytes go out: the session's
   * finish, which checks the task's known digest. Its failure cuts the answer short, so a client never receives
   * a whole body that failed the check (with Content-Length, a body cut at the very end would look whole).
   */
  beforeLastPiece?: () => Promise<void>;
}

/** The headers of a P2P answer: the origin's, re-framed for what this answer carries, plus Dragonfly's own. */
export function p2pResponseHeaders(session: P2PSession, o: ServeOptions): Record<string, string | string[]> {
  const headers = omitHeaders(endToEnd(session.responseHeader), ['content-length', 'content-range']);
  if (o.range) {
    const end = o.range.start + o.range.length - 1;
    headers['content-range'] = `bytes ${o.range.start}-${end}/${session.contentLength}`;
    headers['content-length'] = String(o.range.length);
  } else {
    headers['content-length'] = String(session.contentLength);
  }
  if (session.isFinished) headers[H.taskDownloadFinished] = 'true';
  headers[H.taskId] = session.taskId;
  headers[H.serverIp] = o.serverIp;
  return headers;
}

/**
 * Streams the session's bytes into `res`. Resolves when every byte was written; rejects with the download's
 * failure (the caller answers with an error if no header was sent yet, else cuts the connection).
 */
export async function streamSession(
  res: ServerResponse,
  session: P2PSession,
  o: ServeOptions,
): Promise<void> {
  const status = o.range ? 206 : 200;
  const start = o.range?.start ?? 0;
  const end = o.range ? o.range.start + o.range.length : session.contentLength;
  const sendHead = () => res.writeHead(status, p2pResponseHeaders(session, o));
  if (end <= start) {
    await o.beforeLastPiece?.();
    sendHead();
    res.end();
    return;
  }
  const last = Math.floor((end - 1) / session.pieceLength);
  // Pieces stored but not yet sent, by number; the body follows piece numbers in order.
  const stored = new Map<number, P2PPiece>();
  let next = Math.floor(start / session.pieceLength);
  let sent = 0;
  for await (const piece of session.pieces()) {
    if (!res.headersSent) sendHead();
    stored.set(piece.number, piece);
    while (stored.has(next)) {
      const p = stored.get(next)!;
      stored.delete(next);
      const from = Math.max(p.offset, start);
      const to = Math.min(p.offset + p.length, end);
      if (next === last) await o.beforeLastPiece?.();
      if (to > from) sent += await session.send(from, to - from, res);
      next++;
    }
  }
  if (stored.size > 0) {
    throw toDfError(new Error(`pieces ${[...stored.keys()].join(',')} arrived but piece ${next} never did`));
  }
  // Content-Length promised end - start bytes: ending short would leave a keep-alive client reading the next
  // answer as the rest of this body. (A content file shorter than its task, e.g. a hard-linked output path
  // truncated by its user.)
  if (sent !== end - start) {
    throw toDfError(new Error(`sent ${sent} of ${end - start} bytes: the stored content is shorter`));
  }
  res.end();
}
