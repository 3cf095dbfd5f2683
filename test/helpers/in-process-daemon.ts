// A whole Dfdaemon in the test's own process (the composition root, as cli/dfdaemon.ts builds it) on a temp dir
// and free ports: a fuzz test sees the daemon's unhandled errors as its own, and stops it in `after`.

import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { loadDfdaemonConfig } from '../../src/config/load.js';
import { Dfdaemon } from '../../src/daemon/dfdaemon.js';
import { tempDir, testConfig } from './daemon.js';

export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

export interface InProcessDaemon {
  daemon: Dfdaemon;
  dir: string;
  socket: string;
  storageDir: string;
  uploadPort: number;
  vortexPort: number;
  proxyPort: number;
  /** Every log line at info and above, parsed. */
  logs: LogLine[];
  stop(): Promise<void>;
}

/**
 * Starts a dfdaemon with testConfig (everything under a temp dir, ports 0) plus `extraConfig`, without a scheduler
 * unless `scheduler` (then its embedded one): downloads go to the source.
 */
export async function startInProcessDaemon(
  o: {
    extraConfig?: string;
    uploadServer?: string;
    scheduler?: boolean;
    /** The gRPC servers' HTTP/2 keepalive (Dfdaemon's grpcKeepalive): short, so a stalled connection ends soon. */
    grpcKeepalive?: { timeMs: number; timeoutMs: number };
  } = {},
): Promise<InProcessDaemon> {
  const dir = tempDir('dft-inproc-');
  const configPath = join(dir, 'dfdaemon.yaml');
  writeFileSync(
    configPath,
    testConfig(dir, o.extraConfig ?? '', {
      uploadServer: o.uploadServer,
      // Any address turns the embedded scheduler off; without a dynconfig file there is then no scheduler.
      ...(o.scheduler ? {} : { schedulerAddr: '127.0.0.1:1' }),
    }),
  );
  const dirs = {
    configDir: dir,
    storageDir: join(dir, 'storage'),
    logDir: join(dir, 'log'),
    runDir: dir,
    pluginDir: join(dir, 'plugins'),
    cacheDir: join(dir, 'cache'),
    lockDir: join(dir, 'lock'),
  };
  for (const d of Object.values(dirs)) mkdirSync(d, { recursive: true });
  const { config } = loadDfdaemonConfig(configPath, { dirs });

  const logs: LogLine[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line) logs.push(JSON.parse(line) as LogLine);
      }
      done();
    },
  });
  const log = pino({ level: 'info' }, sink);
  const daemon = new Dfdaemon({ config, log, version: '0.0.0-test', grpcKeepalive: o.grpcKeepalive });
  try {
    await daemon.start();
  } catch (e) {
    await daemon.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const started = logs.find((l) => l.msg === 'dfdaemon started')!;
  return {
    daemon,
    dir,
    socket: config.download.server.socketPath,
    storageDir: config.storage.dir,
    uploadPort: started.upload as number,
    vortexPort: started.vortex as number,
    proxyPort: started.proxy as number,
    logs,
    stop: async () => {
      await daemon.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
