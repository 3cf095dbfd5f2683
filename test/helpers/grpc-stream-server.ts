// A DfdaemonDownload server (the daemon's own grpc-js helpers, grpc/server.ts) whose DownloadTask answers what
// the request's URL names, for the tests of grpc/http2-client.ts. Imported by a test, or run as a process
// (`node grpc-stream-server.js SOCKET`, printing "ready") that a test kills mid-stream.

import { Metadata, status, type Server, type ServerWritableStream } from '@grpc/grpc-js';
import { createGrpcServer, bindUnixSocket, type UnixSocketListener } from '../../src/grpc/server.js';
import {
  DfdaemonDownloadService,
  type DownloadTaskRequest,
  type DownloadTaskResponse,
} from '../../src/gen/dfdaemon.js';

const PIECE_TIMES = { cost: undefined, createdAt: undefined };

/** The piece message of `content`, as dfdaemon sends it in transfer mode. */
function piece(number: number, content: Buffer): DownloadTaskResponse {
  return {
    hostId: 'h',
    taskId: 't',
    peerId: 'p',
    downloadPieceFinishedResponse: {
      piece: {
        ...PIECE_TIMES,
        number,
        offset: 0,
        length: content.length,
        digest: 'crc32:1',
        content,
        trafficType: 2,
      },
    },
  };
}

/** Bytes of piece `n` of the "large" answer: a pattern a test can check. */
export function largeContent(n: number, size: number): Buffer {
  return Buffer.alloc(size, (n * 7 + 1) % 256);
}

export const LARGE_PIECE = 5 * 1024 * 1024;
export const LARGE_PIECES = 3;

function handle(call: ServerWritableStream<DownloadTaskRequest, DownloadTaskResponse>): void {
  const url = call.request.download?.url ?? '';
  const fail = (code: number, details: string, metadata = new Metadata()) =>
    call.emit('error', { code, details, metadata });
  switch (url) {
    case 'test:echo':
      // The request's fields and metadata back, in the started response's header map.
      call.write({
        hostId: 'h',
        taskId: call.metadata.get('x-test')[0]?.toString() ?? '',
        peerId: call.request.download!.outputPath ?? '',
        downloadTaskStartedResponse: {
          contentLength: 1024,
          responseHeader: {},
          pieces: [{ ...PIECE_TIMES, number: 0, offset: 0, length: 1024, digest: '' }],
          isFinished: false,
        },
      });
      call.end();
      return;
    case 'test:large':
      for (let n = 0; n < LARGE_PIECES; n++) call.write(piece(n, largeContent(n, LARGE_PIECE)));
      call.end();
      return;
    case 'test:error-before': {
      const metadata = new Metadata();
      metadata.set(
        'grpc-status-details-bin',
        Buffer.from(JSON.stringify({ status_code: 404, message: 'gone' })),
      );
      fail(status.INTERNAL, 'backend error: 404 Not Found — ünïcode, 100% sure', metadata);
      return;
    }
    case 'test:error-after':
      call.write(piece(0, Buffer.from('first')));
      fail(status.ABORTED, 'the source changed');
      return;
    case 'test:forever':
      // One piece, then a piece every 50 ms until the client goes.
      call.write(piece(0, Buffer.from('first')));
      {
        const timer = setInterval(() => call.write(piece(1, Buffer.from('more'))), 50);
        call.on('cancelled', () => clearInterval(timer));
        call.on('close', () => clearInterval(timer));
      }
      return;
    case 'test:two':
      call.write(piece(0, Buffer.from('a')));
      call.write(piece(1, Buffer.from('b')));
      call.end();
      return;
    case 'test:none':
      call.end();
      return;
    default:
      fail(status.NOT_FOUND, `no such test ${url}`);
  }
}

/** The server of these answers on `socketPath`. */
export async function startStreamServer(
  socketPath: string,
  onCancelled?: () => void,
): Promise<{ server: Server; listener: UnixSocketListener }> {
  const server = createGrpcServer([
    {
      definition: DfdaemonDownloadService,
      implementation: {
        downloadTask: (call: ServerWritableStream<DownloadTaskRequest, DownloadTaskResponse>) => {
          call.on('cancelled', () => onCancelled?.());
          handle(call);
        },
      },
      name: 'dfdaemon.v2.DfdaemonDownload',
    },
  ]);
  const listener = await bindUnixSocket(server, socketPath);
  return { server, listener };
}

if (process.argv[1]?.endsWith('grpc-stream-server.js') && process.argv[2]) {
  await startStreamServer(process.argv[2]);
  process.stdout.write('ready\n');
}
