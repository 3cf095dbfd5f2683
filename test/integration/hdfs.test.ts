// hdfs:// with a delegation token, through dfget and dfdaemons, against a Node WebHDFS server of the documented
// REST API that accepts only that token (the real mini cluster of the e2e test runs without security, so no real
// token can be checked there): the peer's token reaches the NameNode and the DataNode when the seed fetches on its
// behalf, the second peer reads nothing from HDFS, a directory download lists with the token, and a wrong token is
// one PERMISSION_DENIED line that does not show it.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { dfget, metricsText, metricValue, tempDir } from '../helpers/daemon.js';
import { filesUnder, sha256 } from '../helpers/files.js';
import { startSeededCluster, type SeededCluster } from '../helpers/small-cluster.js';
import { WebHdfsServer } from '../helpers/webhdfs-server.js';

const MiB = 1024 * 1024;

describe('hdfs:// with a delegation token against a WebHDFS test server', () => {
  const token = `hdfs-token-${randomBytes(8).toString('hex')}`;
  const server = new WebHdfsServer(token);
  const data = randomBytes(18 * MiB);
  let cluster: SeededCluster;
  const out = tempDir('dft-hdfs-token-');
  const url = (path: string) => `hdfs://${server.namenode}${path}`;

  before(async () => {
    await server.start();
    server.put('/models/llm/weights.bin', data);
    server.put('/models/llm/config/a.json', Buffer.from('{"a":1}'));
    cluster = await startSeededCluster(2);
  });

  after(async () => {
    await cluster.stop();
    await server.stop();
    rmSync(out, { recursive: true, force: true });
  });

  test('the seed fetches with the token the peer sent; the second peer reads nothing from HDFS', async () => {
    const { seed, peers } = cluster;
    const flags = ['--hdfs-delegation-token', token];
    const opens = () => server.requests.filter((r) => r.node === 'datanode').length;
    const first = await dfget(peers[0]!, url('/models/llm/weights.bin'), join(out, 'w0'), flags);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(sha256(readFileSync(join(out, 'w0'))), sha256(data));
    assert.equal(opens(), 5, 'each of the 5 pieces read from the DataNode once');
    assert.ok(server.requests.every((r) => r.delegation === token));

    const second = await dfget(peers[1]!, url('/models/llm/weights.bin'), join(out, 'w1'), flags);
    assert.equal(second.code, 0, second.stderr);
    assert.equal(sha256(readFileSync(join(out, 'w1'))), sha256(data));
    assert.equal(opens(), 5, 'the second peer read nothing from HDFS');
    for (const p of peers) {
      assert.equal(
        metricValue(await metricsText(p), 'dragonfly_client_download_traffic', 'type="BACK_TO_SOURCE"'),
        0,
      );
    }

    const dir = join(out, 'tree');
    mkdirSync(dir);
    const tree = await dfget(peers[0]!, url('/models/llm'), dir, ['-r', ...flags]);
    assert.equal(tree.code, 0, tree.stderr);
    assert.deepEqual(filesUnder(dir), ['config/a.json', 'weights.bin']);
    assert.deepEqual(server.unexpected, []);
    for (const d of [seed, ...peers]) {
      for (const line of d.logs) assert.ok(!line.includes(token), `a log line carries the token: ${line}`);
    }
  });

  test('a wrong or missing token is one PERMISSION_DENIED line naming hdfs and the flag', async () => {
    const wrong = `not-the-token-${randomBytes(4).toString('hex')}`;
    // A file no peer has: a finished task would be served from the peers without asking HDFS (its id does not
    // depend on the token, as upstream's does not).
    server.put('/models/other.bin', randomBytes(1024));
    for (const flags of [['--hdfs-delegation-token', wrong], []]) {
      const r = await dfget(cluster.peers[0]!, url('/models/other.bin'), join(out, 'denied'), flags);
      assert.equal(r.code, 1);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, /permission denied by hdfs \(HTTP 403\): check --hdfs-delegation-token/);
      assert.ok(!r.stderr.includes(wrong));
    }
    for (const line of cluster.peers[0]!.logs) assert.ok(!line.includes(wrong), `token in: ${line}`);
  });
});
