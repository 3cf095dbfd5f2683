// A unix socket connection opened before the code that will speak on it is loaded. dfget connects first thing,
// so that dfdaemon accepts the connection (and starts looking up who is calling) while dfget is still loading its
// HTTP/2 client; http2-client.ts then takes the socket over. A failure before then is kept, not thrown: a socket
// error without a listener would end the process.

import { createConnection, type Socket } from 'node:net';

export class PendingConnection {
  readonly socket: Socket;
  /** Why the connection failed before it was taken over: an errno (ENOENT, ECONNREFUSED…) or CLOSED_AT_ONCE. */
  failure?: string;

  constructor(socketPath: string) {
    this.socket = createConnection(socketPath);
    this.socket.on('error', (e: NodeJS.ErrnoException) => (this.failure ??= e.code ?? e.message));
    this.socket.once('close', () => (this.failure ??= 'CLOSED_AT_ONCE'));
  }

  /** Ends the connection if nobody took it over (an argument was wrong, or a directory download). */
  destroy(): void {
    this.socket.destroy();
  }
}
