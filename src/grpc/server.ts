// Builds a grpc-js server with what both dfdaemon gRPC servers share: unlimited message sizes (pieces of up to
// 64 MiB travel in DownloadPieceFinishedResponse with need_piece_content; grpc-js defaults to 4 MiB),
// grpc.health.v1 and reflection over our own proto/ and grpc.health.v1 (so `buf curl --list-methods` and a
// health Check work without a schema).

import { chmod, rm } from 'node:fs/promises';
import {
  createServer as createNetServer,
  type AddressInfo,
  type Server as NetServer,
  type Socket,
} from 'node:net';
import { fileURLToPath } from 'node:url';
import {
  Server,
  ServerCredentials,
  type ServerInterceptor,
  type ServiceDefinition,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation, protoPath as HEALTH_PROTO } from 'grpc-health-check';
import { DfError } from '../core/errors.js';
import { serverCredentials } from './credentials.js';
import { reflectablePackage } from './reflection.js';

/** proto/ of this package, found from the compiled file (dist/src/grpc/server.js). */
export const PROTO_DIR = fileURLToPath(new URL('../../../proto/', import.meta.url));

const SERVER_OPTIONS = {
  'grpc.max_send_message_length': -1,
  'grpc.max_receive_message_length': -1,
};

/**
 * Upstream's HTTP/2 keepalive on its gRPC servers (dragonfly-client/src/grpc/mod.rs HTTP2_KEEP_ALIVE_INTERVAL,
 * HTTP2_KEEP_ALIVE_TIMEOUT): a ping every 300 s, and a connection that does not answer within 20 s is closed.
 * Without it a connection that stalled (a request cut mid-frame, a client gone without a FIN, or one that never
 * sent a request) was held forever, each against upload.server.maxConnections (found by the gRPC fuzz).
 */
export const KEEPALIVE = { timeMs: 300_000, timeoutMs: 20_000 };

export interface ServiceBinding {
  definition: ServiceDefinition;
  implementation: UntypedServiceImplementation;
  /** Fully qualified name for grpc.health.v1, e.g. dfdaemon.v2.DfdaemonDownload */
  name: string;
}

/**
 * The descriptors reflection serves, parsed once per process: every gRPC server of the daemon (download, upload,
 * embedded scheduler) serves the same protos, and parsing them costs ~0.3 s and several MiB each time. It is
 * immutable data, so sharing it is safe.
 */
let reflectionPackageCache: ReturnType<typeof reflectablePackage> | undefined;
function reflectionPackage(): ReturnType<typeof reflectablePackage> {
  reflectionPackageCache ??= reflectablePackage(
    loadSync(
      [
        'common.proto',
        'dfdaemon.proto',
        'errordetails.proto',
        'manager.proto',
        'scheduler.proto',
        HEALTH_PROTO,
      ],
      {
        includeDirs: [PROTO_DIR],
        keepCase: true,
      },
    ),
  );
  return reflectionPackageCache;
}

type Implementation = UntypedServiceImplementation;

/**
 * gRPC reflection, built on its first call. @grpc/reflection decodes every descriptor when constructed (~25 MiB
 * and ~0.3 s a server); few clients ever ask, so the daemon should not pay that at start. A reflection service
 * built over an empty package gives the service definitions to register; the real one replaces it on first use.
 */
function addLazyReflection(server: Server, serviceNames: string[]): void {
  const capture = (pkg: Parameters<typeof reflectablePackage>[0] | Record<string, never>) => {
    const out: Array<{ definition: ServiceDefinition; implementation: Implementation }> = [];
    new ReflectionService(pkg as never, { services: serviceNames }).addToServer({
      addService: (definition, implementation) => out.push({ definition, implementation }),
    });
    return out;
  };
  let real: Implementation[] | undefined;
  capture({}).forEach(({ definition, implementation }, index) => {
    const lazy: Implementation = {};
    for (const method of Object.keys(implementation)) {
      lazy[method] = ((...args: unknown[]) => {
        real ??= capture(reflectionPackage()).map((c) => c.implementation);
        return (real[index]![method] as (...a: unknown[]) => unknown)(...args);
      }) as Implementation[string];
    }
    server.addService(definition, lazy);
  });
}

/**
 * `maxReceiveMessageLength`: the largest request accepted (bytes); unlimited by default (the daemon's servers take
 * pieces). The scheduler's requests are small, so it bounds them. `keepalive`: KEEPALIVE unless a test shortens it.
 * `interceptors`: grpc-js server interceptors; the first receives grpc-js's own call (stream-deadline.ts needs that).
 */
export function createGrpcServer(
  services: ServiceBinding[],
  options: {
    maxReceiveMessageLength?: number;
    keepalive?: { timeMs: number; timeoutMs: number };
    interceptors?: ServerInterceptor[];
  } = {},
): Server {
  const keepalive = options.keepalive ?? KEEPALIVE;
  const server = new Server({
    ...(options.interceptors ? { interceptors: options.interceptors } : {}),
    ...SERVER_OPTIONS,
    'grpc.keepalive_time_ms': keepalive.timeMs,
    'grpc.keepalive_timeout_ms': keepalive.timeoutMs,
    ...(options.maxReceiveMessageLength !== undefined
      ? { 'grpc.max_receive_message_length': options.maxReceiveMessageLength }
      : {}),
  });
  for (const s of services) server.addService(s.definition, s.implementation);
  const health = new HealthImplementation({ '': 'SERVING' });
  for (const s of services) health.setStatus(s.name, 'SERVING');
  health.addToServer(server);
  addLazyReflection(server, [...services.map((s) => s.name), 'grpc.health.v1.Health']);
  return server;
}

/**
 * A unix socket listener whose connections grpc-js serves (through a connection injector), so that a handler can
 * find its call's connection: each connection is named `unix-conn:<n>` as its remote address, which the call's
 * getPeer() returns, and socketOf() maps back to the socket (for its peer credentials).
 */
export interface UnixSocketListener {
  readonly path: string;
  /** The connection a call came on, from call.getPeer(). */
  socketOf(peer: string): Socket | undefined;
  /** Stops accepting and cuts the connections (the gRPC server's own shutdown drains the calls first). */
  close(): Promise<void>;
}

/**
 * Binds to a unix socket, replacing a stale socket file, and opens it to every user (0777) as upstream. With a
 * `cap`, a connection beyond `maxConnections` is closed as soon as it is accepted (download.server.maxConnections).
 * `onAccepted` sees each connection served, before its first byte is read.
 */
export async function bindUnixSocket(
  server: Server,
  socketPath: string,
  cap?: ConnectionCap,
  onAccepted?: (socket: Socket) => void,
): Promise<UnixSocketListener> {
  await rm(socketPath, { force: true });
  const injector = server.createConnectionInjector(ServerCredentials.createInsecure());
  const sockets = new Map<string, Socket>();
  let next = 0;
  const listener = createNetServer((socket) => {
    const name = `unix-conn:${++next}`;
    // An own property shadows net.Socket's getter: http2 and grpc-js read it as the peer's address.
    Object.defineProperty(socket, 'remoteAddress', { value: name, configurable: true });
    sockets.set(name, socket);
    socket.once('close', () => sockets.delete(name));
    onAccepted?.(socket);
    injector.injectConnection(socket);
  });
  if (cap) {
    listener.maxConnections = cap.maxConnections;
    listener.on('drop', () => cap.onRefused?.());
  }
  await new Promise<void>((resolve, reject) => {
    listener.once('error', (err) =>
      reject(new DfError('IO', `cannot listen on ${socketPath}: ${err.message}`, { cause: err })),
    );
    listener.listen(socketPath, () => resolve());
  });
  await chmod(socketPath, 0o777);
  return {
    path: socketPath,
    socketOf: (peer) => sockets.get(peer),
    close: () =>
      new Promise<void>((resolve) => {
        injector.destroy();
        for (const s of sockets.values()) s.destroy();
        listener.close(() => resolve());
      }),
  };
}

/** Drains in-flight calls for up to `graceMs`, then cuts what is left. Idempotent. */
export async function shutdownGrpcServer(server: Server, graceMs: number): Promise<void> {
  for (const listener of ownListeners.get(server) ?? []) listener.close();
  ownListeners.delete(server);
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, graceMs);
    timer.unref();
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

export interface TlsFilesContent {
  caCert?: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

/** A cap on the connections a listener holds at once; one more is closed as soon as it is accepted. */
export interface ConnectionCap {
  maxConnections: number;
  /** Called for each connection refused. */
  onRefused?: () => void;
}

/** TCP listeners we opened for servers (bindTcp with a cap), closed by shutdownGrpcServer. */
const ownListeners = new WeakMap<Server, NetServer[]>();

/**
 * Binds to ip:port (0 = any free port) and returns the bound port. With a certificate and key the server speaks
 * TLS; with a CA as well it requires client certificates signed by it (mTLS, as upstream's upload server). With a
 * `cap`, the socket is our own net.Server with `maxConnections` (grpc-js has no such option), whose connections
 * are handed to the gRPC server (Server.createConnectionInjector).
 */
export async function bindTcp(
  server: Server,
  ip: string,
  port: number,
  tls: TlsFilesContent = {},
  cap?: ConnectionCap,
): Promise<number> {
  const creds = serverCredentials(tls);
  const host = ip.includes(':') ? `[${ip}]` : ip;
  if (!cap) {
    return new Promise<number>((resolve, reject) =>
      server.bindAsync(`${host}:${port}`, creds, (err, bound) =>
        err
          ? reject(
              new DfError('UNAVAILABLE', `cannot listen on ${host}:${port}: ${err.message}`, { cause: err }),
            )
          : resolve(bound),
      ),
    );
  }
  const injector = server.createConnectionInjector(creds);
  const listener = createNetServer({ noDelay: true }, (socket) => injector.injectConnection(socket));
  listener.maxConnections = cap.maxConnections;
  listener.on('drop', () => cap.onRefused?.());
  await new Promise<void>((resolve, reject) => {
    listener.once('error', (e) =>
      reject(new DfError('UNAVAILABLE', `cannot listen on ${host}:${port}: ${e.message}`, { cause: e })),
    );
    listener.listen({ host: ip, port }, () => resolve());
  });
  // Once listening, an error is a failed accept (EMFILE, ECONNABORTED): transient, and the next one may work.
  listener.on('error', () => undefined);
  ownListeners.set(server, [...(ownListeners.get(server) ?? []), listener]);
  return (listener.address() as AddressInfo).port;
}
