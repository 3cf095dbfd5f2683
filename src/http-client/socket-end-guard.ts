// undici 7's HTTP/1.1 client (lib/dispatcher/client-h1.js, onHttpSocketEnd) asserts that its response parser is
// not paused when the origin closes the connection with a response still in flight — a body that ends at EOF,
// `Connection: close`, HTTP/1.0. The parser pauses whenever our reader applies backpressure (a disk slower than
// the network, a slow proxy client), and the AssertionError is thrown from the socket's 'end' event, where nothing
// can catch it: it ended the whole daemon (found by bench:objstore against Hadoop's DataNode, whose WebHDFS OPEN
// answers that way; test/unit/backend/http-connection-close.test.ts). undici 8 dropped the assertion but needs
// Node 22.
//
// The guard holds the socket's 'end' back while the parser is paused and lets it go right after the parser
// resumes, which is when undici would have read the end of the stream had it kept reading: the response then
// completes (or fails) as undici intends, with every byte delivered.

import type { Socket } from 'node:net';
import symbols from 'undici/lib/core/symbols.js';

interface PausableParser {
  paused: boolean;
  resume(): void;
}

/** Wraps `socket.emit` so that 'end' waits for undici's parser of this socket to be running. */
export function holdEndWhileParserPaused(socket: Socket): void {
  const emit = socket.emit.bind(socket) as (event: string | symbol, ...args: unknown[]) => boolean;
  const guarded = (event: string | symbol, ...args: unknown[]): boolean => {
    if (event !== 'end') return emit(event, ...args);
    const parser = (socket as unknown as Record<symbol, PausableParser | null | undefined>)[symbols.kParser];
    if (!parser?.paused) return emit(event, ...args);
    // Shadow the parser's resume once: after undici's own resume, 'end' is offered again (and held again if the
    // reader paused the parser at once).
    const resume = Object.prototype.hasOwnProperty.call(parser, 'resume') ? undefined : parser.resume;
    if (resume) {
      parser.resume = function resumeThenEnd(this: PausableParser) {
        delete (parser as Partial<PausableParser>).resume;
        resume.call(this);
        if (!socket.destroyed) guarded('end', ...args);
      };
    }
    return true;
  };
  socket.emit = guarded as typeof socket.emit;
}
