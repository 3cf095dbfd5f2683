// Types for pino-roll (it ships none): the factory of a sonic-boom stream that moves to a new file by size.
// Imported only for a daemon that logs to files: it loads all of date-fns (304 modules, ≈12 MiB of RSS), which the
// CLIs and a daemon with --console must not pay for.

declare module 'pino-roll' {
  import type { EventEmitter } from 'node:events';
  import type { DestinationStream } from 'pino';
  export type RollStream = DestinationStream & EventEmitter & { flushSync(): void };
  export default function pinoRoll(options: {
    file: string;
    size: string;
    limit: { count: number };
    mkdir: boolean;
  }): Promise<RollStream>;
}
