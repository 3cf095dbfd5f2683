// A DfdaemonUpload server standing for a peer in the embedded scheduler's tests (replica placement, deletes): only
// the handlers a test gives, on 127.0.0.1 port 0. And the status a call failed with, for those tests' assertions.

import assert from 'node:assert/strict';
import {
  Server,
  ServerCredentials,
  type ServiceError,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import { DfdaemonUploadService } from '../../src/gen/dfdaemon.js';

export async function startUploadStandIn(
  handlers: UntypedServiceImplementation,
): Promise<{ server: Server; port: number }> {
  const server = new Server();
  server.addService(DfdaemonUploadService, handlers);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (e, p) =>
      e ? reject(e) : resolve(p),
    ),
  );
  return { server, port };
}

/** The error `p` fails with; the test fails if it succeeds. */
export async function rejection(p: Promise<unknown>): Promise<ServiceError> {
  try {
    await p;
  } catch (e) {
    return e as ServiceError;
  }
  assert.fail('expected the call to fail');
}
