// The Vortex serving benchmark's two sides, both received by this process and discarded: every piece of a cached
// task fetched from dfdaemon's piece server (one connection per piece, as our client and upstream's do,
// `concurrency` at a time), and the same file's bytes from raw-copy-server.js over one plain loopback connection.

import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { pieceRanges } from '../src/core/piece.js';
import { TcpPieceTransport } from '../src/vortex/piece-client.js';
import { stopByPid } from '../test/helpers/child-process.js';

const RAW_COPY_SERVER = fileURLToPath(new URL('./raw-copy-server.js', import.meta.url));

export interface RawCopyServer {
  port: number;
  proc: ChildProcess;
  stop(): Promise<void>;
}

/** Starts raw-copy-server.js for `file` and waits (up to 10 s) for its port. */
export function startRawCopyServer(file: string): Promise<RawCopyServer> {
  const proc = spawn(process.execPath, [RAW_COPY_SERVER, file], { stdio: ['ignore', 'pipe', 'pipe'] });
  const stop = () => stopByPid(proc, 5000);
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const fail = (why: string) => {
      clearTimeout(timer);
      void stop().finally(() => reject(new Error(`raw-copy-server ${why}: ${err.trim()}`)));
    };
    const timer = setTimeout(() => fail('did not print its port within 10 s'), 10_000);
    proc.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
    proc.once('exit', (code) => fail(`exited with ${code}`));
    proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const m = /port (\d+)/.exec(out);
      if (!m) return;
      clearTimeout(timer);
      proc.removeAllListeners('exit');
      resolve({ port: Number(m[1]), proc, stop });
    });
  });
}

/** Reads everything the raw server sends on one connection; returns the milliseconds and the byte count. */
export function rawCopy(port: number): Promise<{ ms: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    let bytes = 0;
    const socket = connect({ host: '127.0.0.1', port, noDelay: true });
    socket.on('data', (chunk: Buffer) => (bytes += chunk.length));
    socket.once('error', reject);
    socket.once('end', () => resolve({ ms: performance.now() - start, bytes }));
  });
}

/**
 * Fetches every piece of a task stored by the daemon whose piece server listens on `port`, `concurrency` pieces at
 * a time; returns the milliseconds and the byte count (each piece's length is checked by the client).
 */
export async function vortexPieces(o: {
  port: number;
  taskId: string;
  contentLength: number;
  pieceLength: number;
  concurrency: number;
  timeoutMs: number;
}): Promise<{ ms: number; bytes: number }> {
  const transport = new TcpPieceTransport();
  const pieces = pieceRanges(o.contentLength, o.pieceLength);
  let nextPiece = 0;
  let bytes = 0;
  const worker = async () => {
    for (let i = nextPiece++; i < pieces.length; i = nextPiece++) {
      const res = await transport.downloadPiece({
        ip: '127.0.0.1',
        port: o.port,
        taskId: o.taskId,
        number: pieces[i]!.number,
        timeoutMs: o.timeoutMs,
      });
      for await (const chunk of res.body) bytes += chunk.length;
    }
  };
  const start = performance.now();
  await Promise.all(Array.from({ length: o.concurrency }, worker));
  return { ms: performance.now() - start, bytes };
}
