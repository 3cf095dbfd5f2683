// A real nginx as an origin for e2e tests: its own nginx.conf in a temp dir (pid, logs and every temp path
// inside it), `daemon off;` so the spawned process is the master and is stopped by its PID, `listen` on a free
// loopback port, `sendfile on`, serving a temp root of generated files. The access log records each request's
// Range header so tests can see how the daemon fetched.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { startOnFreePort, stopByPid, waitUntil } from './child-process.js';
import { tempDir } from './daemon.js';

export const NGINX_CANDIDATES = ['/usr/sbin/nginx', '/usr/bin/nginx', '/usr/local/sbin/nginx'];

/** The nginx binary, or undefined when nginx is not installed. */
export function findNginx(): string | undefined {
  for (const p of NGINX_CANDIDATES) if (existsSync(p)) return p;
  const r = spawnSync('sh', ['-c', 'command -v nginx'], { encoding: 'utf8' });
  const p = r.stdout?.trim();
  return r.status === 0 && p ? p : undefined;
}

/** Whether something accepts TCP connections on the loopback `port`. */
function listening(port: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export interface AccessLogEntry {
  request: string;
  status: number;
  range: string;
}

export class Nginx {
  readonly dir: string;
  readonly root: string;
  readonly conf: string;
  readonly accessLog: string;
  readonly errorLog: string;
  readonly pidFile: string;
  port = 0;
  private proc?: ChildProcess;
  private stderr = '';
  /** With `tls`, nginx serves HTTPS with this certificate (PEM files) for `localhost`. */
  private tls?: { certPath: string; keyPath: string };

  constructor(
    readonly binary: string,
    options: { tls?: { certPath: string; keyPath: string } } = {},
  ) {
    this.tls = options.tls;
    this.dir = tempDir('dft-nginx-');
    this.root = join(this.dir, 'www');
    this.conf = join(this.dir, 'nginx.conf');
    this.accessLog = join(this.dir, 'access.log');
    this.errorLog = join(this.dir, 'error.log');
    this.pidFile = join(this.dir, 'nginx.pid');
    mkdirSync(this.root);
  }

  get url(): string {
    return this.tls ? `https://localhost:${this.port}` : `http://127.0.0.1:${this.port}`;
  }

  /** Writes `size` random bytes to `<root>/<name>` in 1 MiB chunks; returns the sha256 hex of the content. */
  addFile(name: string, size: number): { url: string; sha256: string; path: string } {
    const path = join(this.root, name);
    const fd = openSync(path, 'w', 0o644);
    const h = createHash('sha256');
    try {
      for (let off = 0; off < size; off += 1 << 20) {
        const chunk = randomBytes(Math.min(1 << 20, size - off));
        h.update(chunk);
        writeSync(fd, chunk);
      }
    } finally {
      closeSync(fd);
    }
    return { url: `${this.url}/${name}`, sha256: h.digest('hex'), path };
  }

  private config(): string {
    const d = this.dir;
    // As root the workers would switch to `nobody`, who cannot enter a 0700 temp dir: keep them as root.
    const user = process.getuid?.() === 0 ? 'user root root;\n' : '';
    return `${user}daemon off;
master_process on;
worker_processes 1;
pid ${this.pidFile};
error_log ${this.errorLog} info;
events { worker_connections 256; }
http {
  log_format ranges '$request_method $uri $status range="$http_range"';
  access_log ${this.accessLog} ranges;
  client_body_temp_path ${join(d, 'client_body')};
  proxy_temp_path ${join(d, 'proxy')};
  fastcgi_temp_path ${join(d, 'fastcgi')};
  uwsgi_temp_path ${join(d, 'uwsgi')};
  scgi_temp_path ${join(d, 'scgi')};
  default_type application/octet-stream;
  sendfile on;
  keepalive_timeout 30s;
  server {
    listen 127.0.0.1:${this.port}${this.tls ? ' ssl' : ''};
    server_name localhost;${
      this.tls
        ? `\n    ssl_certificate ${this.tls.certPath};\n    ssl_certificate_key ${this.tls.keyPath};`
        : ''
    }
    root ${this.root};
    location / { }
  }
}
`;
  }

  /** Starts nginx on a free port and waits until it accepts connections. */
  async start(): Promise<void> {
    await startOnFreePort((port) => this.spawnAndWait(port), {
      attempts: 3,
      undo: () => this.stop({ keepDir: true }),
    });
  }

  private async spawnAndWait(port: number): Promise<void> {
    this.port = port;
    writeFileSync(this.conf, this.config());
    this.stderr = '';
    // -e: the error log before the config is read (nginx ≥ 1.19.5); -p: prefix for anything left relative.
    const proc = spawn(this.binary, ['-p', this.dir, '-e', this.errorLog, '-c', this.conf], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.proc = proc;
    proc.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    await waitUntil(() => listening(this.port), {
      proc,
      what: 'nginx',
      until: `listen on ${this.port}`,
      timeoutMs: 10_000,
      detail: () => `${this.stderr}${this.errors()}`,
    });
  }

  private errors(): string {
    return existsSync(this.errorLog) ? readFileSync(this.errorLog, 'utf8') : '';
  }

  /** The access log, parsed. */
  accessEntries(): AccessLogEntry[] {
    if (!existsSync(this.accessLog)) return [];
    const out: AccessLogEntry[] = [];
    for (const line of readFileSync(this.accessLog, 'utf8').split('\n')) {
      const m = /^(\S+ \S+) (\d+) range="(.*)"$/.exec(line);
      if (m) out.push({ request: m[1]!, status: Number(m[2]), range: m[3] === '-' ? '' : m[3]! });
    }
    return out;
  }

  /** Stops nginx by the PID of the process we spawned (SIGTERM: the master stops its workers; SIGKILL after 5 s); removes the dir. */
  async stop(opts: { keepDir?: boolean } = {}): Promise<void> {
    await stopByPid(this.proc, 5000);
    this.proc = undefined;
    if (!opts.keepDir) rmSync(this.dir, { recursive: true, force: true });
  }
}
