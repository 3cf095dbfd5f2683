// hdfs:// URLs as upstream's hdfs backend takes them (`hdfs://namenode[:port]/path`, NameNode port 9870 when none
// is given, `hdfs:/host/...` refused), the WebHDFS URLs made from them, and the paths no WebHDFS call may carry.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEFAULT_NAMENODE_PORT,
  describeHdfsPath,
  entryUrl,
  parseHdfsUrl,
  webhdfsUrl,
} from '../../../src/backend/hdfs-url.js';

describe('parseHdfsUrl', () => {
  it('takes the NameNode from the host, 9870 when no port is given, and the decoded path', () => {
    assert.equal(DEFAULT_NAMENODE_PORT, 9870);
    assert.deepEqual(parseHdfsUrl('hdfs://nn/data/a%20b.bin'), {
      namenode: 'nn:9870',
      authority: 'nn',
      path: '/data/a b.bin',
      isDir: false,
    });
    assert.deepEqual(parseHdfsUrl('hdfs://127.0.0.1:50070/data/'), {
      namenode: '127.0.0.1:50070',
      authority: '127.0.0.1:50070',
      path: '/data/',
      isDir: true,
    });
    assert.equal(parseHdfsUrl('hdfs://nn').path, '/');
    assert.equal(parseHdfsUrl('hdfs://[::1]:8020/x').namenode, '[::1]:8020');
  });

  it('refuses a URL without a NameNode, with user information, a bad encoding or a dot segment', () => {
    const refused: [string, RegExp][] = [
      ['hdfs:/127.0.0.1:9870/file', /names no NameNode: expected hdfs:\/\/NAMENODE\[:PORT\]\/PATH/],
      ['hdfs:///file', /names no NameNode/],
      [
        'hdfs://alice:pw@nn/file',
        /^hdfs URL hdfs:\/\/nn\/file carries user information: use --hdfs-delegation-token$/,
      ],
      ['hdfs://nn/a%ZZ', /invalid percent-encoding/],
      ['hdfs://nn/a%2F..%2Fetc/passwd', /has a "\." or "\.\." segment/],
      ['s3://bucket/key', /"s3" is not the hdfs scheme/],
      ['not a url', /invalid hdfs URL "not a url"/],
    ];
    for (const [url, message] of refused) {
      assert.throws(
        () => parseHdfsUrl(url),
        (e: Error & { code?: string }) => e.code === 'INVALID_ARGUMENT' && message.test(e.message),
        url,
      );
    }
  });
});

describe('webhdfsUrl and entryUrl', () => {
  it('puts the path under /webhdfs/v1, encoded, with the op, parameters and delegation token', () => {
    const file = parseHdfsUrl('hdfs://nn:9870/data/a%20b%3F.bin');
    assert.equal(
      webhdfsUrl(file, 'OPEN', { offset: 4194304, length: 1024 }, 'tok+/='),
      'http://nn:9870/webhdfs/v1/data/a%20b%3F.bin?op=OPEN&offset=4194304&length=1024&delegation=tok%2B%2F%3D',
    );
    // A directory's trailing slash is not part of its name; the root keeps its one slash.
    assert.equal(
      webhdfsUrl(parseHdfsUrl('hdfs://nn/data/'), 'LISTSTATUS'),
      'http://nn:9870/webhdfs/v1/data?op=LISTSTATUS',
    );
    assert.equal(
      webhdfsUrl(parseHdfsUrl('hdfs://nn/'), 'LISTSTATUS'),
      'http://nn:9870/webhdfs/v1/?op=LISTSTATUS',
    );
  });

  it('names listed entries in the URL form the user wrote, and messages without a query', () => {
    const dir = parseHdfsUrl('hdfs://nn/data/');
    assert.equal(entryUrl(dir, '/data/sub dir', true), 'hdfs://nn/data/sub%20dir/');
    assert.equal(entryUrl(dir, '/data/x#1.bin', false), 'hdfs://nn/data/x%231.bin');
    assert.equal(
      describeHdfsPath(parseHdfsUrl('hdfs://nn:9870/a.bin?delegation=secret')),
      'hdfs://nn:9870/a.bin',
    );
  });
});
