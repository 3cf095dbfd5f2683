// A worked example of a dfdaemon backend plugin: file:// URLs, served from one directory tree.
//
// Install: copy this file to `{server.pluginDir}/backend/file.mjs` (the file name is the scheme) and start dfdaemon
// with DRAGONFLY_FILE_PLUGIN_ROOT set to the directory it may serve. Then
//   dfget file:///srv/models/weights.bin -O /tmp/weights.bin
//   dfget -r file:///srv/models/ -O /tmp/models/
// take the file (or the tree) as tasks like any other: P2P between peers, piece by piece. See docs/plugins.md.
//
// Why a root: dfdaemon usually runs as another user (often root) than the dfget that asks, so a file:// plugin
// without one would let any local user read any file the daemon can. Paths are resolved (symlinks included) and
// must stay under the root; requests made on a remote caller's behalf (a scheduler's trigger) are refused, as this
// host's files are not a source for other hosts to name.

import { createReadStream } from 'node:fs';
import { readdir, realpath, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export default function create({ scheme }) {
  const configured = process.env.DRAGONFLY_FILE_PLUGIN_ROOT;
  if (!configured) throw new Error('set DRAGONFLY_FILE_PLUGIN_ROOT to the directory file:// may serve');

  /** The real path of a file:// URL, refused unless it is under the root. */
  async function resolve(url, remoteCaller) {
    if (remoteCaller)
      throw withCode(new Error(`${url}: file:// serves local callers only`), 'PERMISSION_DENIED');
    const root = await realpath(configured);
    const path = await realpath(fileURLToPath(url));
    const rel = relative(root, path);
    if (rel === '..' || rel.startsWith(`..${sep}`) || rel.startsWith(sep)) {
      throw withCode(new Error(`${url} is outside ${root}`), 'PERMISSION_DENIED');
    }
    return path;
  }

  return {
    scheme,

    // The size, and a validator (Last-Modified) so that a file replaced during the download fails the task.
    async stat({ url, remoteCaller }) {
      const st = await stat(await resolve(url, remoteCaller));
      if (!st.isFile()) throw withCode(new Error(`${url} is not a regular file`), 'INVALID_ARGUMENT');
      const responseHeader = { 'content-length': String(st.size), 'last-modified': st.mtime.toUTCString() };
      return { statusCode: 200, contentLength: st.size, responseHeader };
    },

    // One piece: exactly `range.length` bytes from `range.start`, streamed (dfdaemon counts them).
    async get({ url, range, validator, remoteCaller }) {
      const path = await resolve(url, remoteCaller);
      if (validator?.lastModified && (await stat(path)).mtime.toUTCString() !== validator.lastModified) {
        throw withCode(new Error(`${url} changed since the task started`), 'SOURCE_CHANGED');
      }
      const bounds = range ? { start: range.start, end: range.start + range.length - 1 } : {};
      return { statusCode: range ? 206 : 200, responseHeader: {}, body: createReadStream(path, bounds) };
    },

    // A directory download (`dfget -r`, a URL ending in /): every file and directory under it.
    async listEntries({ url, remoteCaller }) {
      const dir = await resolve(url, remoteCaller);
      const entries = await readdir(dir, { recursive: true, withFileTypes: true });
      return Promise.all(
        entries
          .filter((e) => e.isFile() || e.isDirectory())
          .map(async (e) => {
            const path = join(e.parentPath ?? e.path, e.name);
            const isDir = e.isDirectory();
            const href = pathToFileURL(path).href;
            return {
              url: isDir ? `${href}/` : href,
              contentLength: isDir ? 0 : (await stat(path)).size,
              isDir,
            };
          }),
      );
    },

    async close() {},
  };
}

function withCode(error, code) {
  return Object.assign(error, { code });
}
