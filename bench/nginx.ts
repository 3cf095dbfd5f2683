// An nginx origin for the benchmark: its own nginx.conf, pid, logs and temp paths inside `dir`, serving `root`
// on a free loopback port with sendfile on. Stopped by the PID of its master process.

import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, httpStatus, stopByPid, waitUntil } from '../test/helpers/child-process.js';

export const NGINX = '/usr/sbin/nginx';

export interface NginxHandle {
  port: number;
  pid: number;
  baseUrl: string;
  stop(): Promise<void>;
}

function config(dir: string, root: string, port: number): string {
  const t = (name: string) => join(dir, 'temp', name);
  // As root, workers would otherwise switch to `nobody`, who cannot read a 0700 temp dir.
  const user = process.getuid?.() === 0 ? 'user root;\n' : '';
  return `${user}daemon off;
master_process on;
worker_processes auto;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')} warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${t('body')};
  proxy_temp_path ${t('proxy')};
  fastcgi_temp_path ${t('fastcgi')};
  uwsgi_temp_path ${t('uwsgi')};
  scgi_temp_path ${t('scgi')};
  default_type application/octet-stream;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  keepalive_timeout 120s;
  server {
    listen 127.0.0.1:${port};
    root ${root};
  }
}
`;
}

function errorLog(dir: string): string {
  try {
    return readFileSync(join(dir, 'error.log'), 'utf8');
  } catch {
    return '';
  }
}

/** Starts nginx and waits (up to 10 s) until it answers. */
export async function startNginx(dir: string, root: string): Promise<NginxHandle> {
  mkdirSync(join(dir, 'temp'), { recursive: true });
  const port = await freePort();
  const conf = join(dir, 'nginx.conf');
  writeFileSync(conf, config(dir, root, port));
  const proc = spawn(NGINX, ['-c', conf, '-p', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d.slice(0, 4096)));
  const stop = () => stopByPid(proc, 5000);
  const baseUrl = `http://127.0.0.1:${port}`;
  try {
    await waitUntil(async () => (await httpStatus(`${baseUrl}/`)) !== undefined, {
      proc,
      what: 'nginx',
      until: `answer on port ${port}`,
      timeoutMs: 10_000,
      detail: () => `${stderr}${errorLog(dir)}`,
    });
  } catch (e) {
    await stop();
    throw e;
  }
  return { port, pid: proc.pid!, baseUrl, stop };
}
