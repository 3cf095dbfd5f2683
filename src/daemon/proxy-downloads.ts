// The proxy's view of the task manager (proxy/p2p.ts P2PDownloader): download sessions shared with the gRPC
// download service, and prefetch — a background download of the whole task after a Range request, paced by
// proxy.prefetchBandwidthLimit so it yields the link to the downloads someone is waiting for.

import type { Download } from '../gen/common.js';
import type { Caller } from '../core/caller.js';
import { DfError, toDfError } from '../core/errors.js';
import type { P2PDownloader, P2PSession } from '../proxy/p2p.js';
import type { DownloadSession, DownloadSessions } from './download-session.js';
import type { ByteLimiter } from './piece-path.js';
import { sendFileRange } from '../core/range-sender.js';

export interface ProxyDownloadsOptions {
  sessions: DownloadSessions;
  /** proxy.prefetchBandwidthLimit */
  prefetchLimiter: ByteLimiter;
  /** How many pieces a prefetch asks for at once (download.concurrentPieceCount). */
  concurrentPieceCount: number;
  log: { info(o: object, m: string): void; warn(o: object, m: string): void };
}

export class ProxyDownloads implements P2PDownloader {
  private readonly o: ProxyDownloadsOptions;
  /** Tasks being prefetched: one prefetch per task at a time (upstream prefetch_task_started). */
  private readonly prefetching = new Set<string>();
  private readonly stopping = new AbortController();

  constructor(o: ProxyDownloadsOptions) {
    this.o = o;
  }

  async open(
    download: Download,
    signal: AbortSignal,
    caller: Caller,
    opts: { remoteCaller?: boolean } = {},
  ): Promise<P2PSession> {
    const s = await this.o.sessions.open(download, signal, caller, opts);
    const content = this.o.sessions.taskManager.storage.content;
    return {
      taskId: s.taskId,
      contentLength: s.task.contentLength,
      pieceLength: s.task.pieceLength,
      responseHeader: s.task.responseHeader ?? {},
      isFinished: s.isFinished,
      selectRange: (r) => s.selectRange(r),
      pieces: () => pieceSpans(s),
      send: async (offset, length, out) => {
        const file = await content.openFile(s.taskId);
        try {
          return await sendFileRange(file, offset, length, out, content.readBuffers);
        } finally {
          await file.close();
        }
      },
      writeOutput: async () => {
        await s.linkOutput();
        for await (const _ of s.pieces({ inOrder: true })) void _;
        await s.complete();
      },
      finish: async () => {
        await s.linkOutput();
        await s.complete();
      },
      fail: (e) => s.fail(e),
      release: () => s.release(),
    };
  }

  prefetch(download: Download): void {
    const whole: Download = {
      ...download,
      range: undefined,
      prefetch: false,
      isPrefetch: true,
      outputPath: undefined,
      requestHeader: withoutRange(download.requestHeader),
    };
    void this.runPrefetch(whole).catch((e: unknown) =>
      this.o.log.warn({ url: download.url, err: toDfError(e).message }, 'prefetch failed'),
    );
  }

  /** Stops prefetches in flight (dfdaemon shutdown). */
  close(): void {
    this.stopping.abort(new DfError('CANCELLED', 'dfdaemon is shutting down'));
  }

  private async runPrefetch(download: Download): Promise<void> {
    const session = await this.o.sessions.open(download, this.stopping.signal, { kind: 'internal' });
    const taskId = session.taskId;
    if (this.prefetching.has(taskId) || session.isFinished) {
      session.release();
      return;
    }
    this.prefetching.add(taskId);
    this.o.log.info({ taskId, url: download.url }, 'prefetch started');
    try {
      const missing = session.interested.filter((p) => !session.finishedPiece(p.number));
      let next = 0;
      let failure: { error: unknown } | undefined;
      // A few workers, each taking the next missing piece once the limiter lets its bytes pass. The first failure
      // stops them all, and the session is released only once none is left fetching through it.
      const worker = async () => {
        while (!failure && next < missing.length) {
          const piece = missing[next++]!;
          try {
            await this.o.prefetchLimiter.acquire(piece.length);
            for await (const _ of session.piecesOf([piece.number])) void _;
          } catch (e) {
            failure ??= { error: e };
          }
        }
      };
      const workers = Math.max(1, Math.min(this.o.concurrentPieceCount, missing.length));
      await Promise.all(Array.from({ length: workers }, worker));
      if (failure) throw failure.error;
      await session.complete();
      this.o.log.info({ taskId, pieces: missing.length }, 'prefetch finished');
    } catch (e) {
      session.fail(e);
      throw e;
    } finally {
      this.prefetching.delete(taskId);
      session.release();
    }
  }
}

async function* pieceSpans(s: DownloadSession) {
  for await (const { piece } of s.pieces({ inOrder: true }))
    yield { number: piece.number, offset: piece.offset, length: piece.length };
}

function withoutRange(h: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) if (k.toLowerCase() !== 'range') out[k] = v;
  return out;
}
