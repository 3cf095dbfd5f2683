// One `grpc.health.v1.Health/Check` call, as upstream's dynconfig does for every scheduler it is given
// (`dragonfly-client/src/grpc/health.rs`, `dynconfig/{local,remote}.rs`): service "" and only SERVING counts.

import { makeGenericClientConstructor, type ChannelCredentials, type ServiceError } from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';

/** Upstream connects within 3 s (CONNECT_TIMEOUT); one deadline of 3 s bounds connect and reply here. */
export const HEALTH_CHECK_TIMEOUT_MS = 3_000;

const HealthClient = makeGenericClientConstructor(healthService, 'grpc.health.v1.Health');

/** `grpc.health.v1.HealthCheckResponse.ServingStatus` as the health package decodes it. */
export type ServingStatus = 'UNKNOWN' | 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';

export interface HealthCheckOptions {
  credentials: ChannelCredentials;
  timeoutMs?: number;
  /** The service to ask about; "" = the whole server (what upstream asks). */
  service?: string;
}

/** Asks `target` ("ip:port") for its serving status; rejects with the gRPC error when the call fails. */
export function checkHealth(target: string, options: HealthCheckOptions): Promise<ServingStatus> {
  const client = new HealthClient(target, options.credentials);
  const deadline = Date.now() + (options.timeoutMs ?? HEALTH_CHECK_TIMEOUT_MS);
  return new Promise<ServingStatus>((resolve, reject) => {
    // The generic constructor keys methods by the proto's names; `check` is the lower-case alias.
    const check = client['check'] as (
      req: { service: string },
      opts: { deadline: number },
      cb: (err: ServiceError | null, res?: { status: ServingStatus }) => void,
    ) => void;
    check.call(client, { service: options.service ?? '' }, { deadline }, (err, res) => {
      if (err) reject(err);
      else resolve(res?.status ?? 'UNKNOWN');
    });
  }).finally(() => client.close());
}
