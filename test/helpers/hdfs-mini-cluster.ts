// hdfs:// under test on a real HDFS: Hadoop's MiniDFSCluster (one NameNode, one DataNode, WebHDFS on), started
// by test/fixtures/hdfs's launcher as built by scripts/install-hdfs.sh, on a free port, behind a recording proxy.
// The proxy sees the NameNode's requests (GETFILESTATUS, LISTSTATUS, and every piece's OPEN before its redirect
// to the DataNode). Files are written with WebHDFS's two-step CREATE as the user running the test, who is the
// cluster's superuser; dfdaemon's calls carry no user.name, so HDFS treats them as "dr.who" and checks the
// file's permissions: a file only its owner may read is a real 403.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, openSync, closeSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { freePort, stopByPid, waitUntil } from './child-process.js';
import { tempDir } from './daemon.js';
import { RecordingProxy, toolsDir, type StoreRequest } from './object-store.js';

/** The launcher's start (about 5 s here) is JVM start-up plus formatting the NameNode: far below this. */
const START_TIMEOUT_MS = 90_000;

export class HdfsMiniCluster {
  readonly dir = tempDir('dft-hdfs-');
  private proc?: ChildProcess;
  private proxy?: RecordingProxy;
  private port = 0;
  private readonly user = userInfo().username;

  get requests(): StoreRequest[] {
    return this.proxy?.requests ?? [];
  }

  get beforeRequest(): ((r: StoreRequest) => Promise<void> | void) | undefined {
    return this.proxy?.beforeRequest;
  }

  set beforeRequest(hook: ((r: StoreRequest) => Promise<void> | void) | undefined) {
    this.proxy!.beforeRequest = hook;
  }

  /** `127.0.0.1:port` of the proxy in front of the NameNode's WebHDFS, for hdfs:// URLs. */
  get namenode(): string {
    return `127.0.0.1:${this.proxy!.port}`;
  }

  async start(): Promise<void> {
    const build = join(toolsDir(), 'hdfs-minicluster');
    if (!existsSync(join(build, 'stamp')))
      throw new Error(`${build} is missing: run scripts/install-hdfs.sh`);
    this.port = await freePort();
    const log = join(this.dir, 'hdfs.log');
    const fd = openSync(log, 'a');
    try {
      // stdin stays a pipe: the launcher stops when it closes, so a test process that dies takes the cluster along.
      this.proc = spawn(
        'java',
        [
          '-Xmx512m',
          '-XX:+UseSerialGC',
          '-XX:TieredStopAtLevel=1',
          '-Dorg.slf4j.simpleLogger.defaultLogLevel=warn',
          '-cp',
          `${join(build, 'target/classes')}:${join(build, 'target/lib/*')}`,
          'dftest.Main',
          String(this.port),
          join(this.dir, 'data'),
        ],
        { stdio: ['pipe', fd, fd] },
      );
    } finally {
      closeSync(fd);
    }
    await waitUntil(() => readFileSync(log, 'utf8').includes(`webhdfs 127.0.0.1:${this.port}`), {
      proc: this.proc,
      what: 'the hdfs mini cluster',
      until: `serve WebHDFS on port ${this.port}`,
      timeoutMs: START_TIMEOUT_MS,
      detail: () => readFileSync(log, 'utf8').slice(-2000),
    });
    this.proxy = new RecordingProxy(this.port);
    await this.proxy.start();
  }

  async stop(): Promise<void> {
    await this.proxy?.stop();
    this.proc?.stdin?.end();
    await stopByPid(this.proc, 15_000);
    rmSync(this.dir, { recursive: true, force: true });
  }

  /**
   * Writes (or overwrites) a file, parents made as needed, straight to the cluster (not recorded). A large file
   * comes as chunks with its `length`, so it is never whole in memory.
   */
  async put(
    path: string,
    data: Buffer | AsyncIterable<Buffer>,
    length = (data as Buffer).length,
  ): Promise<void> {
    const create = await fetch(this.direct(path, 'CREATE', { overwrite: 'true' }), {
      method: 'PUT',
      redirect: 'manual',
    });
    const location = create.headers.get('location');
    if (create.status !== 307 || location === null) {
      throw new Error(`WebHDFS CREATE ${path} answered ${create.status}: ${await create.text()}`);
    }
    const status = await putToDatanode(location, data, length);
    if (status !== 201) throw new Error(`WebHDFS CREATE ${path} (DataNode) answered ${status}`);
  }

  /** Sets a file's permission bits (octal, e.g. `600`). */
  async chmod(path: string, permission: string): Promise<void> {
    const res = await fetch(this.direct(path, 'SETPERMISSION', { permission }), { method: 'PUT' });
    if (res.status !== 200) throw new Error(`WebHDFS SETPERMISSION ${path} answered ${res.status}`);
  }

  /** Whether a recorded request is the NameNode OPEN of a piece of `path`. */
  isPieceRead(r: StoreRequest, path: string): boolean {
    return (
      r.method === 'GET' &&
      r.path === `/webhdfs/v1${path}` &&
      new URLSearchParams(r.query).get('op') === 'OPEN'
    );
  }

  private direct(path: string, op: string, params: Record<string, string>): string {
    const u = new URL(`http://127.0.0.1:${this.port}/webhdfs/v1${path}`);
    u.searchParams.set('op', op);
    u.searchParams.set('user.name', this.user);
    for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
    return u.href;
  }
}

/**
 * The DataNode's half of CREATE, with node:http: the DataNode sends `100 Continue` before its answer even unasked,
 * which fetch (undici) takes for a bad response.
 */
async function putToDatanode(
  location: string,
  data: Buffer | AsyncIterable<Buffer>,
  length: number,
): Promise<number> {
  const req = request(location, { method: 'PUT', headers: { 'content-length': length } });
  const answered = new Promise<number>((ok, fail) => {
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => ok(res.statusCode ?? 0));
    });
    req.on('error', fail);
  });
  // pipeline waits on the socket's backpressure, and ends the request after the last chunk.
  const [, status] = await Promise.all([pipeline(Buffer.isBuffer(data) ? [data] : data, req), answered]);
  return status;
}
