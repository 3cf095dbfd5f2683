// Request limits for dfdaemon's gRPC servers: `download.server.requestRateLimit/requestBufferSize` and
// `upload.server.requestRateLimit/requestBufferSize`.
//
// Upstream stacks tower layers in front of every service of the server: LoadShed → Buffer(requestBufferSize) →
// RateLimit(requestRateLimit per 1 s). A call the rate allows passes at once; a call beyond the rate waits in the
// buffer until the rate allows it; a call that finds the buffer full is refused at once with RESOURCE_EXHAUSTED.
// The buffer holds only calls *waiting* for the rate limiter: a call leaves it when it is dispatched, so calls in
// flight do not count against requestBufferSize. We do the same with a token bucket (burst = one second's worth)
// and a FIFO wait queue of at most requestBufferSize calls. A waiting call that its client cancels leaves the
// queue. `0` for requestRateLimit means unlimited (upstream cannot be configured so; it would stall).
//
// `limitImplementation` wraps the handlers of one service implementation (health and reflection are registered
// separately by createGrpcServer and so are never limited). Gates run in order; each admitted call holds its
// gates until it ends: a unary or client-streaming call when it answers, a server-streaming or bidi call when its
// stream finishes, fails or is cancelled.

import type {
  sendUnaryData,
  ServerWritableStream,
  ServiceDefinition,
  UntypedServiceImplementation,
} from '@grpc/grpc-js';
import { Counter, type Registry } from 'prom-client';
import { DfError } from '../../core/errors.js';
import { toGrpcError } from './status.js';

export type Release = () => void;

/** Admits a call: returns its release, throws a DfError to refuse it, or resolves once it may run. */
export interface CallGate {
  admit(cancelled: AbortSignal): Release | Promise<Release>;
}

export interface RequestLimiterOptions {
  /** For messages, e.g. "dfdaemon download server". */
  server: string;
  /** The config section of the keys, e.g. "download.server". */
  configKey: string;
  /** Calls per second; 0 (or Infinity) is unlimited. */
  requestRateLimit: number;
  /** Calls that may wait for the rate limiter at once; more are refused. */
  requestBufferSize: number;
  /** Counts refusals as dragonfly_client_request_limit_rejected_total{server}. */
  registry?: Registry;
  /** Label value for the metric, e.g. "download". */
  metricLabel?: string;
  now?: () => number;
  setTimer?: (ms: number, fn: () => void) => () => void;
}

interface Waiter {
  resolve: (r: Release) => void;
  signal: AbortSignal;
  onAbort: () => void;
}

const NOOP: Release = () => {};

const rejectedCounters = new WeakMap<Registry, Counter<'server'>>();
function rejectedCounter(registry: Registry): Counter<'server'> {
  let c = rejectedCounters.get(registry);
  if (!c) {
    c = new Counter({
      name: 'dragonfly_client_request_limit_rejected_total',
      help: 'Counter of the gRPC requests refused by requestRateLimit/requestBufferSize (ours; not upstream).',
      labelNames: ['server'],
      registers: [registry],
    });
    rejectedCounters.set(registry, c);
  }
  return c;
}

export class RequestLimiter implements CallGate {
  private readonly rate: number;
  private readonly bufferSize: number;
  private tokens: number;
  private last: number;
  private readonly queue: Waiter[] = [];
  private cancelTimer?: () => void;
  private readonly now: () => number;
  private readonly setTimer: (ms: number, fn: () => void) => () => void;
  private readonly rejected?: Counter<'server'>;

  constructor(private readonly o: RequestLimiterOptions) {
    this.rate = o.requestRateLimit > 0 ? o.requestRateLimit : Infinity;
    this.bufferSize = Math.max(0, o.requestBufferSize);
    this.now = o.now ?? (() => performance.now());
    this.setTimer =
      o.setTimer ??
      ((ms, fn) => {
        const t = setTimeout(fn, ms);
        t.unref();
        return () => clearTimeout(t);
      });
    this.tokens = this.rate;
    this.last = this.now();
    if (o.registry) this.rejected = rejectedCounter(o.registry);
  }

  /** Calls waiting for a token. */
  get waiting(): number {
    return this.queue.length;
  }

  admit(cancelled: AbortSignal): Release | Promise<Release> {
    if (this.rate === Infinity) return NOOP;
    this.refill();
    if (this.queue.length === 0 && this.tokens >= 1) {
      this.tokens -= 1;
      return NOOP;
    }
    if (this.queue.length >= this.bufferSize) {
      this.rejected?.inc({ server: this.o.metricLabel ?? this.o.server });
      throw new DfError(
        'RESOURCE_EXHAUSTED',
        `${this.o.server}: more than ${this.o.requestRateLimit} requests/s (${this.o.configKey}.requestRateLimit) ` +
          `and ${this.queue.length} requests already waiting (${this.o.configKey}.requestBufferSize ` +
          `${this.bufferSize}); retry later`,
      );
    }
    return new Promise<Release>((resolve) => {
      const waiter: Waiter = {
        resolve,
        signal: cancelled,
        onAbort: () => {
          const i = this.queue.indexOf(waiter);
          if (i >= 0) this.queue.splice(i, 1);
          resolve(NOOP);
        },
      };
      cancelled.addEventListener('abort', waiter.onAbort, { once: true });
      this.queue.push(waiter);
      this.schedule();
    });
  }

  private refill(): void {
    const now = this.now();
    this.tokens = Math.min(this.rate, this.tokens + ((now - this.last) * this.rate) / 1000);
    this.last = now;
  }

  private schedule(): void {
    if (this.cancelTimer || this.queue.length === 0) return;
    const ms = Math.max(0, ((1 - this.tokens) * 1000) / this.rate);
    this.cancelTimer = this.setTimer(ms, () => {
      this.cancelTimer = undefined;
      this.refill();
      while (this.queue.length > 0 && this.tokens >= 1) {
        this.tokens -= 1;
        const w = this.queue.shift()!;
        w.signal.removeEventListener('abort', w.onAbort);
        w.resolve(NOOP);
      }
      this.schedule();
    });
  }
}

function admitAll(gates: CallGate[], signal: AbortSignal): Release | Promise<Release> {
  const held: Release[] = [];
  const releaseAll: Release = () => {
    for (const r of held.splice(0).reverse()) r();
  };
  const step = (i: number): Release | Promise<Release> => {
    for (; i < gates.length; i++) {
      let r: Release | Promise<Release>;
      try {
        r = gates[i]!.admit(signal);
      } catch (e) {
        releaseAll();
        throw e;
      }
      if (typeof r !== 'function') {
        const next = i + 1;
        return r.then(
          (rel) => {
            held.push(rel);
            return step(next);
          },
          (e: unknown) => {
            releaseAll();
            throw e;
          },
        );
      }
      held.push(r);
    }
    return releaseAll;
  };
  return step(0);
}

type AnyHandler = (call: ServerWritableStream<unknown, unknown>, callback?: sendUnaryData<unknown>) => void;

/** Wraps every handler of `implementation` so each call passes `gates` first (see the file comment). */
export function limitImplementation(
  definition: ServiceDefinition,
  implementation: UntypedServiceImplementation,
  gates: CallGate[],
): UntypedServiceImplementation {
  if (gates.length === 0) return implementation;
  const out: UntypedServiceImplementation = { ...implementation };
  for (const [name, method] of Object.entries(definition)) {
    const handler = implementation[name] as AnyHandler | undefined;
    if (!handler) continue;
    const hasCallback = !method.responseStream;
    const wrapped: AnyHandler = (call, callback) => {
      const ac = new AbortController();
      const onCancel = () => ac.abort();
      call.once('cancelled', onCancel);
      const refuse = (e: unknown) => {
        call.removeListener('cancelled', onCancel);
        if (ac.signal.aborted) return;
        const err = toGrpcError(e);
        if (hasCallback && callback) callback(err);
        else call.emit('error', err);
      };
      const run = (release: Release) => {
        call.removeListener('cancelled', onCancel);
        if (ac.signal.aborted) {
          release();
          return;
        }
        let done = false;
        const end = () => {
          if (done) return;
          done = true;
          release();
        };
        call.once('cancelled', end);
        if (hasCallback && callback) {
          handler(call, (err, value, trailer, flags) => {
            end();
            callback(err, value, trailer, flags);
          });
        } else {
          for (const ev of ['finish', 'close', 'error']) call.once(ev, end);
          handler(call, callback);
        }
      };
      let admitted: Release | Promise<Release>;
      try {
        admitted = admitAll(gates, ac.signal);
      } catch (e) {
        refuse(e);
        return;
      }
      if (typeof admitted === 'function') run(admitted);
      else admitted.then(run, refuse);
    };
    out[name] = wrapped as UntypedServiceImplementation[string];
  }
  return out;
}

/**
 * The gates of one dfdaemon gRPC server, in upstream's order: adaptive load shedding (shared by both servers,
 * when `server.adaptiveRateLimit` is on), then `<server>.server.requestRateLimit/requestBufferSize`.
 */
export function serverGates(o: {
  /** "download" or "upload". */
  server: string;
  limits: { requestRateLimit: number; requestBufferSize: number };
  shedder?: { gate(server: string, description: string): CallGate };
  registry?: Registry;
}): CallGate[] {
  const description = `dfdaemon ${o.server} server`;
  const gates: CallGate[] = [];
  if (o.shedder) gates.push(o.shedder.gate(o.server, description));
  gates.push(
    new RequestLimiter({
      server: description,
      configKey: `${o.server}.server`,
      requestRateLimit: o.limits.requestRateLimit,
      requestBufferSize: o.limits.requestBufferSize,
      registry: o.registry,
      metricLabel: o.server,
    }),
  );
  return gates;
}
