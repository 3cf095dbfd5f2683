// Default directories, as upstream's `dragonfly-client-config/src/lib.rs` lays them out on Linux:
//   config /etc/dragonfly, storage /var/lib/dragonfly, logs /var/log/dragonfly/<bin>,
//   run /var/run/dragonfly (dfdaemon.sock), plugins /usr/local/lib/dragonfly/plugins, cache /var/cache/dragonfly.
// On macOS upstream uses ~/.dragonfly/{config,storage,logs,plugins,cache} and ~/.dragonfly for the socket.
// Unlike upstream, defaults must work without root (DESIGN.md): each directory the daemon writes to falls back to
// the macOS layout under ~/.dragonfly when the system directory cannot be created or written. The fallback is
// reported once, as a note, so the daemon can log it.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface DragonflyDirs {
  /** Holds dfdaemon.yaml and dynconfig.yaml. */
  configDir: string;
  /** Task metadata and content (`storage.dir`). */
  storageDir: string;
  /** Parent of the per-binary log directories (`<logDir>/dfdaemon`, `<logDir>/dfget`, ...). */
  logDir: string;
  /** Holds the download gRPC socket `dfdaemon.sock` (upstream's "root dir"). */
  runDir: string;
  /** Parent of the per-binary plugin directories. */
  pluginDir: string;
  /** Parent of the per-binary cache directories. */
  cacheDir: string;
  /** Lock files. */
  lockDir: string;
}

export interface DirsOptions {
  env?: NodeJS.ProcessEnv;
  /** Home directory for the ~/.dragonfly fallback; defaults to $HOME, then os.homedir(). */
  homeDir?: string;
  /** Whether a directory can be created or written; injected by tests. */
  canWrite?: (dir: string) => boolean;
  /** Defaults to process.platform. */
  platform?: NodeJS.Platform;
}

export interface ResolvedDirs {
  dirs: DragonflyDirs;
  /** The system directories that were replaced by their ~/.dragonfly counterpart. */
  fallbacks: Array<{ system: string; fallback: string }>;
  /** One line for the log when any fallback happened. */
  note?: string;
}

export const SYSTEM_DIRS: Readonly<DragonflyDirs> = {
  configDir: '/etc/dragonfly',
  storageDir: '/var/lib/dragonfly',
  logDir: '/var/log/dragonfly',
  runDir: '/var/run/dragonfly',
  pluginDir: '/usr/local/lib/dragonfly/plugins',
  cacheDir: '/var/cache/dragonfly',
  lockDir: '/var/lock/dragonfly',
};

/** The ~/.dragonfly layout (upstream's macOS defaults). */
export function homeDirs(home: string): DragonflyDirs {
  const root = path.join(home, '.dragonfly');
  return {
    configDir: path.join(root, 'config'),
    storageDir: path.join(root, 'storage'),
    logDir: path.join(root, 'logs'),
    runDir: root,
    pluginDir: path.join(root, 'plugins'),
    cacheDir: path.join(root, 'cache'),
    lockDir: root,
  };
}

// Directories the daemon writes to; config and plugins are only read, so they keep their system location
// (the config loader separately looks for ~/.dragonfly/config/dfdaemon.yaml when /etc has none).
const WRITTEN: ReadonlyArray<keyof DragonflyDirs> = ['runDir', 'storageDir', 'logDir', 'cacheDir', 'lockDir'];

/**
 * Whether `dir` exists and is writable, or could be created: its nearest existing ancestor is a writable directory.
 * Creates nothing.
 */
export function defaultCanWrite(dir: string): boolean {
  let current = path.resolve(dir);
  while (true) {
    try {
      const st = fs.statSync(current);
      if (!st.isDirectory()) return false;
      fs.accessSync(current, fs.constants.W_OK | fs.constants.X_OK);
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') return false;
    }
    const parent = path.dirname(current);
    if (parent === current) return false;
    current = parent;
  }
}

export function resolveHome(opts: DirsOptions = {}): string {
  const env = opts.env ?? process.env;
  return opts.homeDir ?? (env.HOME && env.HOME.length > 0 ? env.HOME : os.homedir());
}

/** Resolves the default directories, falling back to ~/.dragonfly for each one that cannot be written. */
export function resolveDirs(opts: DirsOptions = {}): ResolvedDirs {
  const home = resolveHome(opts);
  const fallback = homeDirs(home);
  if ((opts.platform ?? process.platform) === 'darwin') return { dirs: fallback, fallbacks: [] };

  const canWrite = opts.canWrite ?? defaultCanWrite;
  const dirs: DragonflyDirs = { ...SYSTEM_DIRS };
  const fallbacks: ResolvedDirs['fallbacks'] = [];
  for (const key of WRITTEN) {
    if (!canWrite(SYSTEM_DIRS[key])) {
      dirs[key] = fallback[key];
      fallbacks.push({ system: SYSTEM_DIRS[key], fallback: fallback[key] });
    }
  }
  const note =
    fallbacks.length === 0
      ? undefined
      : `cannot write ${fallbacks.map((f) => f.system).join(', ')}; using ` +
        `${fallbacks.map((f) => f.fallback).join(', ')} instead (run as root or set the paths in dfdaemon.yaml)`;
  return { dirs, fallbacks, note };
}

/** `/etc/dragonfly/dfdaemon.yaml`. */
export function defaultDfdaemonConfigPath(dirs: DragonflyDirs = SYSTEM_DIRS): string {
  return path.join(dirs.configDir, 'dfdaemon.yaml');
}

/** `/etc/dragonfly/dynconfig.yaml`, used when `manager.addr` is not set. */
export function defaultDynconfigPath(dirs: DragonflyDirs = SYSTEM_DIRS): string {
  return path.join(dirs.configDir, 'dynconfig.yaml');
}

/** `/var/run/dragonfly/dfdaemon.sock`. */
export function defaultSocketPath(dirs: DragonflyDirs = SYSTEM_DIRS): string {
  return path.join(dirs.runDir, 'dfdaemon.sock');
}

/** `/var/log/dragonfly/<bin>`. */
export function defaultLogDir(dirs: DragonflyDirs = SYSTEM_DIRS, bin = 'dfdaemon'): string {
  return path.join(dirs.logDir, bin);
}

/** `/usr/local/lib/dragonfly/plugins/<bin>` (`server.pluginDir`). */
export function defaultPluginDir(dirs: DragonflyDirs = SYSTEM_DIRS, bin = 'dfdaemon'): string {
  return path.join(dirs.pluginDir, bin);
}

/** `/var/cache/dragonfly/<bin>` (`server.cacheDir`). */
export function defaultCacheDir(dirs: DragonflyDirs = SYSTEM_DIRS, bin = 'dfdaemon'): string {
  return path.join(dirs.cacheDir, bin);
}
