// The thread behind hash-worker.ts: it reads ranges of content files and hashes them, so that a task's whole-content
// digest costs dfdaemon's main thread nothing (SHA-256 runs at ~1.5 GB/s here: a third of a second per 512 MiB
// that the event loop would otherwise spend while pieces are arriving). One job per task, its ranges in order.

import { closeSync, openSync, readSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { createDigester, type Digester } from '../core/digest.js';
import type { HashReply, HashRequest } from './hash-worker.js';

const READ_BYTES = 1 << 20;
const buffer = Buffer.allocUnsafe(READ_BYTES);

interface Job {
  fd: number;
  digester: Digester;
  /** The first failure; the job then only waits to be asked for its digest or closed. */
  error?: string;
}

const jobs = new Map<number, Job>();
const port = parentPort!;

function reply(m: HashReply): void {
  port.postMessage(m);
}

function end(id: number): void {
  const job = jobs.get(id);
  if (!job) return;
  jobs.delete(id);
  if (job.fd < 0) return;
  try {
    closeSync(job.fd);
  } catch {
    // Closing a descriptor we opened cannot fail in a way worth reporting.
  }
}

function hashRange(job: Job, offset: number, length: number): void {
  let done = 0;
  while (done < length) {
    const n = readSync(job.fd, buffer, 0, Math.min(READ_BYTES, length - done), offset + done);
    if (n === 0) throw new Error(`the content ends at ${offset + done}, before ${offset + length}`);
    job.digester.update(buffer.subarray(0, n));
    done += n;
  }
}

port.on('message', (m: HashRequest) => {
  switch (m.kind) {
    case 'open': {
      try {
        jobs.set(m.id, {
          fd: openSync(m.path, 'r'),
          digester: createDigester(m.algorithm),
        });
      } catch (e) {
        // Reported when the digest is asked for.
        jobs.set(m.id, { fd: -1, digester: createDigester('crc32'), error: (e as Error).message });
      }
      return;
    }
    case 'range': {
      const job = jobs.get(m.id);
      if (!job || job.error) return;
      try {
        hashRange(job, m.offset, m.length);
      } catch (e) {
        job.error = (e as Error).message;
      }
      return;
    }
    case 'digest': {
      const job = jobs.get(m.id);
      if (!job) reply({ id: m.id, error: 'no such hash job' });
      else if (job.error) reply({ id: m.id, error: job.error });
      else reply({ id: m.id, digest: job.digester.digest() });
      end(m.id);
      return;
    }
    case 'close': {
      end(m.id);
      return;
    }
  }
});
