// DfdaemonUpload clients of other peers, one channel per parent host address, shared by every task run and
// closed on shutdown. Parents are reached at `host.ip:host.port` (their upload gRPC server).

import { credentials, type ChannelCredentials } from '@grpc/grpc-js';
import { DfdaemonUploadClient } from '../gen/dfdaemon.js';

export class UploadClientPool {
  private readonly clients = new Map<string, DfdaemonUploadClient>();

  constructor(private readonly creds: ChannelCredentials = credentials.createInsecure()) {}

  get(ip: string, port: number): DfdaemonUploadClient {
    const target = `${ip.includes(':') ? `[${ip}]` : ip}:${port}`;
    let c = this.clients.get(target);
    if (!c) {
      c = new DfdaemonUploadClient(target, this.creds, {
        'grpc.max_receive_message_length': -1,
        'grpc.max_send_message_length': -1,
      });
      this.clients.set(target, c);
    }
    return c;
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}
