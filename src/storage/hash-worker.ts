// Whole-content digests off the main thread: one worker thread (hash-worker-thread.ts), started on the first job and
// ended after a while without any, that reads ranges of content files and hashes them in the order given. A job
// whose worker failed or was ended answers its digest with a rejection; the caller then checks the file itself.

import { Worker } from 'node:worker_threads';
import { DfError } from '../core/errors.js';
import type { DigestAlgorithm } from '../core/digest.js';

export type HashRequest =
  | { kind: 'open'; id: number; path: string; algorithm: DigestAlgorithm }
  | { kind: 'range'; id: number; offset: number; length: number }
  | { kind: 'digest'; id: number }
  | { kind: 'close'; id: number };

export type HashReply = { id: number; digest: string; error?: undefined } | { id: number; error: string };

/** The worker is ended once it has had no job for this long (an idle daemon keeps no thread for it). */
const IDLE_MS = 30_000;

const WORKER_URL = new URL('./hash-worker-thread.js', import.meta.url);

/** One file's bytes, hashed range after range in a worker thread. */
export interface HashJob {
  /** Hashes [offset, offset + length) of the file after every range given before. */
  range(offset: number, length: number): void;
  /** The digest of every range given (`algorithm:encoded`); rejects if one could not be read. Ends the job. */
  digest(): Promise<string>;
  /** Ends the job without a digest (digest() after it rejects; one already asked for is answered). */
  close(): void;
}

export class HashWorker {
  private worker: Worker | undefined;
  private nextId = 1;
  private readonly open = new Set<number>();
  private readonly waiting = new Map<number, { resolve: (d: string) => void; reject: (e: Error) => void }>();
  private idle: NodeJS.Timeout | undefined;

  /** `idleMs`: how long the worker outlives its last job (tests shorten it). */
  constructor(private readonly idleMs = IDLE_MS) {}

  /** Whether the worker thread is running (tests). */
  get running(): boolean {
    return this.worker !== undefined;
  }

  /** A new job hashing `path` with `algorithm`. */
  job(path: string, algorithm: DigestAlgorithm): HashJob {
    const worker = this.started();
    const id = this.nextId++;
    this.open.add(id);
    worker.postMessage({ kind: 'open', id, path, algorithm } satisfies HashRequest);
    let ended = false;
    const end = (): void => {
      ended = true;
      this.open.delete(id);
      this.idleSoon();
    };
    return {
      range: (offset, length) => {
        if (!ended) worker.postMessage({ kind: 'range', id, offset, length } satisfies HashRequest);
      },
      digest: () => {
        if (ended || this.worker !== worker) return Promise.reject(gone());
        end();
        return new Promise((resolve, reject) => {
          this.waiting.set(id, { resolve, reject });
          worker.postMessage({ kind: 'digest', id } satisfies HashRequest);
        });
      },
      close: () => {
        if (ended) return;
        end();
        if (this.worker === worker) worker.postMessage({ kind: 'close', id } satisfies HashRequest);
      },
    };
  }

  /** Ends the worker (dfdaemon shutdown); digests still awaited reject. */
  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    clearTimeout(this.idle);
    this.failAll(gone());
    await worker?.terminate();
  }

  private started(): Worker {
    clearTimeout(this.idle);
    this.idle = undefined;
    if (this.worker) return this.worker;
    const worker = new Worker(WORKER_URL);
    // A worker with no job must not keep the process alive; one with a job is kept alive by the awaited digest.
    worker.unref();
    worker.on('message', (m: HashReply) => {
      const w = this.waiting.get(m.id);
      if (!w) return;
      this.waiting.delete(m.id);
      if (m.error === undefined) w.resolve(m.digest);
      else w.reject(new DfError('IO', `hashing the content: ${m.error}`));
      this.idleSoon();
    });
    const lost = (why: Error): void => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      this.open.clear();
      this.failAll(why);
    };
    worker.on('error', (e) => lost(new DfError('INTERNAL', `the hash worker failed: ${e.message}`)));
    worker.on('exit', (code) => lost(new DfError('INTERNAL', `the hash worker exited with ${code}`)));
    this.worker = worker;
    return worker;
  }

  private failAll(e: Error): void {
    const waiting = [...this.waiting.values()];
    this.waiting.clear();
    for (const w of waiting) w.reject(e);
  }

  /** Ends the worker once no job is open and no digest awaited for `idleMs`. */
  private idleSoon(): void {
    if (this.open.size > 0 || this.waiting.size > 0 || !this.worker) return;
    clearTimeout(this.idle);
    this.idle = setTimeout(() => {
      if (this.open.size > 0 || this.waiting.size > 0) return;
      void this.close();
    }, this.idleMs);
    this.idle.unref();
  }
}

function gone(): DfError {
  return new DfError('UNAVAILABLE', 'the hash job ended before its digest was asked for');
}
