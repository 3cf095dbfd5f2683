// The `common.v2.Host` this peer announces (upstream `announcer/mod.rs` `make_announce_host_request`).
// `port` and `download_port` are both the upload gRPC port — the port other peers and the scheduler reach us on
// for SyncPieces, seed triggers and persistent-cache RPCs — never the Vortex port (spec/scheduler.md §8.2).
// The Go scheduler validates the Host: hostname non-empty, ip valid, ports in [1024, 65535) (§8.1).

import fs from 'node:fs';
import os from 'node:os';
import type { DfdaemonConfig } from '../config/dfdaemon.js';
import { DfError } from '../core/errors.js';
import { hostId } from '../core/ids.js';
import type { Host } from '../gen/common.js';
import { SystemStats } from './system-stats.js';

/** `common.v2.HostType` values (upstream `HostType`). Only SUPER hosts act as seed peers for the scheduler. */
export const HostType = { NORMAL: 0, SUPER: 1, STRONG: 2, WEAK: 3 } as const;

export interface HostInfoOptions {
  config: DfdaemonConfig;
  /** The bound upload gRPC port (differs from config.upload.server.port when that is 0). */
  uploadPort: number;
  /** The bound proxy port; default config.proxy.server.port. */
  proxyPort?: number;
  /** This build's version, announced as `build.git_version`. */
  version: string;
  gitCommit?: string;
  /** For tests; default: a SystemStats for config.host.ip. */
  stats?: SystemStats;
}

/** Rust's `std::env::consts::OS` / `FAMILY` for the platforms Node reports. */
function rustOs(): { os: string; family: string } {
  const names: Partial<Record<NodeJS.Platform, string>> = {
    darwin: 'macos',
    win32: 'windows',
    sunos: 'solaris',
  };
  return {
    os: names[process.platform] ?? process.platform,
    family: process.platform === 'win32' ? 'windows' : 'unix',
  };
}

/** sysinfo's `System::os_version()` on Linux: VERSION_ID of /etc/os-release ("12", "22.04"). */
function osVersion(): string {
  try {
    const text = fs.readFileSync('/etc/os-release', 'utf8');
    return /^VERSION_ID="?([^"\n]*)"?$/m.exec(text)?.[1] ?? '';
  } catch {
    return os.release();
  }
}

/** Upstream's INSTANCE_NAME: "{POD_NAMESPACE}-{POD_NAME}" inside Kubernetes, else the OS hostname. */
function instanceName(): string {
  const ns = process.env['POD_NAMESPACE'];
  const pod = process.env['POD_NAME'];
  return ns && pod ? `${ns}-${pod}` : os.hostname();
}

export class HostInfo {
  /** `{ip}-{hostname}`, `-seed` appended for a seed peer. */
  readonly id: string;
  readonly #config: DfdaemonConfig;
  readonly #ip: string;
  readonly #uploadPort: number;
  readonly #proxyPort: number;
  readonly #version: string;
  readonly #gitCommit: string | undefined;
  readonly #stats: SystemStats;
  readonly #static: Pick<
    Host,
    'os' | 'platform' | 'platformFamily' | 'platformVersion' | 'kernelVersion' | 'name'
  >;

  constructor(options: HostInfoOptions) {
    const { config } = options;
    const ip = config.host.ip;
    if (ip === undefined || ip === '') {
      throw new DfError('INVALID_CONFIG', 'host.ip: no IP address to announce to the scheduler; set host.ip');
    }
    if (config.host.hostname === '') {
      throw new DfError(
        'INVALID_CONFIG',
        'host.hostname: must not be empty (the scheduler rejects the host)',
      );
    }
    this.#config = config;
    this.#ip = ip;
    this.#uploadPort = options.uploadPort;
    this.#proxyPort = options.proxyPort ?? config.proxy.server.port;
    this.#version = options.version;
    this.#gitCommit = options.gitCommit;
    this.id = hostId(ip, config.host.hostname, config.seedPeer.enable);
    this.#stats =
      options.stats ??
      new SystemStats({
        ip,
        uploadBandwidthLimit: config.upload.bandwidthLimit,
        idc: config.host.idc,
        location: config.host.location,
      });
    const { os: osName, family } = rustOs();
    this.#static = {
      os: osName,
      platform: osName, // upstream sends env::consts::OS here too
      platformFamily: family,
      platformVersion: osVersion(),
      kernelVersion: os.release(),
      name: instanceName(),
    };
  }

  /** The host type: SUPER or NORMAL as `seedPeer.type` says for a seed peer, NORMAL otherwise. */
  get type(): number {
    const seed = this.#config.seedPeer;
    return seed.enable && seed.type === 'super' ? HostType.SUPER : HostType.NORMAL;
  }

  /** A fresh Host with current statistics. */
  async build(): Promise<Host> {
    const config = this.#config;
    const { cpu, memory, network, disk } = await this.#stats.sample(config.storage.dir);
    return {
      id: this.id,
      type: this.type,
      hostname: config.host.hostname,
      ip: this.#ip,
      port: this.#uploadPort,
      downloadPort: this.#uploadPort,
      ...this.#static,
      cpu,
      memory,
      network,
      disk,
      build: {
        gitVersion: this.#version,
        gitCommit: this.#gitCommit,
        platform: `${process.platform}/${process.arch} node ${process.version}`,
      },
      schedulerClusterId: config.host.schedulerClusterID ?? 0,
      disableShared: config.upload.disableShared,
      proxyPort: this.#proxyPort,
    };
  }
}
