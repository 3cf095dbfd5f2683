// grpc-js channel options for the scheduler and manager clients, matching upstream's tonic endpoints
// (`dragonfly-client/src/grpc/mod.rs`): HTTP/2 keepalive ping every 300 s with a 20 s timeout, and no message size
// limit (upstream sets usize::MAX both ways; a task with many pieces makes large StatTask replies).

import type { ClientOptions } from '@grpc/grpc-js';

export const SCHEDULER_CHANNEL_OPTIONS: Partial<ClientOptions> = {
  'grpc.keepalive_time_ms': 300_000,
  'grpc.keepalive_timeout_ms': 20_000,
  // tonic does not ping idle connections (keep_alive_while_idle = false); Go servers would count such pings.
  'grpc.keepalive_permit_without_calls': 0,
  'grpc.max_receive_message_length': -1,
  'grpc.max_send_message_length': -1,
};

/** Upstream's REQUEST_TIMEOUT: every unary scheduler call carries a 10 s deadline. */
export const SCHEDULER_REQUEST_TIMEOUT_MS = 10_000;
