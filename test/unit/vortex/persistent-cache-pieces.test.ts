// The Vortex server's persistent-cache frames (tag 4 DownloadPersistentCachePiece → tag 5 content) against the
// real TCP client: a hard-linked import's piece is served with the digest of its bytes (computed on first serve),
// a standard-task request for the same id finds nothing, and once the imported file is edited no piece of it is
// served (an Error packet, never bytes that disagree with the digest).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pieceDigest } from '../../../src/core/digest.js';
import { DfError } from '../../../src/core/errors.js';
import { PersistentCacheStore } from '../../../src/storage/persistent-cache-store.js';
import { Storage } from '../../../src/storage/storage.js';
import { TcpPieceTransport } from '../../../src/vortex/piece-client.js';
import { VortexTcpServer, type VortexLogger } from '../../../src/vortex/piece-server.js';

const silent: VortexLogger = { debug() {}, info() {}, warn() {}, error() {} };

let dir: string;
let storage: Storage;
let cache: PersistentCacheStore;
let server: VortexTcpServer;
let port: number;
let src: string;
let taskId: string;
const transport = new TcpPieceTransport();
const data = Buffer.from('0123456789abcdefghij');

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vortex-pc-'));
  const options = { dir, keep: true, writeBufferSize: 4096, readBufferSize: 4096 };
  storage = await Storage.open(options);
  cache = await PersistentCacheStore.open({ ...options, space: storage.space });
  src = join(dir, 'imported');
  writeFileSync(src, data);
  // A given id: the hard link is not read at import, so digests are computed when a piece is first served.
  const staged = await cache.stage({ path: src, pieceLength: 8, taskId: 'c'.repeat(64), idFields: {} });
  assert.equal(staged.mode, 'link');
  taskId = (await cache.commit(staged, { persistent: true, persistentReplicaCount: 1, ttlMs: 3_600_000 })).id;
  server = new VortexTcpServer({ storage, persistentCache: cache, ip: '127.0.0.1', port: 0, log: silent });
  port = await server.listen();
});

after(async () => {
  await server.close();
  cache.close();
  storage.close();
  rmSync(dir, { recursive: true, force: true });
});

async function fetch(number: number, kind: 'standard' | 'persistent-cache' = 'persistent-cache') {
  const got = await transport.downloadPiece({ ip: '127.0.0.1', port, taskId, number, timeoutMs: 5000, kind });
  const chunks: Buffer[] = [];
  for await (const c of got.body) chunks.push(Buffer.from(c)); // a chunk is valid until the next
  return { metadata: got.metadata, body: Buffer.concat(chunks) };
}

test('a persistent cache piece is served with the digest of its bytes', async () => {
  const p = await fetch(2);
  assert.deepEqual(p.body, data.subarray(16));
  assert.equal(p.metadata.offset, 16);
  assert.equal(p.metadata.digest, pieceDigest(data.subarray(16)));
});

test('the same id asked as a standard task is not found', async () => {
  await assert.rejects(
    fetch(0, 'standard'),
    (e: unknown) => e instanceof DfError && /not found/.test(e.message),
  );
});

test('once the imported file is edited, no piece of it is served', async () => {
  appendFileSync(src, 'tampered');
  await assert.rejects(fetch(0), (e: unknown) => {
    assert.ok(e instanceof DfError);
    assert.match(e.message, /modified after the import/);
    return true;
  });
});
