// The small HTTP servers of dfdaemon: health (`GET /healthy` → 200) and Prometheus metrics
// (`GET /metrics`, and `DELETE /metrics` to reset, as upstream, but from this host only).

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isLoopbackIp } from '../../core/addresses.js';
import { DfError } from '../../core/errors.js';
import type { DaemonMetrics } from '../metrics.js';

export interface Listening {
  server: Server;
  port: number;
  close(): Promise<void>;
}

/**
 * A cap on the connections a server holds at once (health.server.maxConnections, metrics.server.maxConnections):
 * one more is closed as soon as it is accepted, so a flood cannot take the process's file descriptors.
 */
export interface ConnectionCap {
  maxConnections: number;
  onRefused?: () => void;
}

async function listen(
  server: Server,
  ip: string,
  port: number,
  what: string,
  cap?: ConnectionCap,
): Promise<Listening> {
  if (cap) {
    server.maxConnections = cap.maxConnections;
    server.on('drop', () => cap.onRefused?.());
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(
        new DfError('UNAVAILABLE', `${what} server cannot listen on ${ip}:${port}: ${e.code ?? e.message}`),
      ),
    );
    server.listen(port, ip, () => resolve());
  });
  // Once listening, an error is a failed accept (EMFILE, ECONNABORTED): transient, and must not end the daemon.
  server.on('error', () => undefined);
  // Health checks and scrapes are short; do not let an idle keep-alive socket hold shutdown.
  server.keepAliveTimeout = 1000;
  return {
    server,
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export function startHealthServer(ip: string, port: number, cap?: ConnectionCap): Promise<Listening> {
  const server = createServer((req, res) => {
    if (req.url === '/healthy' && (req.method === 'GET' || req.method === 'HEAD')) {
      res.writeHead(200, { 'content-type': 'text/plain' }).end();
      return;
    }
    res.writeHead(404).end();
  });
  return listen(server, ip, port, 'health', cap);
}

export function startMetricsServer(
  ip: string,
  port: number,
  metrics: DaemonMetrics,
  cap?: ConnectionCap,
): Promise<Listening> {
  const server = createServer((req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    if (req.method === 'DELETE') {
      // Ours: only from this host. The metrics port listens on every address by default (as upstream), and a
      // reset from the network would erase what the operator's scraper has not collected yet.
      if (!isLoopbackIp(req.socket.remoteAddress)) {
        res
          .writeHead(403, { 'content-type': 'text/plain' })
          .end('DELETE /metrics is accepted only from this host\n');
        return;
      }
      metrics.reset();
      res.writeHead(200).end();
      return;
    }
    if (req.method !== 'GET') {
      res.writeHead(405).end();
      return;
    }
    metrics.text().then(
      (body) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(body),
      (e: Error) => res.writeHead(500).end(e.message),
    );
  });
  return listen(server, ip, port, 'metrics', cap);
}
