import { test } from 'node:test';
import assert from 'node:assert/strict';
import { unifiedDiff } from '../../../src/init/diff.js';

const lines = (n: number) => Array.from({ length: n }, (_, i) => `line ${i + 1}`);

test('equal texts: no diff', () => {
  assert.equal(unifiedDiff('a\n', 'a\n', 'f', 'f'), '');
});

test('a changed line with three lines of context', () => {
  const a = lines(10).join('\n') + '\n';
  const b = a.replace('line 5\n', 'line five\n');
  assert.equal(
    unifiedDiff(a, b, 'f', 'f'),
    `--- f
+++ f
@@ -2,7 +2,7 @@
 line 2
 line 3
 line 4
-line 5
+line five
 line 6
 line 7
 line 8
`,
  );
});

test('an insertion and far-apart changes make separate hunks', () => {
  const a = lines(30);
  const b = [...a];
  b.splice(2, 0, 'new');
  b[25] = 'changed';
  const d = unifiedDiff(a.join('\n') + '\n', b.join('\n') + '\n', 'f', 'f');
  assert.equal(d.match(/^@@/gm)?.length, 2);
  assert.match(d, /^@@ -1,5 \+1,6 @@$/m);
  assert.match(d, /^\+new$/m);
  assert.match(d, /^-line 25$\n^\+changed$/m);
});

test('a new file is a diff from /dev/null', () => {
  assert.equal(unifiedDiff(undefined, 'a\nb\n', 'x', 'x'), '--- /dev/null\n+++ x\n@@ -0,0 +1,2 @@\n+a\n+b\n');
});

test('a missing final newline is shown', () => {
  assert.equal(
    unifiedDiff('a', 'a\n', 'x', 'x'),
    '--- x\n+++ x\n@@ -1,1 +1,1 @@\n-a\n\\ No newline at end of file\n+a\n',
  );
});
