// A TCP relay that connects to a server from another local address, so that a real client on this machine looks,
// to the server, like a caller on another host: 127.0.0.2 is loopback, but it is not the address the schedulers
// and daemons of a test use (127.0.0.1). Linux routes all of 127.0.0.0/8 to lo, so no setup is needed.

import { connect, createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

export interface Relay {
  /** The relay's port on 127.0.0.1: point the client here. */
  port: number;
  addr: string;
  close(): Promise<void>;
}

export async function relayFrom(
  localAddress: string,
  target: { host?: string; port: number },
): Promise<Relay> {
  const sockets = new Set<Socket>();
  const track = (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => s.destroy());
  };
  const server: Server = createServer((client) => {
    track(client);
    const upstream = connect({ host: target.host ?? '127.0.0.1', port: target.port, localAddress });
    track(upstream);
    client.pipe(upstream).pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    addr: `127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
