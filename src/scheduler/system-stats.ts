// Machine statistics for AnnounceHost (upstream `dragonfly-client-util/src/sysinfo/*`). Upstream sleeps 1 s per
// announce to measure CPU and network rates; here each sample measures against the previous one (the first against
// boot, or not at all for rates), so building a Host never waits. Every percentage is clamped to [0, 100]: the Go
// scheduler rejects a Host whose percentages fall outside (spec/scheduler.md §8.1).

import fs from 'node:fs';
import { statfs } from 'node:fs/promises';
import os from 'node:os';
import type { CPU, Disk, Memory, Network } from '../gen/common.js';

export interface SystemStatsOptions {
  /** The advertised IP, to find the network interface (its speed and byte counters). */
  ip: string;
  /** `upload.bandwidthLimit` in bytes/s; caps the announced max bandwidth, as upstream. */
  uploadBandwidthLimit: number;
  idc?: string;
  location?: string;
  /** Root of /proc and /sys, for tests. */
  procRoot?: string;
  sysRoot?: string;
  /** The interface to report, for tests (default: the one that carries `ip`). */
  iface?: string;
}

interface Counters {
  at: number; // ms, monotonic
  cpuBusy: number;
  cpuTotal: number;
  process: NodeJS.CpuUsage;
  rxBytes?: number;
  txBytes?: number;
  readBytes?: number;
  writeBytes?: number;
}

const percent = (part: number, whole: number): number =>
  whole > 0 ? Math.min(100, Math.max(0, (part / whole) * 100)) : 0;

function readText(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

function readNumber(file: string): number | undefined {
  const text = readText(file)?.trim();
  if (text === undefined || !/^\d+$/.test(text)) return undefined;
  return Number(text);
}

/**
 * The max bandwidth (bits/s) announced to the scheduler, which weighs parents by it: min(NIC speed, upload limit)
 * as upstream — but only for a physical NIC. A virtual one (veth, bridge, tun, bond of them: no `device` link in
 * sysfs) reports a made-up speed (a veth says 10 Gbps behind whatever shapes it), so it counts as unknown and the
 * upload limit alone is announced: set `upload.bandwidthLimit` to the real uplink on such hosts.
 */
export function announcedMaxBandwidth(
  sys: string,
  iface: string | undefined,
  uploadLimitBytes: number,
): number {
  const limitBits = uploadLimitBytes * 8;
  if (iface === undefined || !fs.existsSync(`${sys}/class/net/${iface}/device`)) return limitBits;
  const mbps = readNumber(`${sys}/class/net/${iface}/speed`);
  return mbps === undefined ? limitBits : Math.min(mbps * 1_000_000, limitBits);
}

/** The interface that carries `ip`, if any. */
function interfaceOf(ip: string): string | undefined {
  for (const [name, addrs] of Object.entries(os.networkInterfaces())) {
    if (addrs?.some((a) => a.address === ip)) return name;
  }
  return undefined;
}

export class SystemStats {
  readonly #opts: SystemStatsOptions;
  readonly #proc: string;
  readonly #sys: string;
  readonly #iface: string | undefined;
  readonly #maxBandwidth: number;
  readonly #physicalCores: number;
  #last: Counters;

  constructor(options: SystemStatsOptions) {
    this.#opts = options;
    this.#proc = options.procRoot ?? '/proc';
    this.#sys = options.sysRoot ?? '/sys';
    this.#iface = options.iface ?? interfaceOf(options.ip);
    this.#maxBandwidth = announcedMaxBandwidth(this.#sys, this.#iface, options.uploadBandwidthLimit);
    this.#physicalCores = this.#countPhysicalCores();
    this.#last = this.#counters();
  }

  /** Samples everything; `dir` is the storage directory whose filesystem is reported as the disk. */
  async sample(dir: string): Promise<{ cpu: CPU; memory: Memory; network: Network; disk: Disk }> {
    const prev = this.#last;
    const now = this.#counters();
    this.#last = now;
    const seconds = (now.at - prev.at) / 1000;
    const rate = (a?: number, b?: number): number | undefined =>
      a === undefined || b === undefined || seconds <= 0
        ? undefined
        : Math.max(0, Math.round((a - b) / seconds));
    return {
      cpu: this.#cpu(prev, now),
      memory: this.#memory(),
      network: {
        // Upstream leaves the connection counts at 0 as well.
        tcpConnectionCount: 0,
        uploadTcpConnectionCount: 0,
        idc: this.#opts.idc,
        location: this.#opts.location,
        maxRxBandwidth: this.#maxBandwidth,
        rxBandwidth: mapRate(rate(now.rxBytes, prev.rxBytes), 8),
        maxTxBandwidth: this.#maxBandwidth,
        txBandwidth: mapRate(rate(now.txBytes, prev.txBytes), 8),
      },
      disk: {
        ...(await this.#disk(dir)),
        readBandwidth: rate(now.readBytes, prev.readBytes) ?? 0,
        writeBandwidth: rate(now.writeBytes, prev.writeBytes) ?? 0,
      },
    };
  }

  #counters(): Counters {
    let busy = 0;
    let total = 0;
    for (const c of os.cpus()) {
      const t = c.times;
      busy += t.user + t.nice + t.sys + t.irq;
      total += t.user + t.nice + t.sys + t.irq + t.idle;
    }
    const io = readText(`${this.#proc}/self/io`);
    const ioField = (name: string): number | undefined => {
      const m = io === undefined ? null : new RegExp(`^${name}:\\s*(\\d+)$`, 'm').exec(io);
      return m ? Number(m[1]) : undefined;
    };
    const netStat = (name: string): number | undefined =>
      this.#iface === undefined
        ? undefined
        : readNumber(`${this.#sys}/class/net/${this.#iface}/statistics/${name}`);
    return {
      at: performance.now(),
      cpuBusy: busy,
      cpuTotal: total,
      process: process.cpuUsage(),
      rxBytes: netStat('rx_bytes'),
      txBytes: netStat('tx_bytes'),
      readBytes: ioField('read_bytes'),
      writeBytes: ioField('write_bytes'),
    };
  }

  #countPhysicalCores(): number {
    const info = readText(`${this.#proc}/cpuinfo`);
    const logical = os.cpus().length;
    if (info === undefined) return logical;
    const cores = new Set<string>();
    for (const block of info.split(/\n\s*\n/)) {
      const phys = /^physical id\s*:\s*(\d+)/m.exec(block)?.[1];
      const core = /^core id\s*:\s*(\d+)/m.exec(block)?.[1];
      if (phys !== undefined && core !== undefined) cores.add(`${phys}/${core}`);
    }
    return cores.size > 0 ? cores.size : logical;
  }

  #cpu(prev: Counters, now: Counters): CPU {
    const logical = os.cpus().length;
    // Since boot on the first sample (prev was taken at construction, usually moments earlier, so fall back).
    const spanTotal = now.cpuTotal - prev.cpuTotal;
    const used =
      spanTotal > 0 ? percent(now.cpuBusy - prev.cpuBusy, spanTotal) : percent(now.cpuBusy, now.cpuTotal);
    const elapsedMicros = (now.at - prev.at) * 1000;
    const processMicros = now.process.user - prev.process.user + (now.process.system - prev.process.system);
    return {
      logicalCount: logical,
      physicalCount: this.#physicalCores,
      percent: used,
      // Share of the whole machine, so it stays within [0, 100] like `percent`.
      processPercent: elapsedMicros > 0 ? percent(processMicros, elapsedMicros * Math.max(1, logical)) : 0,
    };
  }

  #memory(): Memory {
    const info = readText(`${this.#proc}/meminfo`);
    const kib = (name: string): number | undefined => {
      const m = info === undefined ? null : new RegExp(`^${name}:\\s*(\\d+) kB$`, 'm').exec(info);
      return m ? Number(m[1]) * 1024 : undefined;
    };
    const total = kib('MemTotal') ?? os.totalmem();
    const available = kib('MemAvailable') ?? os.freemem();
    const free = kib('MemFree') ?? os.freemem();
    const used = Math.max(0, total - available);
    return {
      total,
      available,
      free,
      used,
      usedPercent: percent(used, total),
      processUsedPercent: percent(process.memoryUsage.rss(), total),
    };
  }

  async #disk(dir: string): Promise<Omit<Disk, 'readBandwidth' | 'writeBandwidth'>> {
    try {
      const s = await statfs(dir);
      const total = s.blocks * s.bsize;
      const free = s.bavail * s.bsize;
      const used = Math.max(0, total - free);
      const inodesUsed = Math.max(0, s.files - s.ffree);
      return {
        total,
        free,
        used,
        usedPercent: percent(used, total),
        inodesTotal: s.files,
        inodesFree: s.ffree,
        inodesUsed,
        inodesUsedPercent: percent(inodesUsed, s.files),
      };
    } catch {
      return {
        total: 0,
        free: 0,
        used: 0,
        usedPercent: 0,
        inodesTotal: 0,
        inodesFree: 0,
        inodesUsed: 0,
        inodesUsedPercent: 0,
      };
    }
  }
}

function mapRate(bytesPerSecond: number | undefined, factor: number): number | undefined {
  return bytesPerSecond === undefined ? undefined : bytesPerSecond * factor;
}
