#!/usr/bin/env node
// A small HTTP origin for trying dfget and a cluster without one of your own: serves the files of a directory
// with what dfdaemon asks of an origin (single byte ranges, a strong ETag, If-Match / If-Unmodified-Since), and
// prints one line per request, so you can see which downloads reached the origin and which came from the cache
// or from other peers. Nothing but Node.js.
//
//   node scripts/serve-dir.mjs DIR [PORT] [HOST]     default PORT 8000, HOST 127.0.0.1 (0.0.0.0: every address)
//
// GET and HEAD only; no directory listings; paths outside DIR are refused. SIGINT/SIGTERM stop it.
import { createReadStream, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { join, relative, resolve, isAbsolute } from 'node:path';

const [dirArg, portArg = '8000', host = '127.0.0.1'] = process.argv.slice(2);
if (!dirArg || !/^\d+$/.test(portArg)) {
  process.stderr.write('usage: node scripts/serve-dir.mjs DIR [PORT] [HOST]\n');
  process.exit(2);
}
const root = resolve(dirArg);
if (!statSync(root, { throwIfNoEntry: false })?.isDirectory()) {
  process.stderr.write(`serve-dir: ${root} is not a directory\n`);
  process.exit(2);
}

/** The file a request path names, if it is a regular file inside the root. */
function fileOf(pathname) {
  let path;
  try {
    path = resolve(join(root, decodeURIComponent(pathname)));
  } catch {
    return undefined;
  }
  const rel = relative(root, path);
  if (rel.startsWith('..') || isAbsolute(rel)) return undefined;
  const st = statSync(path, { throwIfNoEntry: false });
  return st?.isFile() ? { path, size: st.size, mtime: st.mtime } : undefined;
}

/** One `bytes=a-b`, `a-` or `-n` range of a file of `size` bytes; null when unsatisfiable, undefined when none. */
function rangeOf(header, size) {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header ?? '');
  if (!m || (m[1] === '' && m[2] === '')) return undefined; // absent, or several ranges: the whole file
  let start;
  let end;
  if (m[1] === '') {
    start = Math.max(0, size - Number(m[2]));
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  return start > end || start >= size ? null : { start, end };
}

const server = createServer((req, res) => {
  const done = (status, note = '') => {
    process.stdout.write(
      `${req.method} ${req.url}${req.headers.range ? ` ${req.headers.range}` : ''} → ${status}${note}\n`,
    );
  };
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD' }).end();
    return done(405);
  }
  const file = fileOf(new URL(req.url ?? '/', 'http://origin').pathname);
  if (!file) {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    return done(404);
  }
  const etag = `"${file.size.toString(16)}-${Math.floor(file.mtime.getTime()).toString(16)}"`;
  const headers = { etag, 'last-modified': file.mtime.toUTCString(), 'accept-ranges': 'bytes' };
  const ifMatch = req.headers['if-match'];
  const ifUnmodified = req.headers['if-unmodified-since'];
  const changed =
    (ifMatch !== undefined && ifMatch.trim() !== '*' && !ifMatch.split(',').some((t) => t.trim() === etag)) ||
    (ifMatch === undefined &&
      ifUnmodified !== undefined &&
      Math.floor(file.mtime.getTime() / 1000) > Math.floor(Date.parse(ifUnmodified) / 1000));
  if (changed) {
    res.writeHead(412, headers).end();
    return done(412);
  }
  const range = rangeOf(req.headers.range, file.size);
  if (range === null) {
    res.writeHead(416, { ...headers, 'content-range': `bytes */${file.size}` }).end();
    return done(416);
  }
  const { start, end } = range ?? { start: 0, end: file.size - 1 };
  const length = Math.max(0, end - start + 1);
  const status = range ? 206 : 200;
  res.writeHead(status, {
    ...headers,
    'content-length': length,
    ...(range ? { 'content-range': `bytes ${start}-${end}/${file.size}` } : {}),
  });
  done(status, ` (${length} bytes)`);
  if (req.method === 'HEAD' || length === 0) return res.end();
  createReadStream(file.path, { start, end })
    .on('error', () => res.destroy())
    .pipe(res);
});

server.listen(Number(portArg), host, () => {
  process.stdout.write(`serving ${root} on http://${host}:${portArg}/ (Ctrl-C stops)\n`);
});
server.on('error', (e) => {
  process.stderr.write(`serve-dir: ${e.message}\n`);
  process.exit(1);
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  });
}
