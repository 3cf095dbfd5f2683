// Redis and MariaDB for the Go manager (its database and cache) and the Go scheduler (its job queue), each a
// process of our own: data in a temp dir, listening on a free loopback port, never the system's service, and
// ended by the PID we spawned.

import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { spawnLogged, startOnFreePort, stopByPid, waitUntil } from '../child-process.js';
import { tempDir } from '../daemon.js';
import { mustRun } from '../exec.js';
import { upstreamPath } from './programs.js';

/** Whether something accepts TCP connections on 127.0.0.1:`port`. */
export function listening(port: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** The last `n` characters of a log file, for errors. */
export function tail(path: string, n = 3000): string {
  return existsSync(path) ? readFileSync(path, 'utf8').slice(-n) : '';
}

export class Redis {
  readonly dir = tempDir('dft-redis-');
  readonly log = join(this.dir, 'redis.log');
  port = 0;
  private proc?: ChildProcess;

  get addr(): string {
    return `127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const bin = upstreamPath('redis-server');
    await startOnFreePort(
      async (port) => {
        this.port = port;
        // No persistence: the data lives as long as the test.
        this.proc = spawnLogged(
          bin,
          [
            '--port',
            String(port),
            '--bind',
            '127.0.0.1',
            '--save',
            '',
            '--appendonly',
            'no',
            '--dir',
            this.dir,
          ],
          this.log,
        );
        await waitUntil(() => listening(port), {
          proc: this.proc,
          what: 'redis-server',
          until: `listen on ${port}`,
          timeoutMs: 10_000,
          detail: () => tail(this.log),
        });
      },
      { attempts: 3, undo: () => stopByPid(this.proc, 5000) },
    );
  }

  async stop(): Promise<void> {
    await stopByPid(this.proc, 5000);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface MariaDbAccount {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
}

export class MariaDb {
  readonly dir = tempDir('dft-mariadb-');
  readonly dataDir = join(this.dir, 'data');
  readonly socket = join(this.dir, 'mysqld.sock');
  readonly log = join(this.dir, 'mysqld.err');
  port = 0;
  private proc?: ChildProcess;

  /** The account the manager uses: its own user on its own database. */
  readonly account: Omit<MariaDbAccount, 'port'> = {
    host: '127.0.0.1',
    user: 'dragonfly',
    password: 'dragonfly',
    database: 'manager',
  };

  async start(): Promise<MariaDbAccount> {
    // `normal` root authentication: root with no password over the socket, whoever runs the test.
    await mustRun(
      upstreamPath('mariadb-install-db'),
      [
        '--no-defaults',
        `--datadir=${this.dataDir}`,
        ...(process.getuid?.() === 0 ? ['--user=root'] : []),
        '--auth-root-authentication-method=normal',
        '--skip-test-db',
      ],
      { timeoutMs: 120_000 },
    );
    const bin = upstreamPath('mariadbd');
    await startOnFreePort(
      async (port) => {
        this.port = port;
        this.proc = spawnLogged(
          bin,
          [
            '--no-defaults',
            `--datadir=${this.dataDir}`,
            `--socket=${this.socket}`,
            `--port=${port}`,
            '--bind-address=127.0.0.1',
            `--pid-file=${join(this.dir, 'mysqld.pid')}`,
            `--log-error=${this.log}`,
            '--skip-name-resolve',
            // Small: the manager's tables are tiny and the machine is shared.
            '--innodb-buffer-pool-size=32M',
            '--performance-schema=OFF',
            ...(process.getuid?.() === 0 ? ['--user=root'] : []),
          ],
          join(this.dir, 'mysqld.out'),
        );
        await waitUntil(
          async () => (await listening(port)) && tail(this.log).includes('ready for connections'),
          {
            proc: this.proc,
            what: 'mariadbd',
            until: `accept connections on ${port}`,
            timeoutMs: 60_000,
            detail: () => tail(this.log),
          },
        );
      },
      {
        attempts: 3,
        undo: () => stopByPid(this.proc, 10_000),
        // Only a port taken between our probe and its bind is worth another try.
        retry: () => /Address already in use|Do you already have another/i.test(tail(this.log)),
      },
    );
    const a = this.account;
    await this.sql(
      `CREATE DATABASE ${a.database} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;` +
        `CREATE USER '${a.user}'@'%' IDENTIFIED BY '${a.password}';` +
        `GRANT ALL PRIVILEGES ON ${a.database}.* TO '${a.user}'@'%';`,
    );
    return { ...a, port: this.port };
  }

  /** Runs SQL as root over the socket; resolves with the tab-separated output. */
  async sql(statements: string, database?: string): Promise<string> {
    const r = await mustRun(
      upstreamPath('mariadb'),
      [
        '--no-defaults',
        '-uroot',
        `--socket=${this.socket}`,
        '--batch',
        '--skip-column-names',
        ...(database ? [database] : []),
        '-e',
        statements,
      ],
      { timeoutMs: 30_000 },
    );
    return r.stdout;
  }

  async stop(): Promise<void> {
    await stopByPid(this.proc, 20_000);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
