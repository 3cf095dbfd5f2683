import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  bodyFraming,
  ChunkedDecoder,
  keepAliveHintMs,
  keepsAlive,
  parseResponseHead,
  ResponseParseError,
} from '../../../src/http-client/http1-response.js';

const head = (lines: string[]) => parseResponseHead(lines.join('\r\n'));

describe('parseResponseHead', () => {
  it('reads the status, the reason and the fields, repeated ones as arrays in order', () => {
    const h = head([
      'HTTP/1.1 206 Partial Content',
      'Content-Range: bytes 0-9/100',
      'Set-Cookie: a=1',
      'set-cookie: b=2',
      'X-Empty:',
      'X-Spaces:   padded value  ',
    ]);
    assert.equal(h.statusCode, 206);
    assert.equal(h.statusText, 'Partial Content');
    assert.equal(h.minorVersion, 1);
    assert.deepEqual(h.headers, {
      'content-range': 'bytes 0-9/100',
      'set-cookie': ['a=1', 'b=2'],
      'x-empty': '',
      'x-spaces': 'padded value',
    });
    assert.equal(head(['HTTP/1.0 200']).statusText, '');
    assert.equal(head(['HTTP/1.0 200']).minorVersion, 0);
  });

  it('refuses what it cannot read, naming it', () => {
    for (const [lines, why] of [
      [['HTTP/2 200 OK'], /bad status line "HTTP\/2 200 OK"/],
      [['HTTP/1.1 20 OK'], /bad status line/],
      [['ICY 200 OK'], /bad status line/],
      [['HTTP/1.1 200 OK', 'No colon here'], /bad header line "No colon here"/],
      [['HTTP/1.1 200 OK', 'Bad Name: x'], /bad header line/],
      [['HTTP/1.1 200 OK', ': no name'], /bad header line/],
      [['HTTP/1.1 200 OK', 'X-A: 1', ' folded'], /folded header line/],
      [['HTTP/1.1 200 OK', 'X-A: a\0b'], /bad value of header X-A/],
    ] as const) {
      assert.throws(
        () => head([...lines]),
        (e: unknown) => e instanceof ResponseParseError && e.code === 'HTTP1_PARSE' && why.test(e.message),
      );
    }
  });
});

describe('bodyFraming', () => {
  it('follows RFC 9112 §6.3', () => {
    const ok = (lines: string[], method = 'GET') => bodyFraming(method, head(['HTTP/1.1 200 OK', ...lines]));
    assert.deepEqual(ok(['Content-Length: 5'], 'HEAD'), { kind: 'none' });
    assert.deepEqual(bodyFraming('GET', head(['HTTP/1.1 204 No Content'])), { kind: 'none' });
    assert.deepEqual(bodyFraming('GET', head(['HTTP/1.1 304 Not Modified', 'Content-Length: 9'])), {
      kind: 'none',
    });
    assert.deepEqual(ok(['Transfer-Encoding: chunked']), { kind: 'chunked' });
    assert.deepEqual(ok(['Transfer-Encoding: gzip, Chunked', 'Content-Length: 3']), { kind: 'chunked' });
    assert.deepEqual(ok(['Transfer-Encoding: chunked, gzip']), { kind: 'close' });
    assert.deepEqual(ok(['Content-Length: 42']), { kind: 'length', length: 42 });
    assert.deepEqual(ok(['Content-Length: 42', 'Content-Length: 42']), { kind: 'length', length: 42 });
    assert.deepEqual(ok(['Content-Length: 0']), { kind: 'length', length: 0 });
    assert.deepEqual(ok([]), { kind: 'close' });
    assert.throws(() => ok(['Content-Length: 1', 'Content-Length: 2']), /bad Content-Length/);
    assert.throws(() => ok(['Content-Length: -1']), /bad Content-Length/);
    assert.throws(() => ok(['Content-Length: 0x10']), /bad Content-Length/);
    assert.throws(() => ok(['Content-Length: 99999999999999999999']), /too large/);
  });

  it('keeps a connection alive as HTTP/1.1 and Keep-Alive say', () => {
    assert.equal(keepsAlive(head(['HTTP/1.1 200 OK'])), true);
    assert.equal(keepsAlive(head(['HTTP/1.1 200 OK', 'Connection: Close'])), false);
    assert.equal(keepsAlive(head(['HTTP/1.1 200 OK', 'Connection: upgrade, close'])), false);
    assert.equal(keepsAlive(head(['HTTP/1.0 200 OK'])), false);
    assert.equal(keepsAlive(head(['HTTP/1.0 200 OK', 'Connection: keep-alive'])), true);
    assert.equal(keepAliveHintMs(head(['HTTP/1.1 200 OK', 'Keep-Alive: timeout=5, max=100'])), 5000);
    assert.equal(keepAliveHintMs(head(['HTTP/1.1 200 OK', 'Keep-Alive: max=100'])), undefined);
    assert.equal(keepAliveHintMs(head(['HTTP/1.1 200 OK'])), undefined);
  });
});

/** `data` in the chunked coding: chunks of random sizes, some with extensions, a trailer section. */
function chunked(data: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  let i = 0;
  while (at < data.length) {
    const n = Math.min(data.length - at, 1 + Math.floor(Math.random() * 5000));
    const ext = i++ % 3 === 0 ? ';name=value' : '';
    parts.push(Buffer.from(`${n.toString(16)}${ext}\r\n`), data.subarray(at, at + n), Buffer.from('\r\n'));
    at += n;
  }
  parts.push(Buffer.from('0\r\nX-Trailer: yes\r\n\r\n'));
  return Buffer.concat(parts);
}

/** Feeds `wire` to a decoder in pieces cut at `cuts`; the data it gave and where the body ended. */
function decode(wire: Buffer, cuts: number[]): { data: Buffer; end: number; done: boolean } {
  const d = new ChunkedDecoder();
  const out: Buffer[] = [];
  let from = 0;
  let end = -1;
  for (const cut of [...cuts, wire.length]) {
    // Each piece in a buffer of its own, as a socket read would give it.
    const piece = Buffer.from(wire.subarray(from, cut));
    const stop = d.feed(piece, 0, piece.length, (v) => out.push(Buffer.from(v)));
    if (d.done && end === -1) end = from + stop;
    from = cut;
    if (d.done) break;
  }
  return { data: Buffer.concat(out), end, done: d.done };
}

describe('ChunkedDecoder', () => {
  it('gives the data back whole however the bytes are split, and says where the body ended', () => {
    const data = randomBytes(50_000);
    const wire = Buffer.concat([chunked(data), Buffer.from('NEXT')]);
    for (let round = 0; round < 50; round++) {
      const cuts = [
        ...new Set(Array.from({ length: round % 10 }, () => Math.floor(Math.random() * wire.length))),
      ];
      cuts.sort((a, b) => a - b);
      const got = decode(
        wire,
        cuts.filter((c) => c > 0),
      );
      assert.equal(got.done, true);
      assert.ok(got.data.equals(data));
      assert.equal(got.end, wire.length - 4, 'the bytes after the last chunk are not the body');
    }
    // Every byte on its own.
    const small = randomBytes(300);
    const w = chunked(small);
    const one = decode(
      w,
      Array.from({ length: w.length - 1 }, (_, k) => k + 1),
    );
    assert.ok(one.data.equals(small));
    assert.equal(one.done, true);
  });

  it('takes bare LF line ends, as other clients do', () => {
    const got = decode(Buffer.from('3\nabc\n0\n\n'), []);
    assert.equal(got.data.toString(), 'abc');
    assert.equal(got.done, true);
  });

  it('refuses a broken coding, naming what is wrong', () => {
    const bad = (wire: string, why: RegExp) =>
      assert.throws(
        () => decode(Buffer.from(wire), []),
        (e: unknown) => e instanceof ResponseParseError && why.test(e.message),
      );
    bad('zz\r\nabc\r\n', /bad chunk size "zz"/);
    bad('\r\n', /bad chunk size/);
    bad('3\r\nabcX\r\n', /chunk data not followed by CRLF/);
    bad('3\r\nabc\r\r\n', /chunk data not followed by CRLF/);
    bad(`${'0'.repeat(5000)}`.concat('\r\n'), /chunk line too long/);
    bad('fffffffffffffff\r\n', /bad chunk size/);
    bad(`0\r\n${'X-A: b\r\n'.repeat(3000)}`, /trailer section too large/);
  });
});
