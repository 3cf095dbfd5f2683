// A caller's deadline (grpc-timeout) on the long-lived response streams of the upload service, as upstream reads
// it. Upstream's servers (tonic) hold the deadline against the handler until it returns its response, and a
// streaming handler returns at once with a stream that then runs as long as it has messages: the deadline never
// cuts a response stream. grpc-js ends the whole call when the deadline passes. The Rust client opens SyncPieces
// (the pieces a parent has, then each as the parent gets it) and SyncHost (the parent's load, every second) with
// its 10 s REQUEST_TIMEOUT (dragonfly-client/src/grpc/dfdaemon_upload.rs make_request), so against our upload
// port both ended after 10 s with DEADLINE_EXCEEDED: a Rust child never heard of a piece our seed stored (or
// super-seeding released) after that and rescheduled for it, and its parent selector lost our load figures.
// Found by bench:upstream:swarm (issue 13): Rust peers under our seed took 2 of 16 pieces elsewhere after a
// reschedule, and logged "sync pieces from parent … failed: Deadline exceeded".

import {
  ServerInterceptingCall,
  type ServerInterceptor,
  type ServerInterceptingCallInterface,
} from '@grpc/grpc-js';

/** The upload service's response streams that live as long as the child wants them. */
export const LONG_LIVED_UPLOAD_STREAMS: ReadonlySet<string> = new Set([
  '/dfdaemon.v2.DfdaemonUpload/SyncPieces',
  '/dfdaemon.v2.DfdaemonUpload/SyncHost',
]);

/**
 * A server interceptor under which the calls of `paths` are not ended by the caller's grpc-timeout (the caller
 * still ends them by cancelling, and HTTP/2 keepalive ends them when the caller is gone). It must be the server's
 * first interceptor: it disarms the timer grpc-js's base call arms from the header.
 */
export function deadlineSparesStreams(paths: ReadonlySet<string>): ServerInterceptor {
  return (method, call) => {
    if (paths.has(method.path)) disarmDeadline(call);
    // grpc-js wants an intercepting call back: one with no responder passes everything through.
    return new ServerInterceptingCall(call);
  };
}

/**
 * grpc-js (1.14) arms the deadline in the constructor of the base call (BaseServerInterceptingCall,
 * handleTimeoutHeader), which is what the first interceptor receives, and offers no way to disarm it; the timer
 * and the deadline are fields of that object. test/integration/stream-deadline.test.ts fails if a grpc-js
 * update moves them.
 */
function disarmDeadline(call: ServerInterceptingCallInterface): void {
  const base = call as unknown as { deadlineTimer?: NodeJS.Timeout | null; deadline?: number };
  if (!base.deadlineTimer) return;
  clearTimeout(base.deadlineTimer);
  base.deadlineTimer = null;
  base.deadline = Infinity;
}
