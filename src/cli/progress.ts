// A download progress bar like upstream's indicatif one: `[elapsed] [bar:60] pct% (bytes/s, eta)`, with the
// percent-decoded URL path as its message. It advances once per finished piece, by that piece's length
// (upstream adds the length twice and runs one piece ahead; we do not).

import { formatByteSize } from '../core/bytesize.js';

export interface Progress {
  start(total: number): void;
  advance(bytes: number): void;
  stop(): void;
}

const NO_PROGRESS: Progress = { start() {}, advance() {}, stop() {} };

function label(url: string): string {
  try {
    return decodeURIComponent(new URL(url).pathname);
  } catch {
    return url;
  }
}

/**
 * cli-progress is loaded only when a bar is shown: it costs ~40 ms of start-up, which matters for dfget on
 * small or cached files (and in scripts, where stderr is no terminal).
 */
export async function createProgress(
  url: string,
  enabled: boolean,
  stream: NodeJS.WriteStream = process.stderr,
): Promise<Progress> {
  if (!enabled || !stream.isTTY) return NO_PROGRESS;
  const { default: cliProgress } = await import('cli-progress');
  const bar = new cliProgress.SingleBar(
    {
      stream,
      format: `${label(url)}\n[{duration_formatted}] [{bar}] {percentage}% ({speed}/s, {eta_formatted})`,
      barsize: 60,
      barCompleteChar: '#',
      barIncompleteChar: '-',
      hideCursor: true,
      etaBuffer: 20,
      fps: 10,
    },
    cliProgress.Presets.legacy,
  );
  let value = 0;
  let startedAt = 0;
  return {
    start(total) {
      // Again from zero when dfget downloads once more (the source changed).
      value = 0;
      startedAt = performance.now();
      bar.start(total, 0, { speed: formatByteSize(0) });
    },
    advance(bytes) {
      value += bytes;
      const secs = Math.max((performance.now() - startedAt) / 1000, 0.001);
      bar.update(value, { speed: formatByteSize(Math.round(value / secs)) });
    },
    stop() {
      bar.stop();
    },
  };
}
