// A WebHDFS NameNode and DataNode as Hadoop's WebHDFS REST API documents them, on 127.0.0.1, for the tests that
// need what the real mini cluster (test/fixtures/hdfs, e2e) cannot give: a NameNode that checks a delegation
// token, and answers no real one makes (not JSON, a hostile listing). The NameNode answers GETFILESTATUS and
// LISTSTATUS with FileStatus JSON and OPEN with a 307 to the DataNode (another port), which sends `length` bytes
// from `offset` with 200, as Hadoop's do. Anything else is a 400 and is recorded as unexpected. Every request is
// recorded; `beforeRequest` may hold one back (or change a file first); `answer` may replace an answer.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface WebHdfsRequest {
  node: 'namenode' | 'datanode';
  op: string;
  /** The decoded path after /webhdfs/v1. */
  path: string;
  offset?: number;
  length?: number;
  delegation?: string;
}

interface StoredFile {
  data: Buffer;
  modificationTime: number;
  fileId: number;
}

const PREFIX = '/webhdfs/v1';

export class WebHdfsServer {
  readonly requests: WebHdfsRequest[] = [];
  readonly unexpected: string[] = [];
  beforeRequest?: (r: WebHdfsRequest) => Promise<void> | void;
  /** Answers a request instead of the server when it returns true. */
  answer?: (r: WebHdfsRequest, res: ServerResponse) => boolean;
  private readonly files = new Map<string, StoredFile>();
  private readonly namenodeServer: Server;
  private readonly datanodeServer: Server;
  private datanodePort = 0;
  private nextFileId = 16386;
  private lastModified = 0;
  namenodePort = 0;

  /** `token`: the only delegation token accepted; undefined accepts requests without one (security off). */
  constructor(readonly token?: string) {
    this.namenodeServer = createServer((req, res) => void this.handle('namenode', req, res));
    this.datanodeServer = createServer((req, res) => void this.handle('datanode', req, res));
  }

  /** `127.0.0.1:port` of the NameNode, for hdfs:// URLs. */
  get namenode(): string {
    return `127.0.0.1:${this.namenodePort}`;
  }

  async start(): Promise<void> {
    this.namenodePort = await listen(this.namenodeServer);
    this.datanodePort = await listen(this.datanodeServer);
  }

  async stop(): Promise<void> {
    for (const s of [this.namenodeServer, this.datanodeServer]) {
      s.closeAllConnections();
      await new Promise<void>((ok) => s.close(() => ok()));
    }
  }

  /** Writes a file as HDFS does on create with overwrite: a new inode, a later modification time. */
  put(path: string, data: Buffer): void {
    // Two puts within one millisecond must still differ, as two HDFS writes would by inode.
    this.lastModified = Math.max(Date.now(), this.lastModified + 1);
    this.files.set(path, { data, modificationTime: this.lastModified, fileId: this.nextFileId++ });
  }

  delete(path: string): void {
    this.files.delete(path);
  }

  private async handle(node: WebHdfsRequest['node'], req: IncomingMessage, res: ServerResponse) {
    const url = new URL(req.url ?? '/', 'http://x');
    const r: WebHdfsRequest = {
      node,
      op: url.searchParams.get('op') ?? '',
      path: url.pathname.startsWith(PREFIX) ? decodeURIComponent(url.pathname.slice(PREFIX.length)) : '',
      offset: numberParam(url, 'offset'),
      length: numberParam(url, 'length'),
      delegation: url.searchParams.get('delegation') ?? undefined,
    };
    this.requests.push(r);
    await this.beforeRequest?.(r);
    if (this.answer?.(r, res)) return;
    if (req.method !== 'GET' || !url.pathname.startsWith(PREFIX)) {
      this.unexpected.push(`${req.method} ${req.url}`);
      return remoteException(
        res,
        400,
        'IllegalArgumentException',
        `unexpected ${req.method} ${url.pathname}`,
      );
    }
    if (this.token !== undefined && r.delegation !== this.token) {
      // What a secure NameNode answers a missing or unknown token with.
      return remoteException(res, 403, 'SecurityException', 'Failed to obtain user group information');
    }
    if (node === 'datanode') return this.serveDatanode(r, res);
    if (r.op === 'GETFILESTATUS') return this.getFileStatus(r, res);
    if (r.op === 'LISTSTATUS') return this.listStatus(r, res);
    if (r.op === 'OPEN') return this.open(r, url, res);
    this.unexpected.push(`${req.method} ${req.url}`);
    return remoteException(res, 400, 'IllegalArgumentException', `Invalid value for webhdfs parameter "op"`);
  }

  private getFileStatus(r: WebHdfsRequest, res: ServerResponse): void {
    const status = this.statusOf(r.path, '');
    if (status === undefined) return notFound(res, r.path);
    json(res, { FileStatus: status });
  }

  private listStatus(r: WebHdfsRequest, res: ServerResponse): void {
    const file = this.files.get(r.path);
    if (file !== undefined) return json(res, { FileStatuses: { FileStatus: [this.statusOf(r.path, '')] } });
    const dir = r.path === '/' ? '/' : `${r.path}/`;
    const names = new Set<string>();
    for (const path of this.files.keys()) {
      if (path.startsWith(dir)) names.add(path.slice(dir.length).split('/')[0]!);
    }
    if (names.size === 0 && r.path !== '/') return notFound(res, r.path);
    const statuses = [...names].sort().map((name) => this.statusOf(dir + name, name));
    json(res, { FileStatuses: { FileStatus: statuses } });
  }

  private open(r: WebHdfsRequest, url: URL, res: ServerResponse): void {
    if (!this.files.has(r.path)) return notFound(res, r.path);
    const location = new URL(`http://127.0.0.1:${this.datanodePort}${url.pathname}${url.search}`);
    location.searchParams.set('namenoderpcaddress', this.namenode);
    res.writeHead(307, { location: location.href, 'content-length': '0' });
    res.end();
  }

  private serveDatanode(r: WebHdfsRequest, res: ServerResponse): void {
    const file = this.files.get(r.path);
    if (r.op !== 'OPEN' || file === undefined) return notFound(res, r.path);
    const start = Math.min(r.offset ?? 0, file.data.length);
    const end = r.length === undefined ? file.data.length : Math.min(start + r.length, file.data.length);
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': end - start });
    res.end(file.data.subarray(start, end));
  }

  private statusOf(path: string, pathSuffix: string): object | undefined {
    const file = this.files.get(path);
    const common = { accessTime: 0, group: 'supergroup', owner: 'hdfs', pathSuffix, replication: 1 };
    if (file !== undefined) {
      return {
        ...common,
        blockSize: 134217728,
        childrenNum: 0,
        fileId: file.fileId,
        length: file.data.length,
        modificationTime: file.modificationTime,
        permission: '644',
        type: 'FILE',
      };
    }
    const dir = path === '/' ? '/' : `${path}/`;
    if (path !== '/' && ![...this.files.keys()].some((p) => p.startsWith(dir))) return undefined;
    return { ...common, blockSize: 0, length: 0, modificationTime: 0, permission: '755', type: 'DIRECTORY' };
  }
}

function numberParam(url: URL, name: string): number | undefined {
  const v = url.searchParams.get(name);
  return v === null ? undefined : Number(v);
}

function json(res: ServerResponse, body: object): void {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

function notFound(res: ServerResponse, path: string): void {
  remoteException(res, 404, 'FileNotFoundException', `File does not exist: ${path}`);
}

/** WebHDFS's error body (the "RemoteException JSON Schema" of its documentation). */
function remoteException(res: ServerResponse, status: number, exception: string, message: string): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(
    JSON.stringify({ RemoteException: { exception, javaClassName: `java.lang.${exception}`, message } }),
  );
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  return (server.address() as AddressInfo).port;
}
