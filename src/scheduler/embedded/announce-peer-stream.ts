// The life of one AnnouncePeer call (spec/scheduler.md §1.1). Requests are handled one at a time, in order, by one
// loop; a scheduling round that waits blocks the stream, as in Go. Initial metadata goes out as soon as the stream
// opens, because the Rust client's 10s channel timeout also bounds the wait for response headers.
//
// The client never half-closes: after its terminal request it waits until its request stream is dropped. So after a
// terminal request (or an error) we end the call ourselves: `end()` sends the trailers, and then, as grpc-go does,
// RST_STREAM(NO_ERROR) closes the client's side too (reset-after-trailers.ts).
//
// A stream that goes away without a terminal request (cancelled, reset, half-closed early) makes its peer Leave:
// its edges are dropped and it is never offered as a parent again.

import { Metadata, type ServerDuplexStream } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { AnnouncePeerRequest, AnnouncePeerResponse } from '../../gen/scheduler.js';
import type { AnnouncePeerHandler, PeerStreamContext } from './announce-peer.js';
import type { AnnouncePeerStream, Peer } from './resources.js';
import { statusCodeOf, toServiceError } from './status.js';
import { callerIpOf } from './callers.js';
import { resetAfterTrailers } from './reset-after-trailers.js';

/** Requests buffered before reading pauses (the Rust client itself keeps at most 4 in flight). */
const MAX_QUEUED_REQUESTS = 16;

type Call = ServerDuplexStream<AnnouncePeerRequest, AnnouncePeerResponse>;

export class AnnouncePeerSession implements PeerStreamContext {
  peer?: Peer;
  readonly stream: AnnouncePeerStream;
  private readonly abort = new AbortController();
  private readonly queue: AnnouncePeerRequest[] = [];
  private pumping = false;
  private paused = false;
  private halfClosed = false;
  private done = false;

  constructor(
    private readonly call: Call,
    private readonly handler: AnnouncePeerHandler,
    private readonly log: Logger,
    private readonly onDone: (session: AnnouncePeerSession) => void,
  ) {
    this.stream = { send: (response) => this.send(response) };
    call.sendMetadata(new Metadata());
    call.on('data', (req: AnnouncePeerRequest) => this.enqueue(req));
    call.on('end', () => {
      this.halfClosed = true;
      void this.pump();
    });
    call.on('cancelled', () => this.vanish('cancelled'));
    call.on('error', (err: Error) => this.vanish(err.message));
    call.on('close', () => this.vanish('closed'));
  }

  get signal(): AbortSignal {
    return this.abort.signal;
  }

  get callerIp(): string {
    return callerIpOf(this.call);
  }

  /** Ends the call now (server shutdown): the peer is treated as gone. */
  close(): void {
    this.finish(undefined, false);
  }

  private send(response: AnnouncePeerResponse): void {
    if (this.done) return;
    this.call.write(response);
  }

  private enqueue(req: AnnouncePeerRequest): void {
    if (this.done) return;
    this.queue.push(req);
    if (this.queue.length >= MAX_QUEUED_REQUESTS && !this.paused) {
      this.paused = true;
      this.call.pause();
    }
    void this.pump();
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (!this.done && this.queue.length > 0) {
        const req = this.queue.shift()!;
        if (this.paused && this.queue.length < MAX_QUEUED_REQUESTS / 2) {
          this.paused = false;
          this.call.resume();
        }
        let outcome;
        try {
          outcome = await this.handler.handle(this, req);
        } catch (e) {
          if (this.done) return;
          this.log.warn(
            { peerId: req.peerId, taskId: req.taskId, code: statusCodeOf(e), err: (e as Error).message },
            'announce peer failed',
          );
          this.finish(e, false);
          return;
        }
        if (outcome === 'end') {
          this.finish(undefined, true);
          return;
        }
      }
      // The client half-closed without a terminal request: end with OK, as Go's Recv loop does on EOF.
      if (this.halfClosed && !this.done) this.finish(undefined, false);
    } finally {
      this.pumping = false;
    }
  }

  private vanish(why: string): void {
    if (this.done) return;
    this.log.info({ peerId: this.peer?.id, why }, 'announce peer stream gone');
    this.finish(undefined, false, true);
  }

  private finish(err: unknown, terminal: boolean, gone = false): void {
    if (this.done) return;
    this.done = true;
    this.abort.abort();
    const peer = this.peer;
    if (peer) {
      if (peer.stream === this.stream) peer.stream = undefined;
      if (!terminal && !peer.is('Succeeded', 'Failed', 'Leave')) {
        try {
          peer.event('Leave');
        } catch {
          // Already gone.
        }
      }
    }
    this.onDone(this);
    if (gone) return;
    try {
      resetAfterTrailers(this.call);
      if (err === undefined) this.call.end();
      else this.call.emit('error', toServiceError(err));
    } catch (e) {
      this.log.debug({ err: (e as Error).message }, 'ending announce peer call failed');
    }
  }
}
