// The download block list of the dynconfig (upstream dynconfig/block_list.rs): a download whose URL matches a
// listed regex, or whose application, tag or priority is listed, is refused with PERMISSION_DENIED ("download
// rejected by blocklist policy"), which the proxy answers with 403. A seed peer reads seedClientConfig, any other
// peer clientConfig. The local dynconfig file is read again on each refresh (it is usually a ConfigMap).

import { existsSync } from 'node:fs';
import { compileRustRegex } from '../config/schema-kit.js';
import { loadLocalDynconfig, type DownloadBlockList } from '../config/dynconfig.js';
import { DfError } from '../core/errors.js';
import type { Download } from '../gen/common.js';

interface Compiled {
  urls: RegExp[];
  applications: Set<string>;
  tags: Set<string>;
  priorities: Set<number>;
}

export function compileBlockList(b: DownloadBlockList): Compiled {
  return {
    urls: b.urls.map((u) => compileRustRegex(u)),
    applications: new Set(b.applications ?? []),
    tags: new Set(b.tags ?? []),
    priorities: new Set(b.priorities ?? []),
  };
}

/** Why `download` is blocked by `b`, or undefined when it is not. */
export function blockedReason(b: Compiled, d: Download): string | undefined {
  const url = b.urls.find((re) => {
    re.lastIndex = 0;
    return re.test(d.url);
  });
  if (url) return `url matches ${url.source}`;
  if (d.application !== undefined && b.applications.has(d.application)) return `application ${d.application}`;
  if (d.tag !== undefined && b.tags.has(d.tag)) return `tag ${d.tag}`;
  if (b.priorities.has(d.priority)) return `priority ${d.priority}`;
  return undefined;
}

export class TaskDownloadBlockList {
  private compiled?: Compiled;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly o: {
      /** The local dynconfig file; nothing is blocked while it does not exist. */
      dynconfigPath?: string;
      seed: boolean;
      refreshIntervalMs: number;
      log: { warn(o: object, m: string): void };
    },
  ) {}

  start(): void {
    this.reload();
    if (this.o.dynconfigPath && this.o.refreshIntervalMs > 0) {
      this.timer = setInterval(() => this.reload(), this.o.refreshIntervalMs);
      this.timer.unref();
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** Throws PERMISSION_DENIED when the block list refuses `download`. */
  check(download: Download): void {
    const reason = this.compiled ? blockedReason(this.compiled, download) : undefined;
    if (reason) {
      throw new DfError('PERMISSION_DENIED', `download rejected by blocklist policy (${reason})`);
    }
  }

  private reload(): void {
    const path = this.o.dynconfigPath;
    if (!path || !existsSync(path)) {
      this.compiled = undefined;
      return;
    }
    try {
      const { config } = loadLocalDynconfig(path);
      const section = this.o.seed ? config.seedClientConfig : config.clientConfig;
      const list = section?.blockList?.task?.download;
      this.compiled = list ? compileBlockList(list) : undefined;
    } catch (e) {
      // Keep the last good list: a half-written ConfigMap must not open what was blocked.
      this.o.log.warn(
        { path, err: (e as Error).message },
        'cannot read the block list; keeping the last one',
      );
    }
  }
}
