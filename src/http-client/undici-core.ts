// undici's Agent, request and buildConnector without the rest of undici. `import ... from 'undici'` loads its
// index, 110 modules (fetch, WebSocket, EventSource, the cache and mock agents, every interceptor): 20 MiB of the
// daemon's RSS, of which the HTTP client the daemon uses (the agent, its request API and the connector) is 31
// modules and 12 MiB (measured with `process.memoryUsage()` and VmRSS after each import, node 20). undici has no
// "exports" map, so its files are importable; undici-lib.d.ts types them from undici's own declarations.

import type * as Undici from 'undici';
import Dispatcher from 'undici/lib/dispatcher/dispatcher.js';
import api from 'undici/lib/api/index.js';
import AgentClass from 'undici/lib/dispatcher/agent.js';
import build from 'undici/lib/core/connect.js';
import { parseURL } from 'undici/lib/core/util.js';
import type { Socket } from 'node:net';
import { holdEndWhileParserPaused } from './socket-end-guard.js';

// undici's index gives every dispatcher its request/stream/pipeline/upgrade/connect methods this way; without the
// index, this module does it (idempotent: the same functions, should the index be loaded too).
Object.assign(Dispatcher.prototype, api);

/**
 * undici's Agent whose every connection carries socket-end-guard.ts (a paused parser at the origin's close
 * otherwise ends the process). `connect` as undici takes it: connector options, or a connector function.
 */
export class Agent extends AgentClass {
  constructor(options: Undici.Agent.Options = {}) {
    super({ ...options, connect: guardedConnector(options.connect, options.allowH2) });
  }
}

function guardedConnector(
  connect: Undici.Agent.Options['connect'],
  allowH2: boolean | undefined,
): Undici.buildConnector.connector {
  const base =
    typeof connect === 'function'
      ? connect
      : build({ ...(allowH2 === undefined ? {} : { allowH2 }), ...connect });
  return (options, callback) =>
    base(options, (error, socket) => {
      if (socket) holdEndWhileParserPaused(socket as Socket);
      callback(error, socket as never);
    });
}

export const buildConnector = build;

type RequestOptions = Omit<Undici.Dispatcher.RequestOptions, 'origin' | 'path' | 'method'> & {
  dispatcher: Undici.Dispatcher;
  method?: Undici.Dispatcher.HttpMethod;
};

/**
 * undici's `request(url, { dispatcher, ... })`: the URL split into origin and path as undici does, the method GET
 * unless given. A dispatcher is required: the daemon never uses undici's global one.
 */
export function request(url: string, options: RequestOptions): Promise<Undici.Dispatcher.ResponseData> {
  const u = parseURL(url);
  const { dispatcher, ...rest } = options;
  return dispatcher.request({
    ...rest,
    origin: u.origin,
    path: u.search ? `${u.pathname}${u.search}` : u.pathname,
    method: options.method ?? 'GET',
  });
}
