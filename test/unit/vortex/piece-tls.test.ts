// Vortex over TLS (storage.server / storage.client caCert, cert, key; upstream's Vortex TCP has none): a TLS parent
// serves a TLS child byte-exact, with and without client certificates; every mismatch fails at once with one error
// that names the cause and the key to set: a plaintext child of a TLS parent, a TLS child of a plaintext parent, a
// parent certificate from another CA or for another address, and a child certificate the parent does not accept.
// Real servers on port 0, certificates made at test time.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { once } from 'node:events';
import { DfError } from '../../../src/core/errors.js';
import { Storage } from '../../../src/storage/storage.js';
import { decodePacket } from '../../../src/vortex/codec.js';
import { isTlsFailure, TcpPieceTransport, type VortexClientTls } from '../../../src/vortex/piece-client.js';
import {
  VortexTcpServer,
  type VortexLogger,
  type VortexServerTls,
} from '../../../src/vortex/piece-server.js';
import { tempDir } from '../../helpers/daemon.js';
import { TestCa, type Pem } from '../../helpers/pki.js';

const MiB = 1024 * 1024;
const silent: VortexLogger = { debug() {}, info() {}, warn() {}, error() {} };
const TASK = createHash('sha256').update('vortex-tls-task').digest('hex');
const LENGTH = 5 * MiB + 7;
const PIECE = 4 * MiB;

function content(offset: number, length: number): Buffer {
  const b = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) b[i] = ((offset + i) * 13 + 5) & 0xff;
  return b;
}

const files = (pem: Pem) => ({ cert: readFileSync(pem.cert), key: readFileSync(pem.key) });

describe('Vortex over TLS', () => {
  const dir = tempDir('dft-vortex-tls-');
  let storage: Storage;
  let ca: TestCa;
  let otherCa: TestCa;
  let parentPem: Pem;
  let childPem: Pem;
  let strangerPem: Pem;
  const servers: VortexTcpServer[] = [];

  async function parent(tls?: VortexServerTls): Promise<number> {
    const s = new VortexTcpServer({
      storage,
      ip: '127.0.0.1',
      port: 0,
      log: silent,
      tls,
      requestTimeoutMs: 2000,
    });
    servers.push(s);
    return s.listen();
  }

  async function fetch(port: number, tls?: VortexClientTls, number = 0): Promise<Buffer> {
    const piece = await new TcpPieceTransport({ tls }).downloadPiece({
      ip: '127.0.0.1',
      port,
      taskId: TASK,
      number,
      timeoutMs: 10_000,
    });
    const chunks: Buffer[] = [];
    for await (const c of piece.body) chunks.push(Buffer.from(c)); // a chunk is valid until the next
    return Buffer.concat(chunks);
  }

  async function refused(p: Promise<unknown>, pattern: RegExp, tlsFailure = true): Promise<void> {
    await assert.rejects(p, (e: unknown) => {
      assert.ok(e instanceof DfError, String(e));
      assert.match(e.message, pattern);
      assert.doesNotMatch(e.message, /\n/, 'one line');
      assert.equal(isTlsFailure(e), tlsFailure, `isTlsFailure(${e.message})`);
      return true;
    });
  }

  before(async () => {
    storage = await Storage.open({
      dir,
      keep: true,
      writeBufferSize: 512 * 1024,
      readBufferSize: 512 * 1024,
    });
    await storage.prepareTask(TASK, { contentLength: LENGTH, pieceLength: PIECE, responseHeader: {} });
    for (let n = 0; n * PIECE < LENGTH; n++) {
      const offset = n * PIECE;
      const length = Math.min(PIECE, LENGTH - offset);
      await storage.writePiece(
        TASK,
        { number: n, offset, length },
        (async function* () {
          yield content(offset, length);
        })(),
        { trafficType: 0 },
      );
    }
    ca = await TestCa.create(dir, 'cluster');
    otherCa = await TestCa.create(dir, 'other');
    parentPem = await ca.issue('parent', { ips: ['127.0.0.1'] });
    childPem = await ca.issue('child', { usage: 'client' });
    strangerPem = await otherCa.issue('stranger', { usage: 'client' });
  });

  after(async () => {
    for (const s of servers) await s.close();
    storage.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a TLS parent serves a TLS child every piece byte-exact', async () => {
    const port = await parent(files(parentPem));
    const tls = { caCert: readFileSync(ca.certPath) };
    assert.ok((await fetch(port, tls, 0)).equals(content(0, PIECE)));
    assert.ok((await fetch(port, tls, 1)).equals(content(PIECE, LENGTH - PIECE)));
  });

  test('mTLS: a child with a certificate of the CA is served; without one, or with another CA’s, it is told why', async () => {
    const port = await parent({ ...files(parentPem), caCert: readFileSync(ca.certPath) });
    const caCert = readFileSync(ca.certPath);
    assert.ok((await fetch(port, { caCert, ...files(childPem) })).equals(content(0, PIECE)));
    await refused(
      fetch(port, { caCert }),
      /parent 127\.0\.0\.1:\d+: client certificate refused .*requires a client certificate signed by its storage\.server\.caCert; set storage\.client\.cert\/key/,
      false,
    );
    await refused(
      fetch(port, { caCert, ...files(strangerPem) }),
      /client certificate refused \((UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT|SELF_SIGNED_CERT_IN_CHAIN)[^)]*\)/,
      false,
    );
  });

  test('a plaintext child of a TLS parent gets an error that says TLS is required and which key to set', async () => {
    const port = await parent(files(parentPem));
    await refused(
      fetch(port),
      /parent 127\.0\.0\.1:\d+: this Vortex server accepts TLS only .*setting storage\.client\.caCert/,
      false,
    );
  });

  test('a TLS child refuses a parent whose certificate another CA signed, naming storage.client.caCert', async () => {
    const strangerParent = await otherCa.issue('stranger-parent', { ips: ['127.0.0.1'] });
    const port = await parent(files(strangerParent));
    await refused(
      fetch(port, { caCert: readFileSync(ca.certPath) }),
      /parent 127\.0\.0\.1:\d+: its TLS certificate is not trusted by storage\.client\.caCert \(SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO/,
    );
  });

  test('a TLS child refuses a parent certificate that does not name the parent’s address', async () => {
    const elsewhere = await ca.issue('elsewhere', { ips: ['10.9.8.7'], dns: ['elsewhere.example'] });
    const port = await parent(files(elsewhere));
    await refused(
      fetch(port, { caCert: readFileSync(ca.certPath) }),
      /its TLS certificate does not name the address dialled \(ERR_TLS_CERT_ALTNAME_INVALID/,
    );
  });

  test('a TLS child of a plaintext parent: the handshake fails, naming storage.server.cert/key', async () => {
    const port = await parent();
    await refused(
      fetch(port, { caCert: readFileSync(ca.certPath) }),
      /parent 127\.0\.0\.1:\d+: .*TLS handshake.*storage\.client\.caCert is set.*storage\.server\.cert\/key/,
    );
  });

  test('a TLS parent over its connection cap answers inside TLS: too many connections', async () => {
    const s = new VortexTcpServer({
      storage,
      ip: '127.0.0.1',
      port: 0,
      log: silent,
      tls: files(parentPem),
      maxConnections: 1,
    });
    servers.push(s);
    const port = await s.listen();
    const idle = connect({ host: '127.0.0.1', port });
    await once(idle, 'connect');
    try {
      await refused(
        fetch(port, { caCert: readFileSync(ca.certPath) }),
        /too many connections \(storage\.server\.maxConnections 1\)/,
        false,
      );
    } finally {
      idle.destroy();
    }
  });

  test('the plaintext refusal is a well-formed Vortex Error packet, for any client', async () => {
    const port = await parent(files(parentPem));
    const socket = connect({ host: '127.0.0.1', port });
    const header = Buffer.from([7, 0, 0, 0, 0, 68]);
    socket.end(Buffer.concat([header, Buffer.from(TASK, 'ascii'), Buffer.alloc(4)]));
    const chunks: Buffer[] = [];
    for await (const c of socket) chunks.push(c as Buffer);
    const packet = decodePacket(Buffer.concat(chunks));
    assert.equal(packet.kind, 'error');
    assert.match((packet as { message: string }).message, /accepts TLS only/);
  });
});
