// The baseline of the Vortex serving benchmark, run as its own process like dfdaemon: a bare TCP server on loopback
// that answers every connection with the bytes of one file (read from the page cache, written to the socket with
// backpressure) and closes. Nothing else — no framing, no metadata, no limits: the most a Node process serving
// a file over a loopback socket gets, for the same bytes the piece server sends.
// Usage: node raw-copy-server.js FILE — prints `port N` on stdout once it listens; ends on SIGTERM.

import { createReadStream } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { pipeline } from 'node:stream/promises';

/** The same read size as the piece server's default (storage.readBufferSize). */
const READ_SIZE = 512 * 1024;

const file = process.argv[2];
if (!file) {
  process.stderr.write('usage: raw-copy-server FILE\n');
  process.exit(2);
}
const server = createServer((socket) => {
  socket.setNoDelay(true);
  pipeline(createReadStream(file, { highWaterMark: READ_SIZE }), socket).catch(() => socket.destroy());
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`port ${(server.address() as AddressInfo).port}\n`);
});
process.once('SIGTERM', () => server.close(() => process.exit(0)));
