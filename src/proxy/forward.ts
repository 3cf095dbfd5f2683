// Requests that do not go through P2P are forwarded to their origin as they are (upstream proxy_via_http /
// proxy_via_https): Host fixed up from the URL, hop-by-hop headers dropped, both bodies streamed, never buffered.
// Unlike upstream (which does not verify upstream TLS), HTTPS origins are verified against Node's root store plus
// `proxy.registryMirror.cert` when set.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { rootCertificates } from 'node:tls';
import { pipeline } from 'node:stream/promises';
import type { Agent } from '../http-client/undici-core.js';
import { loadUndici } from '../http-client/lazy-undici.js';
import { SourceAddressPolicy } from '../backend/address-policy.js';
import { appendVia, endToEnd } from './headers.js';

export interface ForwarderOptions {
  /** Extra trusted CA certificates (PEM), added to the root store. */
  ca?: string[];
  connectTimeoutMs?: number;
  /** This proxy's Via entry, appended to every forwarded request. */
  via?: string;
  /** Checks every connection made for a client on another host (forward()'s remoteCaller). */
  sourcePolicy?: SourceAddressPolicy;
}

/** Undici refuses these request headers; they describe this hop, not the request. */
const REFUSED_BY_CLIENT = ['expect', 'host'];

/** Host as clients sign it: the URL's authority without the scheme's default port (upstream does the same). */
export function hostHeader(url: URL): string {
  return url.host;
}

export class ForwardError extends Error {}

export class Forwarder {
  /**
   * undici's agents, made on the first forwarded request (lazy-undici.ts); the second serves clients on other
   * hosts, every connection checked by the source policy.
   */
  private agents: Promise<{ agent: Agent; remoteAgent: Agent }> | undefined;
  private readonly makeAgents: () => Promise<{ agent: Agent; remoteAgent: Agent }>;
  private readonly via?: string;

  constructor(o: ForwarderOptions = {}) {
    this.via = o.via;
    const connect = {
      timeout: o.connectTimeoutMs ?? 30_000,
      ca: o.ca && o.ca.length > 0 ? [...rootCertificates, ...o.ca] : undefined,
    };
    const policy = o.sourcePolicy ?? SourceAddressPolicy.denyPrivate();
    this.makeAgents = async () => {
      const { Agent } = await loadUndici();
      return {
        agent: new Agent({ keepAliveTimeout: 30_000, connect }),
        remoteAgent: new Agent({ keepAliveTimeout: 30_000, connect: policy.connector(connect) }),
      };
    };
  }

  /**
   * Sends `req` to `target` and streams the answer into `res`. Rejects with a ForwardError when the origin cannot
   * be reached (nothing has been written to `res` then); a failure after the headers went out destroys `res`.
   */
  async forward(
    req: IncomingMessage,
    res: ServerResponse,
    target: URL,
    opts: { remoteCaller?: boolean } = {},
  ): Promise<void> {
    const headers = endToEnd(req.headers);
    for (const h of REFUSED_BY_CLIENT) delete headers[h];
    headers['host'] = hostHeader(target);
    if (this.via) headers['via'] = appendVia(headers['via'], this.via);
    const hasBody =
      req.headers['transfer-encoding'] !== undefined ||
      (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');
    // A client that goes away cancels the origin request, also while the origin has not answered yet.
    const abort = new AbortController();
    const onClose = () => {
      if (!res.writableFinished) abort.abort();
    };
    res.on('close', onClose);
    try {
      let answer;
      try {
        const agents = await (this.agents ??= this.makeAgents());
        answer = await (opts.remoteCaller ? agents.remoteAgent : agents.agent).request({
          origin: target.origin,
          path: target.pathname + target.search,
          method: req.method as 'GET',
          headers,
          body: hasBody ? req : undefined,
          signal: abort.signal,
        });
      } catch (e) {
        if (abort.signal.aborted) return;
        throw new ForwardError(`cannot reach ${target.origin}: ${(e as Error).message}`, { cause: e });
      }
      res.writeHead(answer.statusCode, endToEnd(answer.headers as Record<string, string | string[]>));
      try {
        await pipeline(answer.body, res);
      } catch {
        // The client went away or the origin broke off: the connection is cut, the client sees a short body.
        res.destroy();
        answer.body.destroy();
      }
    } finally {
      res.off('close', onClose);
    }
  }

  async close(): Promise<void> {
    const agents = await this.agents?.catch(() => undefined);
    if (agents) await Promise.all([agents.agent.close(), agents.remoteAgent.close()]);
  }
}
