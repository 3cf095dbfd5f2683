// Builds small models (hosts, a task, peers in given states) for the pure scheduling tests.

import { Host as HostMessage, TaskType } from '../../../../src/gen/common.js';
import {
  Host,
  Peer,
  Resources,
  Task,
  type PeerState,
  type TaskInit,
} from '../../../../src/scheduler/embedded/resources.js';

export const PIECE = 4 * 1024 * 1024;

export function host(
  id: string,
  o: { type?: number; idc?: string; location?: string; maxTx?: number; disableShared?: boolean } = {},
): Host {
  return new Host(
    HostMessage.fromPartial({
      id,
      hostname: id,
      ip: '127.0.0.1',
      port: 4000,
      type: o.type ?? 0,
      disableShared: o.disableShared ?? false,
      network: {
        idc: o.idc ?? '',
        location: o.location ?? '',
        maxTxBandwidth: o.maxTx ?? 0,
        maxRxBandwidth: 0,
        tcpConnectionCount: 0,
        uploadTcpConnectionCount: 0,
      },
    }),
  );
}

export function task(id = 't'.repeat(64), contentLength = 10 * PIECE, init: Partial<TaskInit> = {}): Task {
  return new Task({
    id,
    type: TaskType.STANDARD,
    url: 'http://o/f',
    tag: '',
    application: '',
    filteredQueryParams: [],
    requestHeader: {},
    pieceLength: PIECE,
    contentLength,
    pieceCount: Math.ceil(contentLength / PIECE),
    backToSourceLimit: 200,
    ...init,
  });
}

/** A stored peer forced into `state` (the FSM path does not matter to these tests). */
export function peer(r: Resources, id: string, t: Task, h: Host, state: PeerState = 'Pending'): Peer {
  const p = new Peer({ id, task: t, host: h, priority: 0 });
  r.storePeer(p);
  p.state = state;
  return p;
}
