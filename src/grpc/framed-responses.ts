// Response messages that their producer has already framed for the wire (the gRPC length prefix in front of the
// encoded message, in one buffer), sent by grpc-js as they are.
//
// grpc-js (1.14) frames every response in a fresh buffer (BaseServerInterceptingCall.serializeMessage:
// Buffer.allocUnsafe(length + 5) and a copy) and holds it until HTTP/2 has written it. For DownloadTask's piece
// content (`dfget --transfer-from-dfdaemon`) that is a new 512 KiB buffer per message, ~2 000 per GiB: the
// backing stores outran V8's young generation and its external-memory accounting, and full collections were ~28 %
// of dfdaemon's samples. A producer that builds each message in a pooled buffer with room for the prefix in front
// (framedMessage) and reuses the buffer only after the write's callback makes no garbage per message; the server
// interceptor below lets such a buffer past grpc-js's framing. If a grpc-js update moves the method it replaces,
// the interceptor changes nothing and the method's serializer (acceptFramedResponses) hands grpc-js the message
// without its prefix, so the bytes on the wire stay right; test/unit/grpc/framed-responses.test.ts fails then.

import {
  ServerInterceptingCall,
  type ServerInterceptor,
  type ServerInterceptingCallInterface,
  type ServiceDefinition,
} from '@grpc/grpc-js';

/** The gRPC message prefix: a compressed flag byte and the message length (u32, big-endian). */
export const FRAME_PREFIX_BYTES = 5;

const framed = new WeakSet<Buffer>();

/**
 * Marks `frame` as one whole message frame and writes its prefix: the encoded message is
 * `frame.subarray(FRAME_PREFIX_BYTES)`. The producer must not change the buffer until the write's callback.
 */
export function framedMessage(frame: Buffer): Buffer {
  frame[0] = 0;
  frame.writeUInt32BE(frame.length - FRAME_PREFIX_BYTES, 1);
  framed.add(frame);
  return frame;
}

/**
 * The method's responses may also be framed messages (framedMessage) or encoded ones (any other Buffer goes out as
 * it is). Returns a copy of the definition; the other methods are unchanged.
 */
export function acceptFramedResponses<D extends ServiceDefinition>(
  definition: D,
  method: keyof D & string,
): D {
  const m = definition[method]!;
  const serialize = m.responseSerialize;
  return {
    ...definition,
    [method]: {
      ...m,
      responseSerialize: (value: unknown) => {
        if (!Buffer.isBuffer(value)) return serialize(value);
        return framed.has(value) ? value.subarray(FRAME_PREFIX_BYTES) : value;
      },
    },
  };
}

/**
 * A server interceptor under which a framed message of the calls of `paths` goes to HTTP/2 without grpc-js's copy.
 * It must be the server's first interceptor: it replaces a method of grpc-js's base call, which only the first one
 * receives.
 */
export function passFramedResponses(paths: ReadonlySet<string>): ServerInterceptor {
  return (method, call) => {
    if (paths.has(method.path)) passFramed(call);
    // grpc-js wants an intercepting call back: one with no responder passes everything through.
    return new ServerInterceptingCall(call);
  };
}

function passFramed(call: ServerInterceptingCallInterface): void {
  const base = call as unknown as { serializeMessage?: (value: unknown) => Buffer };
  const own = base.serializeMessage;
  if (typeof own !== 'function') return;
  base.serializeMessage = function (this: unknown, value: unknown): Buffer {
    return Buffer.isBuffer(value) && framed.has(value) ? value : own.call(this, value);
  };
}
