import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DfError } from '../../../src/core/errors.js';
import { pieceDigest } from '../../../src/core/digest.js';
import { verifyFileDigest } from '../../../src/storage/file-digest.js';

const isCode = (code: string) => (e: unknown) => e instanceof DfError && e.code === code;

let dir: string;
let file: string;
// Larger than the 1 MiB read chunk, so the digest is computed over several chunks.
const content = Buffer.alloc(3 * (1 << 20) + 17, 0);
for (let i = 0; i < content.length; i++) content[i] = (i * 31) & 0xff;

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'df-file-digest-'));
  file = path.join(dir, 'content');
  fs.writeFileSync(file, content);
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

test('verifyFileDigest accepts the sha256, sha512 and crc32 of the file', async () => {
  await verifyFileDigest(file, `sha256:${createHash('sha256').update(content).digest('hex')}`);
  await verifyFileDigest(file, `sha512:${createHash('sha512').update(content).digest('hex')}`);
  await verifyFileDigest(file, pieceDigest(content));
});

test('verifyFileDigest throws DIGEST_MISMATCH for another digest', async () => {
  const other = createHash('sha256').update('other').digest('hex');
  await assert.rejects(verifyFileDigest(file, `sha256:${other}`), isCode('DIGEST_MISMATCH'));
  await assert.rejects(verifyFileDigest(file, 'crc32:1'), isCode('DIGEST_MISMATCH'));
});

test('verifyFileDigest throws UNSUPPORTED_DIGEST for an unknown algorithm', async () => {
  await assert.rejects(
    verifyFileDigest(file, 'md5:d41d8cd98f00b204e9800998ecf8427e'),
    isCode('UNSUPPORTED_DIGEST'),
  );
});
