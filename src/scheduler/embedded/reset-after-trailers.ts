// Ending a bidirectional scheduler stream the way grpc-go does. The Rust client never half-closes an announce
// stream (AnnouncePeer, AnnouncePersistentCachePeer): after its terminal request it waits until its request stream
// is dropped (`in_stream_tx.closed()`), which happens when the server resets the HTTP/2 stream. grpc-go sends the
// trailers and then RST_STREAM(NO_ERROR); grpc-js sends only the trailers and leaves the stream half-open, so the
// Rust client would wait forever (a Rust export under our scheduler hung after its last piece). resetAfterTrailers
// adds the reset.

import { constants as http2, type ServerHttp2Stream } from 'node:http2';
import type { ServerDuplexStream } from '@grpc/grpc-js';

/** How long the trailers may take to leave before the stream is reset anyway. */
const TRAILERS_FLUSH_TIMEOUT_MS = 1000;

type AnyDuplexCall = ServerDuplexStream<unknown, unknown>;

/**
 * The HTTP/2 stream under a grpc-js server call. grpc-js keeps it private: the call's `call` is a chain of
 * intercepting calls (`nextCall`) ending in the one that owns `stream`. Undefined if that ever changes.
 */
function http2StreamOf(call: AnyDuplexCall): ServerHttp2Stream | undefined {
  let cur = (call as unknown as { call?: unknown }).call;
  for (let depth = 0; cur && depth < 8; depth++) {
    const c = cur as { stream?: ServerHttp2Stream; nextCall?: unknown };
    if (c.stream && typeof c.stream.close === 'function' && 'sentTrailers' in c.stream) return c.stream;
    cur = c.nextCall;
  }
  return undefined;
}

/**
 * Call just before ending `call`: once grpc-js has sent the trailers, resets the stream with NO_ERROR if the client
 * left its side open. The reset must not overtake the trailers (nghttp2 sends RST_STREAM ahead of queued
 * DATA/HEADERS), so it waits until the stream's local side is closed, i.e. the END_STREAM frame is on the wire, for
 * at most TRAILERS_FLUSH_TIMEOUT_MS. It polls rather than waiting for 'wantTrailers', which a trailers-only answer
 * (an error before any message) never emits.
 */
export function resetAfterTrailers<Req, Res>(call: ServerDuplexStream<Req, Res>): void {
  const stream = http2StreamOf(call as unknown as AnyDuplexCall);
  if (!stream) return;
  const deadline = Date.now() + TRAILERS_FLUSH_TIMEOUT_MS;
  const check = () => {
    if (stream.closed || stream.destroyed) return;
    if (stream.state.localClose || Date.now() > deadline) stream.close(http2.NGHTTP2_NO_ERROR);
    else setTimeout(check, 1);
  };
  setImmediate(check);
}
