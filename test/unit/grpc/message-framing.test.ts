// gRPC message framing (grpc/message-framing.ts): HTTP/2 may cut the stream anywhere, so every way of cutting
// a run of messages must give back the same messages.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { frameMessage, MessageDecoder } from '../../../src/grpc/message-framing.js';

const MESSAGES = [Buffer.from('first'), Buffer.alloc(0), Buffer.alloc(300, 9), Buffer.from('last')];
const STREAM = Buffer.concat(MESSAGES.map(frameMessage));

test('a stream cut at any one byte gives the same messages', () => {
  for (let cut = 0; cut <= STREAM.length; cut++) {
    const d = new MessageDecoder();
    const got = [...d.push(STREAM.subarray(0, cut)), ...d.push(STREAM.subarray(cut))];
    assert.deepEqual(got, MESSAGES, `cut at ${cut}`);
    assert.ok(d.idle);
  }
});

test('a stream fed a byte at a time gives the same messages', () => {
  const d = new MessageDecoder();
  const got: Buffer[] = [];
  for (let i = 0; i < STREAM.length; i++) got.push(...d.push(STREAM.subarray(i, i + 1)));
  assert.deepEqual(got, MESSAGES);
});

test('a half message leaves the decoder not idle', () => {
  const d = new MessageDecoder();
  assert.deepEqual(d.push(STREAM.subarray(0, 7)), []);
  assert.equal(d.idle, false);
});

test('a compressed flag is refused: no compression was negotiated', () => {
  const framed = frameMessage(Buffer.from('x'));
  framed[0] = 1;
  assert.throws(
    () => new MessageDecoder().push(framed),
    /compressed message, but no compression was negotiated/,
  );
  framed[0] = 7;
  assert.throws(() => new MessageDecoder().push(framed), /invalid compressed flag 7/);
});
