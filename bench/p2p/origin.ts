// The origin: a Node HTTP server inside the origin namespace (`node dist/bench/p2p.js --origin IP PORT`) that
// serves generated content at /f/SEED/SIZE (Range, HEAD, streamed one chunk at a time) and its per-path byte
// counts at /__stats; and the client side that reads those counts.

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { baseBlock, CHUNK, chunkOf } from './content.js';
import { exec } from './procs.js';
import type { Host } from './topology.js';

export const ORIGIN_PORT = 8080;

export interface PathStats {
  requests: number;
  rangeRequests: number;
  bytes: number;
}

/** The path of generated file `seed` of `size` bytes. */
export function filePath(seed: number, size: number): string {
  return `/f/${seed}/${size}`;
}

export async function runOrigin(ip: string, port: number): Promise<void> {
  const bases = new Map<number, Buffer>();
  const stats: Record<string, PathStats> = {};
  const server = createServer((req, res) => void handle(req, res));
  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0]!;
    if (path === '/__stats') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(stats));
      return;
    }
    const f = /^\/f\/(\d+)\/(\d+)$/.exec(path);
    if (!f) {
      res.writeHead(404).end('not found');
      return;
    }
    const seed = Number(f[1]);
    const size = Number(f[2]);
    const st = (stats[path] ??= { requests: 0, rangeRequests: 0, bytes: 0 });
    st.requests++;
    let start = 0;
    let end = size - 1;
    let status = 200;
    const range = req.headers.range;
    if (range) {
      const m = /^bytes=(\d*)-(\d*)$/.exec(range.trim());
      if (!m || (m[1] === '' && m[2] === '')) {
        res.writeHead(416, { 'content-range': `bytes */${size}` }).end();
        return;
      }
      if (m[1] === '') {
        start = Math.max(0, size - Number(m[2]));
      } else {
        start = Number(m[1]);
        if (m[2] !== '') end = Math.min(Number(m[2]), size - 1);
      }
      if (start >= size || start > end) {
        res.writeHead(416, { 'content-range': `bytes */${size}` }).end();
        return;
      }
      status = 206;
      st.rangeRequests++;
    }
    const headers: Record<string, string | number> = {
      'content-type': 'application/octet-stream',
      'accept-ranges': 'bytes',
      'content-length': end - start + 1,
      'last-modified': 'Mon, 01 Jan 2024 00:00:00 GMT',
      etag: `"dfp2p-${seed}-${size}"`,
    };
    if (status === 206) headers['content-range'] = `bytes ${start}-${end}/${size}`;
    res.writeHead(status, headers);
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    let base = bases.get(seed);
    if (!base) bases.set(seed, (base = baseBlock(seed)));
    // One 1 MiB chunk at a time, waiting for 'drain': memory stays flat whatever the size.
    for (let off = start; off <= end;) {
      const k = Math.floor(off / CHUNK);
      const part = chunkOf(base, seed, k).subarray(off - k * CHUNK, Math.min(CHUNK, end + 1 - k * CHUNK));
      if (res.destroyed) return;
      st.bytes += part.length;
      off += part.length;
      if (!res.write(part)) {
        await new Promise<void>((r) => {
          const done = () => {
            res.off('drain', done);
            res.off('close', done);
            r();
          };
          res.on('drain', done);
          res.on('close', done);
        });
      }
    }
    res.end();
  }
  await new Promise<void>((r) => server.listen(port, ip, r));
  process.stdout.write(`${JSON.stringify({ msg: 'origin started', ip, port })}\n`);
  const stop = () => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

/** The origin's per-path counts, fetched from inside its namespace; {} when it does not answer. */
export async function originStats(origin: Host): Promise<Record<string, PathStats>> {
  const r = await exec(
    'ip',
    [
      'netns',
      'exec',
      origin.ns,
      'curl',
      '-s',
      '-f',
      '-m',
      '10',
      `http://${origin.ip}:${ORIGIN_PORT}/__stats`,
    ],
    15_000,
  );
  try {
    return JSON.parse(r.stdout) as Record<string, PathStats>;
  } catch {
    return {};
  }
}
