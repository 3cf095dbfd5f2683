// include-files.ts: dfget --include-files patterns; plain paths, globs, and every way out of the directory refused.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseIncludeFiles } from '../../../src/core/include-files.js';

test('a plain path stays a path (joined to the URL as upstream); a glob matches relative paths', () => {
  const [plain, dir, glob, deep] = parseIncludeFiles(['a/b.txt', 'sub/', '*.json', 'train/**']);
  assert.equal(plain!.match, undefined);
  assert.equal(dir!.match, undefined);
  assert.equal(glob!.match!.test('x.json'), true);
  assert.equal(glob!.match!.test('d/x.json'), false, '* stays within a segment');
  assert.equal(deep!.match!.test('train/a/b/c.bin'), true);
  assert.equal(deep!.match!.test('eval/a.bin'), false);
  const [cls, any] = parseIncludeFiles(['part-[0-3].bin', '**/*.bin']);
  assert.equal(cls!.match!.test('part-2.bin'), true);
  assert.equal(cls!.match!.test('part-7.bin'), false);
  assert.equal(any!.match!.test('top.bin'), true, '**/ matches zero segments');
  assert.equal(any!.match!.test('a/b/top.bin'), true);
});

test('patterns that could leave the directory are refused, each with its reason', () => {
  const cases: Array<[string, RegExp]> = [
    ['', /it is empty/],
    ['/etc/passwd', /it is absolute/],
    ['../up', /a "\.\." segment/],
    ['a/../../up', /a "\.\." segment/],
    ['./a', /a "\." segment/],
    ['a//b', /an empty segment/],
    ['a\\..\\b', /a backslash/],
    ['a\nb', /a control character/],
    ['%2e%2e/x', /an encoded dot/],
    ['x/[oops', /an unclosed \[/],
    ['[a/b]', /may not hold \//],
    ['[z-a]', /not a valid glob/],
  ];
  for (const [p, why] of cases) {
    assert.throws(
      () => parseIncludeFiles([p]),
      (e: Error) => {
        assert.match(e.message, /^invalid --include-files /, p);
        assert.match(e.message, why, p);
        assert.equal(e.message.includes('\n'), false, 'one line');
        return true;
      },
    );
  }
});
