// hdfs:// against a real HDFS: Hadoop's MiniDFSCluster with WebHDFS (scripts/install-hdfs.sh builds the launcher in
// test/fixtures/hdfs), through the cases every object storage scheme passes (test/helpers/object-store-cases.ts):
// a multi-piece file byte-exact, P2P (the second peer takes it from peers: the NameNode's OPENs are counted), a
// missing file, a file the caller may not read (a real 403), a file rewritten between pieces, dfget -r with
// --include-files, and ListTaskEntries. Every dfget carries a delegation token: this insecure cluster ignores it,
// and no log line may show it. (A NameNode that checks tokens is test/unit/backend/hdfs.test.ts's and
// test/integration/hdfs.test.ts's Node WebHDFS server.)

import { sourceCases } from '../helpers/object-store-cases.js';
import { HdfsMiniCluster } from '../helpers/hdfs-mini-cluster.js';

const TOKEN = 'dftest-hdfs-delegation-token-7f3e';
const FLAGS = ['--hdfs-delegation-token', TOKEN];

const hdfs = new HdfsMiniCluster();
const path = (key: string) => `/${key}`;

sourceCases({
  title: 'hdfs:// over WebHDFS against a Hadoop MiniDFSCluster',
  scheme: 'hdfs',
  get requests() {
    return hdfs.requests;
  },
  get beforeRequest() {
    return hdfs.beforeRequest;
  },
  set beforeRequest(hook) {
    hdfs.beforeRequest = hook;
  },
  start: () => hdfs.start(),
  stop: () => hdfs.stop(),
  url: (key) => `hdfs://${hdfs.namenode}${path(key)}`,
  put: (key, data) => hdfs.put(path(key), data),
  pieceReadStart: (r, key) => {
    if (!hdfs.isPieceRead(r, path(key))) return undefined;
    const query = new URLSearchParams(r.query);
    // A piece read counts only with the token the peer's request carried (through the seed): without it, the
    // cases' count of piece reads comes out short.
    if (query.get('delegation') !== TOKEN) return undefined;
    return Number(query.get('offset') ?? 0);
  },
  flags: () => FLAGS,
  secrets: [TOKEN],
  notFound: (url) =>
    new RegExp(`${url.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: NOT_FOUND: no such file or directory in hdfs`),
  denied: async (key) => {
    await hdfs.put(path(key), Buffer.alloc(1024, 7));
    await hdfs.chmod(path(key), '600');
    return {
      flags: FLAGS,
      secrets: [TOKEN],
      message: /permission denied by hdfs \(HTTP 403\): check --hdfs-delegation-token/,
    };
  },
  listFields: () => ({ hdfs: { delegationToken: TOKEN } }),
  listsDirectories: true,
});
