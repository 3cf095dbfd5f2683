// Schedulers from the manager (upstream `dynconfig/remote.rs`): `manager.v2.Manager/ListSchedulers`, which answers
// with the schedulers that best match this host (by cluster id, idc, location, ip), best first.

import {
  credentials as grpcCredentials,
  Metadata,
  type ChannelCredentials,
  type ServiceError,
} from '@grpc/grpc-js';
import { DfError } from '../core/errors.js';
import { ManagerClient, SourceType, type ListSchedulersRequest } from '../gen/manager.js';
import { SCHEDULER_CHANNEL_OPTIONS } from './channel-options.js';
import type { SchedulerCandidate, SchedulerSource } from './scheduler-source-types.js';
import { socketAddrFromIp } from './socket-addr.js';

/** Upstream bounds every unary call with REQUEST_TIMEOUT (10 s). */
export const LIST_SCHEDULERS_TIMEOUT_MS = 10_000;

export interface ManagerSchedulerSourceOptions {
  /** `manager.addr`: "http://manager:65003", "https://…", or a bare "host:port". */
  addr: string;
  request: Omit<ListSchedulersRequest, 'sourceType'> & { sourceType: 'PEER' | 'SEED_PEER' };
  /** TLS extension point; default: plaintext for http:// and bare addresses, system roots for https://. */
  credentials?: ChannelCredentials;
  timeoutMs?: number;
}

/** The grpc-js target of `manager.addr`, and whether its scheme asks for TLS. */
export function managerTarget(addr: string): { target: string; tls: boolean } {
  const m = /^(https?):\/\/([^/]+)\/?$/i.exec(addr);
  if (m) return { target: m[2]!, tls: m[1]!.toLowerCase() === 'https' };
  if (/^[^/]+:\d+$/.test(addr)) return { target: addr, tls: false };
  throw new DfError(
    'INVALID_CONFIG',
    `manager.addr: expected an address like "http://manager:65003", got "${addr}"`,
  );
}

export function managerSchedulerSource(options: ManagerSchedulerSourceOptions): SchedulerSource {
  const { target, tls } = managerTarget(options.addr);
  const creds = options.credentials ?? (tls ? grpcCredentials.createSsl() : grpcCredentials.createInsecure());
  const client = new ManagerClient(target, creds, SCHEDULER_CHANNEL_OPTIONS);
  const request: ListSchedulersRequest = {
    ...options.request,
    sourceType:
      options.request.sourceType === 'SEED_PEER' ? SourceType.SEED_PEER_SOURCE : SourceType.PEER_SOURCE,
  };
  return {
    description: `manager ${options.addr}`,
    singleCluster: true,
    async list(): Promise<SchedulerCandidate[]> {
      const deadline = Date.now() + (options.timeoutMs ?? LIST_SCHEDULERS_TIMEOUT_MS);
      const res = await new Promise<{
        schedulers: Array<{ ip: string; port: number; schedulerClusterId: number }>;
      }>((resolve, reject) =>
        client.listSchedulers(request, new Metadata(), { deadline }, (err: ServiceError | null, value) => {
          if (err)
            reject(
              new DfError('UNAVAILABLE', `ListSchedulers: ${err.details || err.message}`, { cause: err }),
            );
          else resolve(value);
        }),
      );
      return res.schedulers.flatMap((s) => {
        try {
          return [{ addr: socketAddrFromIp(s.ip, s.port), clusterId: s.schedulerClusterId }];
        } catch {
          // Upstream fails the whole refresh on one bad ip; skipping it keeps the others usable.
          return [];
        }
      });
    },
    close(): void {
      client.close();
    },
  };
}
